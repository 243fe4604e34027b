"""Ollama (any host, usually localhost:11434): /api/chat and /api/generate with NDJSON streaming,
and the embedding endpoints. Usage is ``prompt_eval_count`` (input) and ``eval_count`` (output)."""

from __future__ import annotations

from typing import Any

from ..record.bodies import iter_ndjson
from . import Exchange, Parsed
from ._common import as_int, body_json, items, obj, request_model, suffix_operation
from ._conversation import Conversation, Part
from ._openai_text import content_parts, message_parts

__all__ = ["OLLAMA"]

_OPERATIONS = {
    "/api/chat": "chat",
    "/api/generate": "generate",
    "/api/embed": "embed",
    "/api/embeddings": "embeddings",
}


class _Ollama:
    name = "ollama"

    def match(self, host: str, path: str) -> str | None:
        return _OPERATIONS.get(path.rstrip("/"))

    def shape(self, path: str) -> str | None:
        """The operation behind any prefix (for a host the user maps to Ollama)."""
        return suffix_operation(path, _OPERATIONS)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        notes: list[str] = []
        if exchange.is_stream:
            body: Any = _assemble(exchange, notes, operation)
        else:
            body, problems = body_json(exchange)
            notes.extend(problems)
        data = body if isinstance(body, dict) else {}
        inp, out = as_int(data.get("prompt_eval_count")), as_int(data.get("eval_count"))
        total = inp + out if inp is not None and out is not None else None
        model = data.get("model")
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
        """chat (OpenAI-shaped messages, images by count, ``thinking``), generate (``system``,
        ``prompt``, ``response``) and the embedding endpoints (their inputs and vectors)."""
        req, resp = obj(request), obj(response)
        out: list[Part] = []
        answer: list[Part] = []
        if operation == "chat":
            for message in items(req.get("messages")):
                if isinstance(message, dict):
                    message_parts(message, out, "user")
            message = obj(resp.get("message"))
            if message:
                message_parts({**message, "reasoning": message.get("thinking")}, answer, "assistant")
            return Conversation(tuple(out), tuple(answer))
        if operation == "generate":
            content_parts("system", req.get("system"), out)
            content_parts("user", req.get("prompt"), out)
            content_parts("assistant", resp.get("response"), answer)
            return Conversation(tuple(out), tuple(answer))
        value = req.get("input", req.get("prompt"))
        for text in [value] if isinstance(value, str) else items(value):
            content_parts("user", text if isinstance(text, str) else None, out)
        vectors = items(resp.get("embeddings")) or ([resp["embedding"]] if "embedding" in resp else [])
        if not vectors:
            return Conversation(tuple(out))
        first = vectors[0]
        return Conversation(tuple(out), (), (len(vectors), len(first) if isinstance(first, list) else None))


def _assemble(exchange: Exchange, notes: list[str], operation: str) -> dict[str, Any]:
    """Stream lines → the last line (done=true and its counts) with the text joined in."""
    final: dict[str, Any] = {}
    text, tool_calls = "", list[Any]()
    for value, problem in iter_ndjson(exchange.response_body):
        if problem or not isinstance(value, dict):
            notes.append(problem or "an NDJSON line is not an object")
            continue
        final = value
        message = obj(value.get("message"))
        text += str(message.get("content", "")) if operation == "chat" else str(value.get("response", ""))
        tool_calls.extend(items(message.get("tool_calls")))
    result = dict(final)
    if operation == "chat":
        message = dict(obj(result.get("message")) or {"role": "assistant"})
        message["content"] = text
        if tool_calls:
            message["tool_calls"] = tool_calls
        result["message"] = message
    else:
        result["response"] = text
    return result


OLLAMA = _Ollama()
