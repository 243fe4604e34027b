"""Canonical JSON: the one module that knows how a record is written as bytes.

One encoding serves storage and hashing: UTF-8 JSON with sorted keys, no whitespace, timestamps as
UTC ISO-8601 with exactly six fractional digits and a ``Z``. Values outside JSON's domain are
normalised the same way every time (integers beyond 64 bits become strings, lone surrogates become
U+FFFD, containers nested deeper than orjson writes become a marker string), so encoding never fails
and never depends on the machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime, timezone
from typing import Any

import orjson

from .model import SCHEMA_VERSION, AuditRecord

__all__ = [
    "CANONICAL_OPTIONS",
    "FIELDS",
    "decode_record",
    "dumps",
    "dumps_known",
    "dumps_presorted",
    "encode_record",
    "exact",
    "forget_encodings",
    "format_day",
    "format_timestamp",
    "loads",
    "parse_timestamp",
    "recall",
    "record_from_dict",
    "record_to_dict",
    "remember",
]

FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRecord))
CANONICAL_OPTIONS = _OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1
# orjson writes at most 254 levels of nesting (and reads 1024): deeper containers become this marker
_MAX_DEPTH = 254
_TOO_DEEP = f"[nested deeper than {_MAX_DEPTH} levels]"


def dumps(value: Any) -> bytes:
    """Encode *value* as canonical JSON bytes."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a big int, a lone surrogate, an unknown type
        return orjson.dumps(_normalise(value), option=_OPTIONS)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON text (the inverse of `dumps` for every value `dumps` produces)."""
    return orjson.loads(data)


def _normalise(value: Any, depth: int = 0) -> Any:  # noqa: PLR0911 - one return per JSON type
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _UINT64_MAX else str(value)
    if isinstance(value, (dict, list, tuple)) and depth >= _MAX_DEPTH:
        return _TOO_DEEP
    if isinstance(value, dict):
        return {str(_normalise(k)): _normalise(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v, depth + 1) for v in value]
    if isinstance(value, datetime):
        return format_timestamp(value)
    return repr(value)


_last_formatted: tuple[datetime | None, str] = (None, "")
_last_second: tuple[tuple[int, int, int, int, int, int] | None, str] = (None, "")


def format_timestamp(value: datetime) -> str:
    """``2026-11-24T13:55:16.000123Z``: UTC, always six fractional digits.

    The writer formats each record's timestamp several times (hash, storage, file name): the last
    answer is remembered. Records written together mostly share their second: its text
    (``isoformat``, several times cheaper than ``strftime`` and the same text) is remembered too,
    and only the microseconds are formatted per record."""
    global _last_formatted, _last_second  # noqa: PLW0603 - one-entry caches; swapping a tuple is atomic
    last, text = _last_formatted
    if value is last:
        return text
    utc = value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)
    year = utc.year
    if year >= 1000:
        second = (year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
        known, prefix = _last_second
        if second != known:
            prefix = utc.isoformat()[:19]  # YYYY-MM-DDTHH:MM:SS
            _last_second = (second, prefix)
        text = "%s.%06dZ" % (prefix, utc.microsecond)  # noqa: UP031 - faster than format() here
    else:  # strftime does not pad years before 1000: keep what earlier versions wrote (and hashed)
        text = utc.strftime(_TIMESTAMP_FORMAT)
    _last_formatted = (value, text)
    return text


_last_day: tuple[date | None, str] = (None, "")


def format_day(value: datetime) -> str:
    """``2026-11-24``: the UTC day of *value*, the first ten characters of `format_timestamp`
    (the records of a batch nearly always share one day: the last answer is remembered)."""
    global _last_day  # noqa: PLW0603 - a one-entry cache; swapping the tuple is atomic
    utc = value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)
    day = utc.date()
    last, text = _last_day
    if day == last:
        return text
    if utc.year < 1000:  # strftime's unpadded year: ten characters that reach into the hour, not cached
        return format_timestamp(value)[:10]
    text = day.isoformat()
    _last_day = (day, text)
    return text


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp into an aware UTC datetime (naive input is taken as UTC)."""
    parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _make_record_to_dict() -> Any:
    """`record_to_dict`, generated as one dict display over the fields in sorted order (as
    dataclasses generate ``__init__``): a loop, or ``dict(zip(...))``, costs twice as much, and the
    writer calls it for every record."""
    items = ", ".join(
        f"{name!r}: _format(record.{name})" if name == "created_at" else f"{name!r}: record.{name}"
        for name in sorted(FIELDS)
    )
    namespace: dict[str, Any] = {"_format": format_timestamp}
    exec(f"def record_to_dict(record):\n    return {{{items}}}", namespace)  # noqa: S102 - built from field names
    function = namespace["record_to_dict"]
    function.__doc__ = """The record as a JSON-ready dict (timestamp formatted), its keys in sorted
    order: the hash chain encodes it without sorting them again (see `dumps_presorted`)."""
    return function


record_to_dict: Callable[[AuditRecord], dict[str, Any]] = _make_record_to_dict()


def dumps_presorted(data: dict[str, Any]) -> bytes:
    """`dumps` of a dict whose keys are already in sorted order and whose container values are
    canonical fragments (``orjson.Fragment(dumps(value))``): the same bytes, without sorting. Sorting
    the keys is most of the cost of encoding a record's three dozen fields."""
    try:
        return orjson.dumps(data)
    except TypeError:  # a value orjson refuses (a big int, a lone surrogate): normalise each one
        return orjson.dumps(
            {k: v if isinstance(v, orjson.Fragment) else orjson.Fragment(dumps(v)) for k, v in data.items()}
        )


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
    calls = known.get("tool_calls")
    if isinstance(calls, list):
        known["tool_calls"] = tuple(calls)
    for name in ("metadata", "headers"):
        if name in known and known[name] is None:
            del known[name]
    return AuditRecord(**known)


def encode_record(record: AuditRecord) -> bytes:
    """The canonical JSON bytes of *record* (remembered ones, see `remember`, are not encoded again)."""
    known = recall(record)
    return known if known is not None else dumps(record_to_dict(record))


# -- a memo of encodings the writer already has ------------------------------------------------------
# Sealing a record into the hash chain encodes its payloads and the whole record; storage would
# encode them again a moment later. The writer remembers those bytes here, keyed by the object, and
# clears the memo after each batch. An entry answers only for the very object it was made from
# (records and their payloads are never mutated), so a stale or reused id can never match.

_memo: dict[int, tuple[object, bytes]] = {}
_MEMO_LIMIT = 20_000


def exact(data: bytes) -> bytes:
    """A right-sized copy of *data*: orjson returns its bytes in a buffer of the next power of two
    (16 KiB for a 1 KiB record) and never shrinks it, which matters for bytes kept a while."""
    return b"".join((data, b""))  # a join of two always copies, exactly sized


def remember(value: object, data: bytes) -> None:
    """Note that *value* encodes to *data* (canonical JSON).

    A right-sized copy (`exact`) is kept: a batch of orjson's buffers would hold about ten times
    its size until the batch is written. Copying 1 KiB costs far less than what that costs in
    fresh pages from the kernel, batch after batch, as the allocator trims its heap."""
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    _memo[id(value)] = (value, exact(data))


def recall(value: object) -> bytes | None:
    """The remembered encoding of this very object, if any."""
    entry = _memo.get(id(value))
    return entry[1] if entry is not None and entry[0] is value else None


def forget_encodings() -> None:
    """Drop every remembered encoding (the writer calls this after each batch)."""
    _memo.clear()


def dumps_known(value: Any) -> bytes:
    """`dumps`, or the remembered encoding of this very object."""
    known = recall(value)
    return known if known is not None else dumps(value)


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
