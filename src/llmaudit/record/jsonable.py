"""to_jsonable: any Python value as JSON, safely. Runs on the writer thread (decorator records).

Pydantic models through ``model_dump(mode="json")``, dataclasses and attrs classes field by field,
enums by value, dates as ISO-8601, bytes as their size and SHA-256, sets and tuples as lists, mappings
with string keys; anything else as a (shortened) ``repr``. Cycles and very deep values are cut off with
a marker. Never raises: a value whose conversion fails becomes a note-like string.

Credentials: a value held under a credential's name (a key, field, argument or attribute called
``api_key``, ``token``, ``password``, ``client_secret``…: `record.headers.is_credential_name`) becomes
``"[REDACTED]"``; with a *secrets* list, its text is collected there too (an attribute of a plain
object, shown through its ``repr``, is collected and scrubbed from that text), so that `scrub` can
remove it from the rest of the record (a result or an error message that repeats it).
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

from .headers import MASK, is_credential_name

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "MAX_REPR", "MIN_SECRET_CHARS", "scrub", "to_jsonable"]

MAX_DEPTH = 20
MAX_ITEMS = 1000
MAX_REPR = 500
#: A collected credential shorter than this is not looked for elsewhere (too likely to be a word).
MIN_SECRET_CHARS = 8
_MIN_ATTRIBUTE_CHARS = 4  # a plain object's credential attribute, scrubbed from the object's own repr


def to_jsonable(value: Any, secrets: list[str] | None = None) -> Any:
    """*value* converted to JSON-native types (dict, list, str, int, float, bool, None), credentials
    masked by name (and their text appended to *secrets* when given)."""
    return _convert(value, 0, set(), [] if secrets is None else secrets)


def scrub(value: Any, secrets: list[str]) -> Any:
    """The JSON *value* (or a string) with every text in *secrets* (of `MIN_SECRET_CHARS` or more)
    replaced by ``"[REDACTED]"`` wherever it occurs, in keys as in values."""
    texts = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
    return _scrub(value, texts) if texts else value


def _scrub(value: Any, texts: list[str]) -> Any:
    if isinstance(value, str):
        for text in texts:
            if text in value:
                value = value.replace(text, MASK)
        return value
    if isinstance(value, dict):
        return {_scrub(k, texts): _scrub(v, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, texts) for v in value]
    return value


def _collect(value: Any, secrets: list[str]) -> None:
    """Append every string inside the converted *value* to *secrets*."""
    if isinstance(value, str):
        secrets.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, secrets)
    elif isinstance(value, list):
        for item in value:
            _collect(item, secrets)


def _convert(value: Any, depth: int, seen: set[int], secrets: list[str]) -> Any:  # noqa: PLR0911
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
        return _convert(value.value, depth + 1, seen, secrets)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal, PurePath, dt.timedelta)):
        return str(value)
    if id(value) in seen:
        return "<cut: cycle>"
    return _container(value, depth, seen, secrets)


def _container(value: Any, depth: int, seen: set[int], secrets: list[str]) -> Any:
    seen = seen | {id(value)}
    try:
        if hasattr(value, "model_dump") and callable(value.model_dump):  # pydantic v2
            return _convert(value.model_dump(mode="json"), depth + 1, seen, secrets)
        fields = _fields(value)
        if fields is not None:
            return _mapping(fields, depth, seen, secrets)
        if isinstance(value, Mapping):
            return _mapping(value, depth, seen, secrets)
        if isinstance(value, (list, tuple, set, frozenset)):
            items = list(value)[:MAX_ITEMS]
            converted = [_convert(v, depth + 1, seen, secrets) for v in items]
            return converted + (["<cut: more items>"] if len(value) > MAX_ITEMS else [])
    except Exception as exc:  # noqa: BLE001 - a value's own methods may fail; the record must not
        return f"<unconvertible {type(value).__name__}: {type(exc).__name__}>"
    return _repr(value, secrets)


def _fields(value: Any) -> dict[str, Any] | None:
    """The fields of a dataclass or attrs instance (attrs found without importing it), else None."""
    if isinstance(value, type):
        return None
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    attributes = getattr(type(value), "__attrs_attrs__", None)
    if attributes is not None:
        return {a.name: getattr(value, a.name) for a in attributes}
    return None


def _mapping(value: Mapping[Any, Any], depth: int, seen: set[int], secrets: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (k, v) in enumerate(value.items()):
        if i >= MAX_ITEMS:
            out["<cut>"] = f"{len(value) - MAX_ITEMS} more items"
            break
        key = k if isinstance(k, str) else str(k)
        converted = _convert(v, depth + 1, seen, secrets)
        if is_credential_name(key) and isinstance(converted, (str, list, dict)):
            _collect(converted, secrets)
            converted = MASK
        out[key] = converted
    return out


def _credential_attributes(value: Any) -> list[str]:
    """The string values of *value*'s attributes (``__dict__`` and ``__slots__``) named like credentials."""
    names = dict(getattr(value, "__dict__", None) or {})
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in names and hasattr(value, name):
                names[name] = getattr(value, name)
    return [
        v for k, v in names.items() if isinstance(k, str) and is_credential_name(k) and isinstance(v, str)
    ]


def _repr(value: Any, secrets: list[str]) -> str:
    try:
        text = repr(value)
        found = _credential_attributes(value)
    except Exception as exc:  # noqa: BLE001
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    if found:  # known exactly here: scrubbed from this text however short
        secrets.extend(found)
        text = _scrub(
            text, sorted({f for f in found if len(f) >= _MIN_ATTRIBUTE_CHARS}, key=len, reverse=True)
        )
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "…"
