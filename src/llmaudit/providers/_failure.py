"""What a failed HTTP call says: the record's ``error`` for a response with status 400 or more.

Runs on the writer thread, in record building, over the already decoded (and secret-scrubbed) body;
never on the caller's thread. Each provider's error body is recognised by its shape, so a gateway or a
self-hosted server speaking a provider's format is read the same way on any host:

- OpenAI and compatible servers (Azure, Groq, LiteLLM proxy, vLLM, OpenRouter), Gemini:
  ``{"error": {"message", "type", "code", "param"}}``, Gemini's with ``"status"``;
- Anthropic: ``{"type": "error", "error": {"type", "message"}}``;
- Ollama, text-generation-inference: ``{"error": "..."}`` (and ``"error_type"``);
- Mistral, Cohere, vLLM: ``{"message": ..., "type"?, "code"?}`` (Mistral's ``"object": "error"``);
- FastAPI-style validation errors (Mistral's 422): ``{"detail": "..."}`` or ``{"detail": [{"loc", "msg"}]}``;
- anything else: an HTML page's ``<title>`` (or its first line of text), a text body's first
  non-empty line, other JSON compactly.

The result is one line, ``HTTP 429 rate_limit_exceeded: Rate limit reached…``, capped in length. It
is stored like every other field: record building scrubs the request's credentials from it and the
redactor's detectors scan it, so a key an error message quotes is not stored. This module only reads.
"""

from __future__ import annotations

import html
import json
import re
from http import HTTPStatus
from typing import Any, Final

__all__ = ["MAX_ERROR_CHARS", "describe_failure"]

#: Longest ``error`` made from a response body, in characters (the provider's message is cut first).
MAX_ERROR_CHARS: Final = 600
_MAX_MESSAGE_CHARS: Final = 480
_MAX_LABEL_CHARS: Final = 64
#: How many of a validation error's items are named.
_MAX_DETAILS: Final = 3
_SPACE = re.compile(r"\s+")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def describe_failure(status: int, body: Any) -> str:
    """The ``error`` of a call answered with HTTP *status* (400 or more) and *body* (the decoded
    response: a JSON value, or text when it is not JSON): the status and what the provider said."""
    labels, message = _said(body, status)
    head = f"HTTP {status}"
    kept = [label for label in dict.fromkeys(_cut(x, _MAX_LABEL_CHARS) for x in labels) if label]
    if kept:
        head += " " + "/".join(kept)
    if not message:
        return head if kept else _with_phrase(head, status)
    return _cut(f"{head}: {_cut(message, _MAX_MESSAGE_CHARS)}", MAX_ERROR_CHARS)


def _with_phrase(head: str, status: int) -> str:
    try:
        return f"{head} {HTTPStatus(status).phrase}"
    except ValueError:
        return head


def _said(body: Any, status: int) -> tuple[list[str], str]:
    """(labels: error type, code, status, and message) from any body."""
    if isinstance(body, list) and body:  # Gemini's streaming endpoints answer [{"error": {...}}]
        body = body[0]
    if isinstance(body, dict):
        return _from_object(body, status)
    if isinstance(body, str):
        return [], _from_text(body)
    return [], "" if body is None else _compact(body)


def _from_object(body: dict[str, Any], status: int) -> tuple[list[str], str]:
    error = body.get("error")
    if isinstance(error, dict):  # OpenAI, Azure, Gemini, Anthropic ({"type": "error", "error": {...}})
        labels = _labels(error, ("type", "code", "status"), status)
        message = _text(error.get("message")) or _compact_rest(error, ("type", "code", "status", "param"))
        param = error.get("param")
        if isinstance(param, str) and param:
            message = f"{message} (param {param})" if message else f"param {param}"
        return labels, message
    if isinstance(error, str):  # Ollama, text-generation-inference
        return _labels(body, ("error_type", "type", "code"), status), _one_line(error)
    if "message" in body:  # Mistral, Cohere, vLLM
        return _labels(body, ("type", "code"), status), _message(body["message"])
    if "detail" in body:  # FastAPI-style validation (Mistral's 422)
        return _labels(body, ("type", "code"), status), _message(body["detail"])
    return [], _compact(body)


def _labels(source: dict[str, Any], names: tuple[str, ...], status: int) -> list[str]:
    """The type/code/status words of an error, without one that only repeats the HTTP status."""
    found = []
    for name in names:
        value = source.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (str, int)) and str(value) and str(value) != str(status):
            found.append(_one_line(str(value)))
    return found


def _message(value: Any) -> str:
    """A message that may be text, a validation error list, or an object holding either."""
    if isinstance(value, str):
        return _one_line(value)
    if isinstance(value, dict):
        inner = value.get("detail", value.get("message"))
        return _message(inner) if inner is not None else _compact(value)
    if isinstance(value, list):
        return _details(value)
    return "" if value is None else _compact(value)


def _details(items: list[Any]) -> str:
    """``body.messages.0.content: Input should be a valid string; …`` from a validation error list
    (its ``msg`` and ``loc``, never its ``input``, which echoes the request)."""
    parts = []
    for item in items[:_MAX_DETAILS]:
        if not isinstance(item, dict):
            parts.append(_compact(item))
            continue
        where = item.get("loc")
        text = _text(item.get("msg")) or _text(item.get("message")) or _text(item.get("type"))
        if isinstance(where, list) and where:
            text = f"{'.'.join(str(x) for x in where)}: {text}"
        parts.append(text)
    if len(items) > _MAX_DETAILS:
        parts.append(f"and {len(items) - _MAX_DETAILS} more")
    return "; ".join(p for p in parts if p)


def _compact_rest(source: dict[str, Any], known: tuple[str, ...]) -> str:
    rest = {k: v for k, v in source.items() if k not in known}
    return _compact(rest) if rest else ""


def _from_text(text: str) -> str:
    """An HTML page's title (else its first line of visible text); a text body's first line."""
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        named = _one_line(html.unescape(_TAG.sub(" ", title.group(1)))) if title else ""
        if named:
            return named
        text = html.unescape(_TAG.sub("\n", _HIDDEN.sub("\n", text)))
    for line in text.splitlines():
        if line.strip():
            return _one_line(line)
    return ""


def _text(value: Any) -> str:
    return _one_line(value) if isinstance(value, str) else ""


def _compact(value: Any) -> str:
    return _one_line(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
