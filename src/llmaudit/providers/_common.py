"""Helpers shared by the provider modules: reading usage numbers and JSON bodies safely."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .._decode import iter_sse, parse_json
from . import Exchange

__all__ = ["as_int", "body_json", "items", "obj", "request_model", "scalar", "sse_json"]


#: Token counts beyond this are no counts (and two of them must still add up within a BIGINT column).
_COUNT_LIMIT = 1 << 62


def as_int(value: Any) -> int | None:
    """An integer token count, or None for anything else (bools, strings and absurd sizes included)."""
    if isinstance(value, int) and not isinstance(value, bool) and -_COUNT_LIMIT < value < _COUNT_LIMIT:
        return value
    return None


def obj(value: Any) -> dict[str, Any]:
    """*value* if it is a JSON object, else an empty one (provider JSON is never trusted)."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """*value* if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def scalar(value: Any) -> Any:
    """*value* if it can key a dict (a JSON scalar), else None: ids and indexes from provider JSON."""
    return value if value is None or isinstance(value, (str, int, float)) else None


def request_model(exchange: Exchange) -> str | None:
    model = exchange.request.get("model") if isinstance(exchange.request, dict) else None
    return model if isinstance(model, str) else None


def body_json(exchange: Exchange) -> tuple[Any, tuple[str, ...]]:
    return parse_json(exchange.response_body, exchange.response_headers.get("content-type"))


def sse_json(exchange: Exchange, notes: list[str]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(event name, JSON object) for every SSE event; ``[DONE]`` skipped, bad data noted."""
    for event in iter_sse(exchange.response_body):
        if event.data.strip() == "[DONE]":
            continue
        value, problems = parse_json(event.data.encode())
        if problems or not isinstance(value, dict):
            notes.append(f"stream event {event.event or 'message'} is not a JSON object: {event.data[:80]!r}")
            continue
        yield event.event, value
