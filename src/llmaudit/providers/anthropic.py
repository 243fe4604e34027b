"""Anthropic (api.anthropic.com): messages, their event stream, token counting, legacy completions."""

from __future__ import annotations

from typing import Any

from .._decode import parse_json
from . import Exchange, Parsed
from ._common import as_int, body_json, obj, request_model, sse_json

__all__ = ["ANTHROPIC"]

_OPERATIONS = {
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "messages.count_tokens",
    "/v1/complete": "completions",
    "/v1/messages/batches": "messages.batches",
}


class _Anthropic:
    name = "anthropic"

    def match(self, host: str, path: str) -> str | None:
        return _OPERATIONS.get(path.rstrip("/")) if host == "api.anthropic.com" else None

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        notes: list[str] = []
        if exchange.is_stream and operation == "messages":
            body: Any = _assemble(exchange, notes)
        else:
            body, problems = body_json(exchange)
            notes.extend(problems)
        usage = body.get("usage") if isinstance(body, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        inp, out = as_int(usage.get("input_tokens")), as_int(usage.get("output_tokens"))
        if operation == "messages.count_tokens" and isinstance(body, dict):
            inp = as_int(body.get("input_tokens"))
        model = body.get("model") if isinstance(body, dict) else None
        total = inp + out if inp is not None and out is not None else None
        return Parsed(
            self.name,
            operation,
            model if isinstance(model, str) else request_model(exchange),
            body,
            inp,
            out,
            total,
            tuple(notes),
        )


def _assemble(exchange: Exchange, notes: list[str]) -> dict[str, Any]:
    """message_start … message_stop → the final ``message`` with its content blocks."""
    message: dict[str, Any] = {"type": "message", "content": []}
    blocks: dict[int, dict[str, Any]] = {}
    partial_json: dict[int, str] = {}
    for name, event in sse_json(exchange, notes):
        kind = event.get("type", name)
        if kind == "message_start" and isinstance(event.get("message"), dict):
            message.update(event["message"])
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            blocks[as_int(event.get("index")) or 0] = dict(event["content_block"])
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            _apply_delta(blocks, partial_json, as_int(event.get("index")) or 0, event["delta"])
        elif kind == "message_delta":
            _apply_message_delta(message, event)
        elif kind == "error":
            message["error"] = event.get("error")
            notes.append("the stream ended with an error event")
    for index, text in partial_json.items():
        value, problems = parse_json(text.encode())
        blocks[index]["input"] = value if not problems else text
    message["content"] = [block for _, block in sorted(blocks.items())]
    return message


def _apply_delta(
    blocks: dict[int, dict[str, Any]], partial: dict[int, str], index: int, delta: dict[str, Any]
) -> None:
    block = blocks.setdefault(index, {"type": "text", "text": ""})
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + str(delta.get("text", ""))
    elif kind == "input_json_delta":
        partial[index] = partial.get(index, "") + str(delta.get("partial_json", ""))
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
    elif kind == "signature_delta":
        block["signature"] = delta.get("signature")


def _apply_message_delta(message: dict[str, Any], event: dict[str, Any]) -> None:
    delta = obj(event.get("delta"))
    for key in ("stop_reason", "stop_sequence"):
        if key in delta:
            message[key] = delta[key]
    if isinstance(event.get("usage"), dict):
        usage = dict(message.get("usage") or {})
        usage.update({k: v for k, v in event["usage"].items() if v is not None})
        message["usage"] = usage


ANTHROPIC = _Anthropic()
