"""Google Gemini: generativelanguage.googleapis.com and Vertex AI (aiplatform.googleapis.com),
``models/{model}:generateContent`` and ``:streamGenerateContent`` (SSE with ``alt=sse``, else a JSON
array), embeddings and token counting. The model is named in the path. The same API on any other
host is ``gemini_compatible`` (matched by `_shapes`)."""

from __future__ import annotations

from typing import Any

from ..record.bodies import parse_json
from . import Exchange, Parsed
from ._common import as_int, body_json, items, obj, sse_json
from ._conversation import EMPTY, Conversation, Part, arguments_text, text_of

__all__ = ["COMPATIBLE", "GEMINI", "shape"]

_METHODS = {
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
    "embedContent": "embed_content",
    "batchEmbedContents": "embed_content",
    "countTokens": "count_tokens",
}


def shape(path: str) -> str | None:
    """The operation of a ``.../models/{model}:{method}`` path on any host (cheap: hot path)."""
    _, colon, method = path.rpartition(":")
    return _METHODS.get(method) if colon and "/models/" in path else None


class _Gemini:
    def __init__(self, name: str) -> None:
        self.name = name
        official = name == "gemini"
        self.hosts = ("generativelanguage.googleapis.com",) if official else ()
        self.host_suffixes = ("aiplatform.googleapis.com",) if official else ()

    def match(self, host: str, path: str) -> str | None:
        if self.name != "gemini" or not (
            host == "generativelanguage.googleapis.com" or host.endswith("aiplatform.googleapis.com")
        ):
            return None
        return shape(path)

    def shape(self, path: str) -> str | None:
        return shape(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        notes: list[str] = []
        model = exchange.path.rpartition("/models/")[2].partition(":")[0] or None
        if exchange.path.endswith(":streamGenerateContent"):
            body: Any = _assemble(_chunks(exchange, notes))
        else:
            body, problems = body_json(exchange)
            notes.extend(problems)
        meta = body.get("usageMetadata") if isinstance(body, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        version = body.get("modelVersion") if isinstance(body, dict) else None
        return Parsed(
            self.name,
            operation,
            version if isinstance(version, str) else model,
            body,
            as_int(meta.get("promptTokenCount")),
            _output_tokens(meta),
            as_int(meta.get("totalTokenCount")),
            tuple(notes),
        )

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        """The conversation of a generateContent call (parts: text, thoughts, functionCall,
        functionResponse, inline and file data) or an embedding call (its texts and vectors)."""
        req, resp = obj(request), obj(response)
        if operation == "embed_content":
            return _embedding(req, resp)
        if operation != "generate_content":
            return EMPTY
        out: list[Part] = []
        _parts("system", obj(req.get("systemInstruction", req.get("system_instruction"))), out)
        for value in items(req.get("contents")):
            content = obj(value)
            role = content.get("role")
            _parts(role if isinstance(role, str) and role else "user", content, out)
        answer: list[Part] = []
        for candidate in items(resp.get("candidates")):
            _parts("assistant", obj(obj(candidate).get("content")), answer)
        return Conversation(tuple(out), tuple(answer))


#: Gemini's role of the model's turns, shown as every other API's.
_ROLES = {"model": "assistant", "function": "tool"}


def _parts(role: str, content: dict[str, Any], out: list[Part]) -> None:
    role = _ROLES.get(role, role)
    for value in items(content.get("parts")):
        part = obj(value)
        call = part.get("functionCall", part.get("function_call"))
        result = part.get("functionResponse", part.get("function_response"))
        text = text_of(part.get("text"))
        if text is not None:
            out.append(Part(role, "reasoning" if part.get("thought") else "text", text))
        elif isinstance(call, dict):
            name, call_id = call.get("name"), call.get("id")
            name, call_id = (v if isinstance(v, str) else None for v in (name, call_id))
            out.append(Part(role, "tool_call", arguments_text(call.get("args")), name, call_id))
        elif isinstance(result, dict):
            name, call_id = result.get("name"), result.get("id")
            name, call_id = (v if isinstance(v, str) else None for v in (name, call_id))
            out.append(Part("tool", "tool_result", arguments_text(result.get("response")), name, call_id))
        elif part:
            kind = next(iter(part))
            out.append(Part(role, "media", str(obj(part[kind]).get("mimeType") or kind)))


def _embedding(request: dict[str, Any], response: dict[str, Any]) -> Conversation:
    out: list[Part] = []
    for one in items(request.get("requests")) or [request]:
        _parts("user", obj(obj(one).get("content")), out)
    vectors = items(response.get("embeddings")) or (
        [response["embedding"]] if "embedding" in response else []
    )
    if not vectors:
        return Conversation(tuple(out))
    values = obj(vectors[0]).get("values")
    return Conversation(tuple(out), (), (len(vectors), len(values) if isinstance(values, list) else None))


def _output_tokens(meta: dict[str, Any]) -> int | None:
    out = as_int(meta.get("candidatesTokenCount"))
    thoughts = as_int(meta.get("thoughtsTokenCount"))
    return out if thoughts is None else (out or 0) + thoughts


def _chunks(exchange: Exchange, notes: list[str]) -> list[dict[str, Any]]:
    if exchange.is_stream:
        return [chunk for _, chunk in sse_json(exchange, notes)]
    value, problems = body_json(exchange)  # without alt=sse: one JSON array, possibly cut short
    notes.extend(problems)
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    if isinstance(value, str):
        value, _ = parse_json((value.rstrip().rstrip(",") + "]").encode())
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
    return [value] if isinstance(value, dict) else []


def _assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """GenerateContentResponse chunks → one response: text joined, function calls kept, last reason."""
    text, others, result = "", [], {}
    finish = None
    for chunk in chunks:
        for key in ("usageMetadata", "modelVersion", "responseId"):
            if chunk.get(key) is not None:
                result[key] = chunk[key]
        candidate = (items(chunk.get("candidates")) or [{}])[0]
        if not isinstance(candidate, dict):
            continue
        finish = candidate.get("finishReason", finish)
        content = obj(candidate.get("content"))
        for part in items(content.get("parts")):
            if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"):
                text += part["text"]
            elif isinstance(part, dict):
                others.append(part)
    parts = ([{"text": text}] if text else []) + others
    candidate_out: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate_out["finishReason"] = finish
    return {"candidates": [candidate_out], **result}


GEMINI = _Gemini("gemini")
#: Gemini's API on a host llmaudit does not know: no price unless the user maps the host to ``gemini``
COMPATIBLE = _Gemini("gemini_compatible")
