"""to_jsonable: any Python value as JSON, safely. Runs on the writer thread (decorator records).

Pydantic models through ``model_dump(mode="json")``, dataclasses field by field, enums by value,
dates as ISO-8601, bytes as their size and SHA-256, sets and tuples as lists, mappings with string
keys; anything else as a (shortened) ``repr``. Cycles and very deep values are cut off with a marker.
Never raises: a value whose conversion fails becomes a note-like string.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "MAX_REPR", "to_jsonable"]

MAX_DEPTH = 20
MAX_ITEMS = 1000
MAX_REPR = 500


def to_jsonable(value: Any) -> Any:
    """*value* converted to JSON-native types (dict, list, str, int, float, bool, None)."""
    return _convert(value, 0, set())


def _convert(value: Any, depth: int, seen: set[int]) -> Any:  # noqa: PLR0911 - one branch per kind
    if value is None or isinstance(value, (bool, int, float, str)):
        return (
            value
            if not isinstance(value, int) or isinstance(value, bool) or abs(value) < 2**63
            else str(value)
        )
    if depth >= MAX_DEPTH:
        return "<cut: too deep>"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(value, enum.Enum):
        return _convert(value.value, depth + 1, seen)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal, PurePath, dt.timedelta)):
        return str(value)
    if id(value) in seen:
        return "<cut: cycle>"
    return _container(value, depth, seen)


def _container(value: Any, depth: int, seen: set[int]) -> Any:
    seen = seen | {id(value)}
    try:
        if hasattr(value, "model_dump") and callable(value.model_dump):  # pydantic v2
            return _convert(value.model_dump(mode="json"), depth + 1, seen)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return _mapping(fields, depth, seen)
        if isinstance(value, Mapping):
            return _mapping(value, depth, seen)
        if isinstance(value, (list, tuple, set, frozenset)):
            items = list(value)[:MAX_ITEMS]
            converted = [_convert(v, depth + 1, seen) for v in items]
            return converted + (["<cut: more items>"] if len(value) > MAX_ITEMS else [])
    except Exception as exc:  # noqa: BLE001 - a value's own methods may fail; the record must not
        return f"<unconvertible {type(value).__name__}: {type(exc).__name__}>"
    return _repr(value)


def _mapping(value: Mapping[Any, Any], depth: int, seen: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (k, v) in enumerate(value.items()):
        if i >= MAX_ITEMS:
            out["<cut>"] = f"{len(value) - MAX_ITEMS} more items"
            break
        out[k if isinstance(k, str) else str(k)] = _convert(v, depth + 1, seen)
    return out


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "…"
