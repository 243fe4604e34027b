"""The storage contract: the `Storage` protocol every backend implements, the optional capabilities
the writer and the read side look for, the query type every backend answers, and helpers shared by
backends.

A backend does three things: write a batch idempotently (the same id twice is one record), read
records matching a `Query`, and close. It never builds records and never retries: the writer does.
Transient failures (cannot connect) raise `StorageUnavailableError`; a record the backend refuses
raises `StorageError`. Everything else is an optional capability, a protocol of its own that a
backend has or has not: `ChainStore` (chain heads, erasure, pruning), `RegistryStore` (authenticated
heads and the chain registry), `MaintainedStore` (idle-time housekeeping), `RecordJSONStore` (stores
each record's canonical JSON), `SummaryStore` (summaries computed by the database), `ErasureReport`
(what an erasure could not reach) and `SchemaStore` (a versioned schema). Callers test for one with
``isinstance`` (every one is ``runtime_checkable``), never by probing for attributes; docs/storage-
backends.md is the guide. This module must not import the writer, the read side or a backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from ..integrity.chain import ChainState, RegistryEntry, new_state, registry_entry
from ..integrity.checkpoints import Checkpoint
from ..record.model import AuditRecord, Kind, record_kind, utcnow
from ..record.urls import MASKED, is_credential_name, mask_url_credentials, redact_url
from ._summary import SessionSummary, StatsRow

__all__ = [
    "MASKED",
    "ChainStore",
    "ErasureReport",
    "MaintainedStore",
    "ProblemHandler",
    "Query",
    "RecordJSONStore",
    "RegistryStore",
    "SchemaStore",
    "Storage",
    "SummaryStore",
    "batch_heads",
    "is_credential_name",
    "mask_url_credentials",
    "matches",
    "raise_head",
    "redact_url",
    "registry_additions",
    "sealed_head",
    "select",
]


logger = logging.getLogger("llmaudit")

#: Called with a human-readable description of data that could not be read (file and line).
ProblemHandler = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """Which records to read. Every filter is optional; ``None`` means "any".

    ``since`` is inclusive and ``until`` exclusive. ``order`` sorts by ``(created_at, id)``.
    ``is_aggregation=None`` returns call records and aggregation records alike. ``kind`` keeps only
    records of those kinds (``"call"``, ``"function"``, ``"aggregation"``: see `record_kind`).
    """

    ids: tuple[str, ...] | None = None
    session_key: str | None = None
    user: str | None = None
    client: str | None = None
    provider: str | None = None
    model: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    errors_only: bool = False
    is_aggregation: bool | None = None
    kind: tuple[Kind, ...] | None = None
    limit: int | None = None
    order: Literal["asc", "desc"] = "asc"


@runtime_checkable
class Storage(Protocol):
    """What the writer and the read side need from every backend (the optional capabilities below
    add to it). A writer never calls one object's ``write`` from two threads at once, and hands
    it batches in the order the records were sealed; several processes, each with a storage object
    of its own, may write one store at once. See docs/storage-backends.md for the whole contract."""

    #: The storage URL with any password removed, for messages.
    url: str

    def write(self, records: Sequence[AuditRecord]) -> None:
        """Store *records*; records whose id is already stored are skipped, not duplicated."""

    def read(self, query: Query = ..., *, on_problem: ProblemHandler | None = None) -> Iterator[AuditRecord]:
        """Yield the records matching *query*, in its order, each id once."""

    def close(self) -> None:
        """Release connections and file handles; idempotent."""

    # Optional: ``maintain()``, called by the background writer (under its store lock) when its queue
    # is empty, for housekeeping that should not delay a write or a flush (SQLite's checkpoint).


@runtime_checkable
class MaintainedStore(Protocol):
    """A backend with housekeeping to do while the writer is idle (SQLite: its WAL checkpoint)."""

    def maintain(self) -> None:
        """Called by the background writer (under its store lock) when its queue is empty, for work
        that should not delay a write or a flush. Cheap when there is nothing to do; a failure is
        logged at debug level and never costs a record."""


@runtime_checkable
class RecordJSONStore(Protocol):
    """A backend that may declare that what it stores for a record is exactly the record's canonical
    JSON (`record.codec.encode_record`): the writer then hands it encodings the chain has already
    made. Only a true ``writes_record_json`` counts (the JSONL backend)."""

    writes_record_json: bool


@runtime_checkable
class SummaryStore(Protocol):
    """A backend that computes `Reader.sessions` and `Reader.stats` itself (the SQL backend: one
    ``GROUP BY``). It must give the rows the reader's Python fallback would: the same kinds
    (`record_kind`), nearest-rank percentiles and costs rounded to 1e-9 (``storage._summary``)."""

    def summarize_sessions(self, query: Query, limit: int | None) -> Iterable[SessionSummary]:
        """One `SessionSummary` per session key among the records matching *query*, the most
        recently active first, at most *limit* of them."""

    def summarize(self, by: tuple[str, ...], query: Query) -> Iterable[StatsRow]:
        """One `StatsRow` per group of *by* (field names, or ``day``: the UTC date) among the records
        matching *query* (its ``kind`` says which kinds are counted); any order."""


@runtime_checkable
class ErasureReport(Protocol):
    """A `ChainStore` that says what an erasure could not make sure of, for `ForgetResult`."""

    #: What the last ``erase`` or ``delete`` could not remove from the backend's files (empty: all).
    erase_caveats: tuple[str, ...]
    #: Copies of erased text the backend keeps beyond llmaudit's reach on every run (a server's WAL).
    residual_copies: tuple[str, ...]


@runtime_checkable
class SchemaStore(Protocol):
    """A backend with a versioned schema (the SQL backend; ``llmaudit db upgrade``)."""

    def schema_version(self) -> int | None:
        """The schema version stamped in the store."""

    def upgrade(self) -> int:
        """Apply pending migrations; returns the version reached."""


@runtime_checkable
class ChainStore(Protocol):
    """What the built-in backends add for the tamper-evident chain, erasure and pruning.

    ``write`` also raises each writer's head (``integrity.chain.ChainState``) to the highest ``seq`` written,
    in the same transaction or under the same lock as the records, never lowering it (a replayed
    spool file brings older records). A third-party backend without these methods still stores
    records; `llmaudit.open(url).verify()` then says what it cannot check.
    """

    def chain_states(self) -> dict[str, ChainState]:
        """Each writer's head and prune checkpoint."""

    def erase(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        """Overwrite payload fields in place (``{id: {field: tombstone}}``), leaving no copy of the
        old value behind in the backend's files; returns how many records changed."""

    def delete(self, ids: Sequence[str], checkpoints: Mapping[str, tuple[int, str]]) -> int:
        """Delete *ids* and set each writer's prune checkpoint ``(seq, hash)`` in one step."""


@runtime_checkable
class CheckpointStore(Protocol):
    """What the built-in backends add to keep the signed checkpoints (``integrity.checkpoints``)
    beside the records: their own table (SQL), ``checkpoints.jsonl`` (JSONL) or a list (memory).

    ``write_checkpoints`` is idempotent per ``(writer_id, n)``: a copy already stored is kept as it is
    (a writer retrying after a failure sends the same checkpoint again)."""

    def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Keep *checkpoints*."""

    def read_checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]:
        """The stored checkpoints (of *writer_id*, or of every writer), by writer then ``n``."""


def unstored_checkpoints(known: Iterable[Checkpoint], incoming: Iterable[Checkpoint]) -> list[Checkpoint]:
    """*incoming* without those whose ``(writer_id, n)`` is in *known* (or earlier in *incoming*)."""
    seen = {(c.writer_id, c.n) for c in known}
    fresh = []
    for checkpoint in incoming:
        if (checkpoint.writer_id, checkpoint.n) not in seen:
            seen.add((checkpoint.writer_id, checkpoint.n))
            fresh.append(checkpoint)
    return fresh


def ordered_checkpoints(checkpoints: Iterable[Checkpoint], writer_id: str | None) -> list[Checkpoint]:
    """*checkpoints* of *writer_id* (every writer's: None), by writer then ``n``."""
    chosen = [c for c in checkpoints if writer_id is None or c.writer_id == writer_id]
    return sorted(chosen, key=lambda c: (c.writer_id, c.n))


@runtime_checkable
class RegistryStore(Protocol):
    """What the built-in backends add to authenticate heads and checkpoints (see ``integrity.chain``).

    ``chain_key`` (the HMAC key, None for an unkeyed chain) is set by whoever writes: the writer
    from its chain's key, `Reader.prune` and `Reader.seal_legacy` from theirs. ``write`` then MACs
    each head it raises and appends a ``writer`` entry to the registry for a writer the registry
    does not list yet, in the same transaction (or under the same lock) as the records; ``delete``
    MACs each checkpoint and appends a ``prune`` entry the same way.
    """

    chain_key: bytes | None

    def registry(self) -> list[RegistryEntry]:
        """Every registry entry, in order."""

    def seal_legacy(self, records: Sequence[AuditRecord], detail: Mapping[str, Any]) -> None:
        """Give already-stored records the chain fields of *records* (one new writer, sealed by
        `Reader.seal_legacy`), set that writer's head, and append a ``seal-legacy`` registry entry
        carrying *detail*, in one step."""


def raise_head(
    known: ChainState | None, writer: str, seq: int, digest: str, key: bytes | None
) -> ChainState | None:
    """The writer's state with its head raised to ``(seq, digest)`` and MACed, or None when the
    stored head is as high already (a replayed spool brings older records)."""
    if known is None:
        return new_state(writer, seq, digest, key)
    if seq > known.head_seq:
        return known.raised(writer, seq, digest, key)
    return None


def registry_additions(
    tail: RegistryEntry | None,
    kind: str,
    items: Mapping[str, tuple[int, str]],
    key: bytes | None,
    detail: Mapping[str, Any] | None = None,
) -> list[RegistryEntry]:
    """The entries to append after *tail*: one of *kind* per ``{writer: (seq, hash)}``, in writer
    order, each linked to the one before."""
    added: list[RegistryEntry] = []
    now = utcnow()
    for writer, (seq, digest) in sorted(items.items()):
        entry = registry_entry(
            added[-1] if added else tail, kind, writer, seq, digest, key=key, at=now, detail=detail
        )
        added.append(entry)
    return added


def registered_writers(entries: Iterable[RegistryEntry]) -> set[str]:
    """The writers a registry lists (first stored, or sealed from legacy records)."""
    return {e.writer_id for e in entries if e.kind in ("writer", "seal-legacy")}


def sealed_head(records: Sequence[AuditRecord]) -> tuple[str, int, str]:
    """The writer, ``seq`` and hash of the last of *records* (sealed by `Reader.seal_legacy`)."""
    last = records[-1]
    if last.writer_id is None or last.seq is None or last.hash is None:
        raise ValueError("seal_legacy takes records sealed into a chain")
    return last.writer_id, last.seq, last.hash


def batch_heads(records: Sequence[AuditRecord]) -> dict[str, tuple[int, str]]:
    """The highest ``(seq, hash)`` per writer in a batch."""
    heads: dict[str, tuple[int, str]] = {}
    for record in records:
        if record.writer_id is None or record.seq is None or record.hash is None:
            continue
        known = heads.get(record.writer_id)
        if known is None or record.seq > known[0]:
            heads[record.writer_id] = (record.seq, record.hash)
    return heads


_EQUALITY_FILTERS = ("session_key", "user", "client", "provider", "model", "source")


def matches(record: AuditRecord, query: Query) -> bool:  # noqa: PLR0911 - one return per filter
    """Whether *record* satisfies every filter of *query* (limit and order aside)."""
    for name in _EQUALITY_FILTERS:
        wanted = getattr(query, name)
        if wanted is not None and getattr(record, name) != wanted:
            return False
    if query.ids is not None and record.id not in query.ids:
        return False
    if query.since is not None and record.created_at < query.since:
        return False
    if query.until is not None and record.created_at >= query.until:
        return False
    if query.errors_only and not is_error(record):
        return False
    if query.kind is not None and record_kind(record) not in query.kind:
        return False
    return query.is_aggregation is None or record.is_aggregation == query.is_aggregation


def is_error(record: AuditRecord) -> bool:
    """A failed call: an exception was recorded, or the HTTP status is 400 or above."""
    return record.error is not None or (record.status_code or 0) >= 400


def select(records: Iterable[AuditRecord], query: Query) -> list[AuditRecord]:
    """Filter, sort and limit in memory: the reference semantics every backend must match."""
    chosen = [r for r in records if matches(r, query)]
    chosen.sort(key=lambda r: (r.created_at, r.id), reverse=query.order == "desc")
    return chosen if query.limit is None else chosen[: query.limit]


def warn_problem(message: str) -> None:
    """The default `ProblemHandler`: a warning on the ``llmaudit`` logger."""
    logger.warning("%s", message)
