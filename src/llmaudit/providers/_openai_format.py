"""The OpenAI wire format, shared by OpenAI, Azure OpenAI, Mistral, Groq and every compatible server:
chat completions (and their chunk streams), the Responses API (and its event stream), completions,
embeddings. Pure functions over an `Exchange`."""

from __future__ import annotations

from typing import Any

from . import Exchange, Parsed
from ._common import as_int, body_json, items, obj, request_model, scalar, sse_json

__all__ = ["ENDINGS", "operation_for", "parse_openai_format", "usage"]

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


#: what every OpenAI path ends with: one ``str.endswith`` turns the other paths away (`_shapes`)
ENDINGS = tuple(suffix for suffix, _ in _SUFFIXES)


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


_CHUNK_FIELDS = ("id", "created", "model", "system_fingerprint", "service_tier")
_DELTA_TEXTS = frozenset({"content", "refusal", "reasoning_content"})


def _assemble_chunks(exchange: Exchange, notes: list[str]) -> dict[str, Any]:
    """``chat.completion.chunk`` events → one ``chat.completion`` (text, tool calls, finish, usage)."""
    result: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    for _, chunk in sse_json(exchange, notes):
        for key in _CHUNK_FIELDS:
            value = chunk.get(key)
            if value is not None:
                result[key] = value
        found = chunk.get("usage")
        if not found:
            extra = chunk.get("x_groq")  # Groq puts the usage of a stream in its last chunk's x_groq
            found = extra.get("usage") if isinstance(extra, dict) else None
        if found is not None:
            result["usage"] = found
        for choice in items(chunk.get("choices")):
            if isinstance(choice, dict):
                _merge_choice(choices.setdefault(as_int(choice.get("index")) or 0, {}), choice)
    chat = exchange.path.rstrip("/").endswith("/chat/completions")
    result["object"] = "chat.completion" if chat else "text_completion"
    result["choices"] = [_finish_choice(i, c, chat) for i, c in sorted(choices.items())]
    return result


def _merge_choice(into: dict[str, Any], choice: dict[str, Any]) -> None:
    """Text arrives as lists of pieces, joined by `_finish_choice` (joining each piece as it comes is
    quadratic in the length of the stream)."""
    finish = choice.get("finish_reason")
    if finish is not None:
        into["finish_reason"] = finish
    text = choice.get("text")
    if isinstance(text, str):
        into.setdefault("text", []).append(text)
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return
    for key, value in delta.items():  # usually one key: cheaper than asking for each one we know
        if key in _DELTA_TEXTS:
            if isinstance(value, str):
                into.setdefault(key, []).append(value)
        elif key == "role":
            if value:
                into["role"] = value
        elif key == "tool_calls":
            for call in items(value):
                if isinstance(call, dict):
                    _merge_tool_call(into.setdefault("tool_calls", {}), call)


def _merge_tool_call(calls: dict[int, dict[str, Any]], call: dict[str, Any]) -> None:
    slot = calls.setdefault(as_int(call.get("index")) or 0, {"function": {"name": [], "arguments": []}})
    if call.get("id"):
        slot["id"] = call["id"]
    if call.get("type"):
        slot["type"] = call["type"]
    function = obj(call.get("function"))
    if isinstance(function.get("name"), str):
        slot["function"]["name"].append(function["name"])
    if isinstance(function.get("arguments"), str):
        slot["function"]["arguments"].append(function["arguments"])


def _finish_choice(index: int, parts: dict[str, Any], chat: bool) -> dict[str, Any]:
    if not chat:
        text = "".join(parts.get("text", ()))
        return {"index": index, "text": text, "finish_reason": parts.get("finish_reason")}
    content = parts.get("content")
    message: dict[str, Any] = {
        "role": parts.get("role", "assistant"),
        "content": None if content is None else "".join(content),
    }
    for key in ("refusal", "reasoning_content"):
        if key in parts:
            message[key] = "".join(parts[key])
    if parts.get("tool_calls"):
        message["tool_calls"] = [_finish_call(call) for _, call in sorted(parts["tool_calls"].items())]
    return {"index": index, "message": message, "finish_reason": parts.get("finish_reason")}


def _finish_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    return {
        **call,
        "function": {"name": "".join(function["name"]), "arguments": "".join(function["arguments"])},
    }


_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


def _assemble_response_events(exchange: Exchange, notes: list[str]) -> dict[str, Any]:
    """Responses API events → the final ``response`` object (from response.completed when it came,
    else rebuilt from the deltas of an interrupted stream)."""
    latest: dict[str, Any] = {}
    text: dict[tuple[Any, Any], list[str]] = {}  # deltas joined at the end, like the chat chunks'
    arguments: dict[Any, list[str]] = {}
    for name, event in sse_json(exchange, notes):
        kind = event.get("type", name)
        if isinstance(event.get("response"), dict):
            latest = event["response"]
            if kind in _FINAL_EVENTS:
                return latest
        elif kind == "response.output_text.delta":
            slot = (scalar(event.get("output_index")), scalar(event.get("content_index")))
            text.setdefault(slot, []).append(str(event.get("delta", "")))
        elif kind == "response.function_call_arguments.delta":
            item = scalar(event.get("item_id"))
            arguments.setdefault(item, []).append(str(event.get("delta", "")))
    partial = dict(latest)
    ordered = sorted(text.items(), key=lambda kv: str(kv[0]))
    partial["output_text"] = "".join("".join(pieces) for _, pieces in ordered)
    if arguments:
        partial["function_call_arguments"] = {item: "".join(pieces) for item, pieces in arguments.items()}
    return partial
