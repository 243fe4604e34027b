"""The record: one immutable, schema-versioned row per audited call.

`AuditRecord` is the one type that crosses from the writer to storage and on to the read side. It is
built on the writer thread (never on the caller's hot path) and never mutated afterwards: processors
return a new record through `dataclasses.replace`. Payload fields hold JSON values (dict, list, str,
int, float, bool, None) and are treated as read-only.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Literal

from .frozen import fast_init

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "SOURCES",
    "STRING_LIMITS",
    "AuditRecord",
    "JSONValue",
    "Kind",
    "format_id",
    "new_id",
    "new_id_value",
    "record_kind",
    "utcnow",
]

#: Version of the record layout; bumped with a migration in ``storage/_migrations.py``.
#: 1: the first layout. 2: ``parent_session_key`` (the enclosing session of a nested one).
#: 3: ``headers`` (the allow-listed HTTP headers) and the per-writer chain state beside the records.
#: 4: the conversation in a provider-independent form: ``input_text``, ``output_text``, ``tool_calls``.
SCHEMA_VERSION = 4

JSONValue = dict[str, Any] | list[Any] | str | int | float | bool | None

#: Where a record comes from.
SOURCES = ("transport", "decorator", "aggregate", "manual")

#: Longest value, in characters, of each indexed text field: the width of its SQL column.
STRING_LIMITS: Mapping[str, int] = {
    "id": 36,
    "session_key": 255,
    "parent_session_key": 255,
    "user": 255,
    "client": 255,
    "provider": 64,
    "operation": 128,
    "model": 255,
    "method": 16,
    "source": 32,
    "parent_id": 36,
    "writer_id": 64,
    "prev_hash": 128,
    "hash": 128,
}


_LIMITS = tuple(STRING_LIMITS.items())


def utcnow() -> datetime:
    """The current time in UTC, with microseconds."""
    return datetime.now(timezone.utc)


_sequence = itertools.count()  # next() on it is atomic under the GIL: no lock on the hot path
_process_bits = [int.from_bytes(os.urandom(4), "big") & 0x3FFFFFFF]


def _reseed_after_fork() -> None:
    _process_bits[0] = int.from_bytes(os.urandom(4), "big") & 0x3FFFFFFF


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_after_fork)


def new_id_value() -> int:
    """A UUIDv7 (RFC 9562) as a 128-bit integer: time-ordered, unique, cheap enough for the hot path.

    Layout: 48-bit Unix milliseconds, version 7, then (in place of random bits) the high 12 bits of
    a per-process sequence, the variant, 30 bits drawn from the OS once per process (again in a
    forked child) and the low 32 bits of the sequence. So ids of one process sort in creation order
    within a millisecond, and two processes never share a sequence.
    """
    seq = next(_sequence)
    return (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76
        | ((seq >> 32) & 0xFFF) << 64
        | 0b10 << 62
        | _process_bits[0] << 32
        | (seq & 0xFFFFFFFF)
    )


def format_id(value: int | str) -> str:
    """The canonical 8-4-4-4-12 string of an id from `new_id_value` (strings pass through)."""
    if isinstance(value, str):
        return value
    h = value.to_bytes(16, "big").hex()
    return "-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))


def new_id() -> str:
    """A new UUIDv7 as a string (see `new_id_value`)."""
    return format_id(new_id_value())


@fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """One audited call (or one aggregation of calls).

    Every field is keyword-only and has a default, so a record can be built by hand (``source``
    "manual") and given to ``Auditor.submit``. Text fields indexed by the SQL backends are limited to
    their column's width (`STRING_LIMITS`).

    Attributes:
        id: the record's UUIDv7 as a string (time-ordered, unique; writes are idempotent on it).
        created_at: when the call started, timezone-aware UTC with microseconds (another offset is
            converted to UTC).
        schema_version: the record layout it was written with (`SCHEMA_VERSION`).
        session_key: the key of the enclosing ``llmaudit.session`` (or a decorator's ``session_key``).
        parent_session_key: the key of the session enclosing that one, for a nested session.
        user: the user the session names.
        tags: the session's and the decorator's tags, in order, without repeats.
        metadata: the session's and the decorator's metadata (JSON values).
        client: the application's name for the LLM client ("support-bot"); defaults to the provider.
        provider: the provider the call went to (``openai``, ``anthropic``, …), None if unknown.
        operation: what was called (``chat.completions``, ``embeddings``, …; a decorated function's
            name for a decorator record).
        model: the model, as the provider's parser found it in the request or the response.
        method: the HTTP method of the request.
        url: the request URL, its credentials removed.
        headers: the allow-listed HTTP headers, ``{"request": {...}, "response": {...}}``; credential
            headers are never stored.
        request: the request payload as JSON, after redaction (a decorator record: the function's
            name and bound arguments).
        response: the response as JSON, after redaction; a streamed response reassembled into the
            final message (a decorator record: the return value).
        input_text: the conversation's input as flat text whatever the API (see
            ``providers._conversation.flat_fields``): one ``role: text`` line per input message. None
            where there is none (and in every record written before schema 4).
        output_text: the answer's text, flat; None where there is none.
        tool_calls: the tool calls the answer asked for, ``{"name", "arguments", "id"}`` each with the
            arguments as JSON text; None where there are none.
        status_code: the HTTP status of the response; None when no response came.
        error: the exception's type and message where the call failed (or the provider's error).
        is_stream: the response was streamed.
        incomplete: the stream ended early, was cancelled or was never read to its end (or a
            decorated generator was closed before its end).
        is_aggregation: a rolled-up summary record (of a session, a day, …) rather than one call.
        duration_ms: total latency in milliseconds (to the end of the response body, or of the
            decorated call).
        ttft_ms: time to the first byte of the response body in milliseconds (streams).
        input_tokens: prompt tokens, from the provider's usage.
        output_tokens: completion tokens, from the provider's usage.
        total_tokens: all tokens the provider counted for the call.
        cost_usd: the call's cost in US dollars, from the price table (None when unknown).
        source: what made the record: ``transport``, ``decorator``, ``aggregate`` or ``manual`` (a
            record built by hand and given to ``Auditor.submit``, unless it says otherwise).
        parent_id: the id of the enclosing ``@audited`` call's record.
        attempt: the SDK's retry count for this request (0 for the first attempt).
        notes: what llmaudit noticed while recording (a cut body, a redaction count, a failure).
        writer_id: the hash chain's writer (one per process) that sealed the record.
        seq: the record's position in its writer's chain, from 1.
        prev_hash: the hash of the writer's previous record (`integrity.heads.GENESIS` for its first).
        hash: the record's chain hash, over its canonical JSON with ``prev_hash`` and ``seq``.

    Raises:
        ValueError: ``created_at`` is naive, an indexed text field is longer than its column
            (`STRING_LIMITS`), or ``source`` is unknown.
    """

    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION
    session_key: str | None = None
    parent_session_key: str | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    client: str | None = None
    provider: str | None = None
    operation: str | None = None
    model: str | None = None
    method: str | None = None
    url: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    request: JSONValue = None
    response: JSONValue = None
    input_text: str | None = None
    output_text: str | None = None
    tool_calls: tuple[dict[str, Any], ...] | None = None
    status_code: int | None = None
    error: str | None = None
    is_stream: bool = False
    incomplete: bool = False
    is_aggregation: bool = False
    duration_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    source: str = "manual"
    parent_id: str | None = None
    attempt: int = 0
    notes: tuple[str, ...] = ()
    writer_id: str | None = None
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def __post_init__(self) -> None:
        created = self.created_at
        if created.tzinfo is None:
            raise ValueError("AuditRecord.created_at must be timezone-aware (UTC)")
        if created.utcoffset():
            object.__setattr__(self, "created_at", created.astimezone(timezone.utc))
        if self.source not in SOURCES:
            raise ValueError(f"AuditRecord.source must be one of {SOURCES}, not {self.source!r}")
        for name, limit in _LIMITS:
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise ValueError(f"AuditRecord.{name} is {len(value)} characters long; the limit is {limit}")
        if not isinstance(self.tags, tuple):
            object.__setattr__(self, "tags", tuple(self.tags))
        if not isinstance(self.notes, tuple):
            object.__setattr__(self, "notes", tuple(self.notes))
        calls = self.tool_calls
        if calls is not None and not isinstance(calls, tuple):
            object.__setattr__(self, "tool_calls", tuple(calls))


Kind = Literal["call", "function", "aggregation"]
#: What a record can be (see `record_kind`).
KINDS: Final[tuple[Kind, ...]] = ("call", "function", "aggregation")
#: The source labels that make a record a function record, or an aggregation, rather than a call.
FUNCTION_SOURCE: Final = "decorator"
AGGREGATE_SOURCE: Final = "aggregate"


def record_kind(record: AuditRecord) -> Kind:
    """What *record* is: ``"aggregation"`` (``is_aggregation`` or source ``aggregate``),
    ``"function"`` (an ``@audited`` record, source ``decorator``), else ``"call"``: an LLM call,
    whatever its source says (``transport``, ``manual``, a label of a later version)."""
    if record.is_aggregation or record.source == AGGREGATE_SOURCE:
        return "aggregation"
    return "function" if record.source == FUNCTION_SOURCE else "call"
