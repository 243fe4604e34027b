"""Anthropic (api.anthropic.com): messages, their event stream, token counting, legacy completions;
and the same format on any other host (``anthropic_compatible``, matched by `_shapes`)."""

from __future__ import annotations

from typing import Any

from ..record.bodies import parse_json
from . import Exchange, Parsed
from ._common import as_int, body_json, items, obj, request_model, sse_json
from ._conversation import EMPTY, Conversation, Part, arguments_text, text_of

__all__ = ["ANTHROPIC", "COMPATIBLE", "shape"]

_OPERATIONS = {
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "messages.count_tokens",
    "/v1/complete": "completions",
    "/v1/messages/batches": "messages.batches",
}

#: path endings -> operation, for the API behind any prefix (most specific first)
_SUFFIXES = (
    ("/messages/count_tokens", "messages.count_tokens"),
    ("/messages/batches", "messages.batches"),
    ("/messages", "messages"),
    ("/complete", "completions"),
)
_ENDINGS = tuple(suffix for suffix, _ in _SUFFIXES)


def shape(path: str) -> str | None:
    """The Anthropic operation a path ends with, behind any prefix (cheap: runs on the hot path)."""
    if path.endswith("/"):
        path = path.rstrip("/")
    if not path.endswith(_ENDINGS):
        return None
    for suffix, operation in _SUFFIXES:
        if path.endswith(suffix):
            return operation
    return None


class _Anthropic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.hosts = ("api.anthropic.com",) if name == "anthropic" else ()

    def match(self, host: str, path: str) -> str | None:
        if self.name != "anthropic":
            return None  # the compatible twin is matched by its shape and header (`_shapes`)
        return _OPERATIONS.get(path.rstrip("/")) if host == "api.anthropic.com" else None

    def shape(self, path: str) -> str | None:
        return shape(path)

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

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        """The conversation of a messages call: content blocks (text, tool_use, tool_result,
        thinking, media) of the system prompt, the messages and the answer."""
        if operation not in ("messages", "messages.count_tokens"):
            return EMPTY
        req, out = obj(request), list[Part]()
        system = req.get("system")
        if isinstance(system, str):
            if system:
                out.append(Part("system", "text", system))
        else:
            _blocks("system", system, out)
        for value in items(req.get("messages")):
            message = obj(value)
            role = message.get("role")
            _blocks(role if isinstance(role, str) and role else "user", message.get("content"), out)
        answer: list[Part] = []
        _blocks("assistant", obj(response).get("content"), answer)
        return Conversation(tuple(out), tuple(answer))


def _blocks(role: str, content: Any, out: list[Part]) -> None:
    """Anthropic content (a string or a list of blocks) as parts of *role*."""
    if isinstance(content, str):
        if content:
            out.append(Part(role, "text", content))
        return
    for value in items(content):
        block = obj(value)
        kind = block.get("type")
        name, block_id = block.get("name"), block.get("id", block.get("tool_use_id"))
        name, block_id = (v if isinstance(v, str) else None for v in (name, block_id))
        if kind == "text":
            text = text_of(block.get("text"))
            if text:
                out.append(Part(role, "text", text))
        elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
            out.append(Part(role, "tool_call", arguments_text(block.get("input")), name, block_id))
        elif kind == "tool_result" or (isinstance(kind, str) and kind.endswith("_tool_result")):
            out.append(Part("tool", "tool_result", _result_text(block.get("content")), name, block_id))
        elif kind == "thinking":
            text = text_of(block.get("thinking"))
            if text:
                out.append(Part(role, "reasoning", text))
        elif isinstance(kind, str) and kind and kind != "redacted_thinking":
            out.append(Part(role, "media", kind))


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[Part] = []
    _blocks("tool", content, parts)
    return "\n".join(p.text for p in parts if p.kind == "text")


def _assemble(exchange: Exchange, notes: list[str]) -> dict[str, Any]:
    """message_start … message_stop → the final ``message`` with its content blocks."""
    message: dict[str, Any] = {"type": "message", "content": []}
    blocks: dict[int, dict[str, Any]] = {}
    # (block index, field) -> its deltas, joined at the end (joining as they come is quadratic)
    pieces: dict[tuple[int, str], list[str]] = {}
    for name, event in sse_json(exchange, notes):
        kind = event.get("type", name)
        if kind == "message_start" and isinstance(event.get("message"), dict):
            message.update(event["message"])
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            blocks[as_int(event.get("index")) or 0] = dict(event["content_block"])
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            _apply_delta(blocks, pieces, as_int(event.get("index")) or 0, event["delta"])
        elif kind == "message_delta":
            _apply_message_delta(message, event)
        elif kind == "error":
            message["error"] = event.get("error")
            notes.append("the stream ended with an error event")
    for (index, field), texts in pieces.items():
        text, block = "".join(texts), blocks[index]
        if field == "partial_json":
            value, problems = parse_json(text.encode())
            block["input"] = value if not problems else text
        else:
            block[field] = str(block.get(field, "")) + text
    message["content"] = [block for _, block in sorted(blocks.items())]
    return message


#: delta type -> the delta's (and the block's) text field
_DELTA_FIELDS = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}


def _apply_delta(
    blocks: dict[int, dict[str, Any]],
    pieces: dict[tuple[int, str], list[str]],
    index: int,
    delta: dict[str, Any],
) -> None:
    blocks.setdefault(index, {"type": "text", "text": ""})
    kind = delta.get("type")
    field = _DELTA_FIELDS.get(kind) if isinstance(kind, str) else None
    if field is not None:
        pieces.setdefault((index, field), []).append(str(delta.get(field, "")))
    elif kind == "signature_delta":
        blocks[index]["signature"] = delta.get("signature")


def _apply_message_delta(message: dict[str, Any], event: dict[str, Any]) -> None:
    delta = obj(event.get("delta"))
    for key in ("stop_reason", "stop_sequence"):
        if key in delta:
            message[key] = delta[key]
    if isinstance(event.get("usage"), dict):
        usage = dict(obj(message.get("usage")))
        usage.update({k: v for k, v in event["usage"].items() if v is not None})
        message["usage"] = usage


ANTHROPIC = _Anthropic("anthropic")
#: Anthropic's format on a host llmaudit does not know (a gateway, a compatible server): no price
#: unless the user maps the host to ``anthropic``
COMPATIBLE = _Anthropic("anthropic_compatible")
