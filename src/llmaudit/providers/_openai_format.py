"""The OpenAI wire format, shared by OpenAI, Azure OpenAI, Mistral, Groq and every compatible server:
chat completions (and their chunk streams), the Responses API (and its event stream), completions,
embeddings. Pure functions over an `Exchange`."""

from __future__ import annotations

from typing import Any

from . import Exchange, Parsed
from ._common import as_int, body_json, obj, request_model, sse_json

__all__ = ["operation_for", "parse_openai_format", "usage"]

_SUFFIXES = (
    ("/chat/completions", "chat.completions"),
    ("/fim/completions", "fim.completions"),
    ("/completions", "completions"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/audio/transcriptions", "audio.transcriptions"),
    ("/audio/translations", "audio.translations"),
    ("/audio/speech", "audio.speech"),
    ("/images/generations", "images.generate"),
    ("/moderations", "moderations"),
)


def operation_for(path: str) -> str | None:
    """The OpenAI-style operation a path ends with (cheap: runs on the hot path)."""
    path = path.rstrip("/")
    for suffix, operation in _SUFFIXES:
        if path.endswith(suffix):
            return operation
    return None


def usage(body: Any) -> tuple[int | None, int | None, int | None]:
    """(input, output, total) from an OpenAI-style ``usage`` (chat or Responses naming)."""
    data = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return None, None, None
    inp = as_int(data.get("prompt_tokens", data.get("input_tokens")))
    out = as_int(data.get("completion_tokens", data.get("output_tokens")))
    total = as_int(data.get("total_tokens"))
    if total is None and inp is not None and out is not None:
        total = inp + out
    return inp, out, total


def parse_openai_format(
    exchange: Exchange, provider: str, operation: str, model: str | None = None
) -> Parsed:
    notes: list[str] = []
    if exchange.is_stream and operation in ("chat.completions", "completions", "fim.completions"):
        body: Any = _assemble_chunks(exchange, notes)
    elif exchange.is_stream and operation == "responses":
        body = _assemble_response_events(exchange, notes)
    else:
        body, problems = body_json(exchange)
        notes.extend(problems)
    found = body.get("model") if isinstance(body, dict) else None
    inp, out, total = usage(body)
    return Parsed(
        provider,
        operation,
        found if isinstance(found, str) else model or request_model(exchange),
        body,
        inp,
        out,
        total,
        tuple(notes),
    )


def _assemble_chunks(exchange: Exchange, notes: list[str]) -> dict[str, Any]:
    """``chat.completion.chunk`` events → one ``chat.completion`` (text, tool calls, finish, usage)."""
    result: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    for _, chunk in sse_json(exchange, notes):
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(key) is not None:
                result[key] = chunk[key]
        extra = obj(chunk.get("x_groq"))
        if chunk.get("usage") is not None or extra.get("usage") is not None:
            result["usage"] = chunk.get("usage") or extra.get("usage")
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict):
                _merge_choice(choices.setdefault(as_int(choice.get("index")) or 0, {}), choice)
    chat = exchange.path.rstrip("/").endswith("/chat/completions")
    result["object"] = "chat.completion" if chat else "text_completion"
    result["choices"] = [_finish_choice(i, c, chat) for i, c in sorted(choices.items())]
    return result


def _merge_choice(into: dict[str, Any], choice: dict[str, Any]) -> None:
    if choice.get("finish_reason") is not None:
        into["finish_reason"] = choice["finish_reason"]
    if isinstance(choice.get("text"), str):
        into["text"] = into.get("text", "") + choice["text"]
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return
    for key in ("role",):
        if delta.get(key):
            into[key] = delta[key]
    for key in ("content", "refusal", "reasoning_content"):
        if isinstance(delta.get(key), str):
            into[key] = into.get(key, "") + delta[key]
    for call in delta.get("tool_calls") or ():
        if isinstance(call, dict):
            _merge_tool_call(into.setdefault("tool_calls", {}), call)


def _merge_tool_call(calls: dict[int, dict[str, Any]], call: dict[str, Any]) -> None:
    slot = calls.setdefault(as_int(call.get("index")) or 0, {"function": {"name": "", "arguments": ""}})
    if call.get("id"):
        slot["id"] = call["id"]
    if call.get("type"):
        slot["type"] = call["type"]
    function = obj(call.get("function"))
    if isinstance(function.get("name"), str):
        slot["function"]["name"] += function["name"]
    if isinstance(function.get("arguments"), str):
        slot["function"]["arguments"] += function["arguments"]


def _finish_choice(index: int, parts: dict[str, Any], chat: bool) -> dict[str, Any]:
    if not chat:
        return {"index": index, "text": parts.get("text", ""), "finish_reason": parts.get("finish_reason")}
    message: dict[str, Any] = {"role": parts.get("role", "assistant"), "content": parts.get("content")}
    for key in ("refusal", "reasoning_content"):
        if key in parts:
            message[key] = parts[key]
    if parts.get("tool_calls"):
        message["tool_calls"] = [call for _, call in sorted(parts["tool_calls"].items())]
    return {"index": index, "message": message, "finish_reason": parts.get("finish_reason")}


_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


def _assemble_response_events(exchange: Exchange, notes: list[str]) -> dict[str, Any]:
    """Responses API events → the final ``response`` object (from response.completed when it came,
    else rebuilt from the deltas of an interrupted stream)."""
    latest: dict[str, Any] = {}
    text: dict[tuple[Any, Any], str] = {}
    arguments: dict[Any, str] = {}
    for name, event in sse_json(exchange, notes):
        kind = event.get("type", name)
        if isinstance(event.get("response"), dict):
            latest = event["response"]
            if kind in _FINAL_EVENTS:
                return latest
        elif kind == "response.output_text.delta":
            slot = (event.get("output_index"), event.get("content_index"))
            text[slot] = text.get(slot, "") + str(event.get("delta", ""))
        elif kind == "response.function_call_arguments.delta":
            item = event.get("item_id")
            arguments[item] = arguments.get(item, "") + str(event.get("delta", ""))
    partial = dict(latest)
    partial["output_text"] = "".join(v for _, v in sorted(text.items(), key=lambda kv: str(kv[0])))
    if arguments:
        partial["function_call_arguments"] = arguments
    return partial
