"""Cohere v2 (api.cohere.com / api.cohere.ai): chat and its typed event stream, embed, rerank."""

from __future__ import annotations

from typing import Any

from . import Exchange, Parsed
from ._common import as_int, body_json, items, obj, request_model, sse_json, suffix_operation
from ._conversation import EMPTY, Conversation, Part
from ._openai_text import content_parts, message_parts

__all__ = ["COHERE"]

_OPERATIONS = {"/v2/chat": "chat", "/v2/embed": "embed", "/v2/rerank": "rerank", "/v1/chat": "chat"}


class _Cohere:
    name = "cohere"
    hosts = ("api.cohere.com", "api.cohere.ai")

    def match(self, host: str, path: str) -> str | None:
        return _OPERATIONS.get(path.rstrip("/")) if host in ("api.cohere.com", "api.cohere.ai") else None

    def shape(self, path: str) -> str | None:
        """The operation behind any prefix (for a host the user maps to Cohere)."""
        return suffix_operation(path, _OPERATIONS)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        notes: list[str] = []
        if exchange.is_stream and operation == "chat":
            body: Any = _assemble(exchange, notes)
        else:
            body, problems = body_json(exchange)
            notes.extend(problems)
        inp, out = _usage(body)
        total = inp + out if inp is not None and out is not None else None
        return Parsed(self.name, operation, request_model(exchange), body, inp, out, total, tuple(notes))

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        """v2 chat (messages shaped like OpenAI's, content as text blocks), v1 chat (``message``,
        ``chat_history``, ``preamble``) and embed (its texts and vectors)."""
        req, resp = obj(request), obj(response)
        if operation == "embed":
            texts = [t for t in items(req.get("texts")) if isinstance(t, str) and t]
            return Conversation(tuple(Part("user", "text", t) for t in texts), (), _vectors(resp))
        if operation != "chat":
            return EMPTY
        out: list[Part] = []
        if isinstance(req.get("preamble"), str):
            content_parts("system", req["preamble"], out)
        for value in items(req.get("chat_history")):  # v1: {"role": "USER", "message": ...}
            turn = obj(value)
            content_parts(str(turn.get("role", "user")).lower(), turn.get("message"), out)
        if isinstance(req.get("message"), str):
            content_parts("user", req["message"], out)
        for message in items(req.get("messages")):
            if isinstance(message, dict):
                message_parts(message, out, "user")
        answer: list[Part] = []
        message = obj(resp.get("message"))
        if message:
            message_parts({**message, "role": "assistant"}, answer, "assistant")
            plan = message.get("tool_plan")
            if isinstance(plan, str) and plan:
                answer.insert(0, Part("assistant", "reasoning", plan))
        elif isinstance(resp.get("text"), str):  # v1
            content_parts("assistant", resp["text"], answer)
        return Conversation(tuple(out), tuple(answer))


def _vectors(response: dict[str, Any]) -> tuple[int, int | None] | None:
    embeddings = response.get("embeddings")
    if isinstance(embeddings, dict):  # v2: {"float": [[...]], "int8": ...}
        embeddings = next((v for v in embeddings.values() if isinstance(v, list)), None)
    vectors = items(embeddings)
    if not vectors:
        return None
    return len(vectors), len(vectors[0]) if isinstance(vectors[0], list) else None


def _usage(body: Any) -> tuple[int | None, int | None]:
    usage = body.get("usage") if isinstance(body, dict) else None
    usage = usage if isinstance(usage, dict) else (body.get("meta") if isinstance(body, dict) else None)
    if not isinstance(usage, dict):
        return None, None
    counts = usage.get("tokens") if isinstance(usage.get("tokens"), dict) else usage.get("billed_units")
    counts = counts if isinstance(counts, dict) else {}
    return as_int(counts.get("input_tokens")), as_int(counts.get("output_tokens"))


def _assemble(exchange: Exchange, notes: list[str]) -> dict[str, Any]:
    """message-start … message-end → a v2 chat response (text blocks, tool calls, finish, usage)."""
    result: dict[str, Any] = {"message": {"role": "assistant", "content": []}}
    texts: dict[int, list[str]] = {}  # deltas joined at the end (joining as they come is quadratic)
    calls: dict[int, dict[str, Any]] = {}
    plan = ""
    for name, event in sse_json(exchange, notes):
        kind = event.get("type", name)
        delta = obj(event.get("delta"))
        message = obj(delta.get("message"))
        index = as_int(event.get("index")) or 0
        if kind == "message-start":
            result["id"] = event.get("id")
        elif kind in ("content-start", "content-delta"):
            content = obj(message.get("content"))
            texts.setdefault(index, []).append(str(content.get("text", "")))
        elif kind == "tool-plan-delta":
            plan += str(message.get("tool_plan", ""))
        elif kind in ("tool-call-start", "tool-call-delta"):
            _merge_call(calls, index, message.get("tool_calls"))
        elif kind == "message-end":
            result["finish_reason"] = delta.get("finish_reason")
            result["usage"] = delta.get("usage")
    result["message"]["content"] = [{"type": "text", "text": "".join(t)} for _, t in sorted(texts.items())]
    if plan:
        result["message"]["tool_plan"] = plan
    if calls:
        result["message"]["tool_calls"] = [_finish_call(c) for _, c in sorted(calls.items())]
    return result


def _merge_call(calls: dict[int, dict[str, Any]], index: int, call: Any) -> None:
    if not isinstance(call, dict):
        return
    slot = calls.setdefault(index, {"type": "function", "function": {"name": [], "arguments": []}})
    if call.get("id"):
        slot["id"] = call["id"]
    function = obj(call.get("function"))
    if isinstance(function.get("name"), str):
        slot["function"]["name"].append(function["name"])
    if isinstance(function.get("arguments"), str):
        slot["function"]["arguments"].append(function["arguments"])


def _finish_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    return {
        **call,
        "function": {"name": "".join(function["name"]), "arguments": "".join(function["arguments"])},
    }


COHERE = _Cohere()
