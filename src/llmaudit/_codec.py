"""Canonical JSON: the one module that knows how a record is written as bytes.

One encoding serves storage and hashing: UTF-8 JSON with sorted keys, no whitespace, timestamps as
UTC ISO-8601 with exactly six fractional digits and a ``Z``. Values outside JSON's domain are
normalised the same way every time (integers beyond 64 bits become strings, lone surrogates become
U+FFFD), so encoding never fails and never depends on the machine.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timezone
from typing import Any

import orjson

from ._record import SCHEMA_VERSION, AuditRecord

__all__ = [
    "FIELDS",
    "decode_record",
    "dumps",
    "encode_record",
    "format_timestamp",
    "loads",
    "parse_timestamp",
    "record_from_dict",
    "record_to_dict",
]

FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRecord))
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1


def dumps(value: Any) -> bytes:
    """Encode *value* as canonical JSON bytes."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a big int, a lone surrogate, an unknown type
        return orjson.dumps(_normalise(value), option=_OPTIONS)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON text (the inverse of `dumps` for every value `dumps` produces)."""
    return orjson.loads(data)


def _normalise(value: Any) -> Any:  # noqa: PLR0911 - one return per JSON type
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _UINT64_MAX else str(value)
    if isinstance(value, dict):
        return {str(_normalise(k)): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, datetime):
        return format_timestamp(value)
    return repr(value)


def format_timestamp(value: datetime) -> str:
    """``2026-11-24T13:55:16.000123Z``: UTC, always six fractional digits."""
    return value.astimezone(timezone.utc).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp into an aware UTC datetime (naive input is taken as UTC)."""
    parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def record_to_dict(record: AuditRecord) -> dict[str, Any]:
    """The record as a JSON-ready dict (timestamps formatted, tuples as lists)."""
    data = {name: getattr(record, name) for name in FIELDS}
    data["created_at"] = format_timestamp(record.created_at)
    return data


def record_from_dict(data: dict[str, Any]) -> AuditRecord:
    """Rebuild a record from `record_to_dict` output; fields added by later schemas get defaults.

    Raises:
        ValueError: the record was written by a newer schema, or a field is invalid.
    """
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(
            f"record schema_version {version!r} is newer than this llmaudit reads ({SCHEMA_VERSION})"
        )
    known = {name: data[name] for name in FIELDS if name in data}
    created = known.get("created_at")
    if isinstance(created, str):
        known["created_at"] = parse_timestamp(created)
    for name in ("tags", "notes"):
        if name in known:
            known[name] = tuple(known[name] or ())
    for name in ("metadata", "headers"):
        if name in known and known[name] is None:
            del known[name]
    return AuditRecord(**known)


def encode_record(record: AuditRecord) -> bytes:
    """The canonical JSON bytes of *record*."""
    return dumps(record_to_dict(record))


def decode_record(data: bytes | bytearray | memoryview | str) -> AuditRecord:
    """The inverse of `encode_record`.

    Raises:
        ValueError: *data* is not JSON or not a valid record.
    """
    value = loads(data)
    if not isinstance(value, dict):
        # ValueError, not TypeError: to the reader this is bad data, like any other undecodable line
        raise ValueError(f"a record must be a JSON object, not {type(value).__name__}")  # noqa: TRY004
    return record_from_dict(value)
