"""The read side's entry point: ``llmaudit.open(url)`` gives one API over every backend.

This module holds what the tamper-evident chain needs from the read side: reading records back,
`Reader.verify`, `Reader.forget` (erasure that keeps the proof) and `Reader.prune` (deleting old
records while leaving a checkpoint). The backends do the storage-specific work (``ChainStore``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from ._chain import (
    MARKED_FIELDS,
    PAYLOAD_FIELDS,
    TOMBSTONE_FIELDS,
    VerifyReport,
    chain_key,
    compute_hash,
    hash_version,
    is_marker,
    is_tombstone,
    marker,
    tombstone,
    verify_chain,
)
from ._codec import decode_record, format_timestamp
from ._errors import ConfigurationError
from ._record import AuditRecord, utcnow
from ._settings import default_spool_dir, default_storage_url
from ._spool import Spool
from ._summary import SessionSummary, StatsRow, nearest_rank, round_cost
from .storage import Query, Storage, open_storage
from .storage._base import ChainStore, ProblemHandler, is_error

__all__ = ["ForgetResult", "PruneResult", "Reader", "SessionSummary", "StatsRow", "open"]

#: An aggregation record lists the ids it covers up to this many (else its session and time range).
MAX_AGGREGATED_IDS = 1000

#: What `Reader.stats` can group by.
GROUPABLE = ("client", "model", "provider", "operation", "user", "session_key", "source", "day")
_FILTER_ALIASES = {"session": "session_key"}


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What `Reader.forget` did: records erased, and spool files it could not touch (in use).

    ``legacy``: records sealed with hashing version 1 (before every field was hashed as a digest):
    only their payloads (request, response, metadata) could be erased without breaking the chain;
    their other fields are kept. ``unverified``: records that did not verify with the key given
    before erasure, erased anyway because ``force=True``.
    """

    erased: int
    spool_replayed: int
    spool_files_in_use: int
    legacy: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What `Reader.prune` did: records deleted and checkpoints left (one per writer cut)."""

    deleted: int
    checkpoints: int
    kept_back: int  # older than the cut-off but after a newer record of the same writer


class Reader:
    """Records, verification, erasure and pruning over one storage; see `open`."""

    def __init__(
        self, storage: Storage, *, owns: bool = True, spool_dir: str | os.PathLike[str] | None = None
    ):
        self.storage = storage
        self._owns = owns
        self._spool_dir = Path(spool_dir) if spool_dir is not None else default_spool_dir(storage.url)

    # -- reading --------------------------------------------------------------------------------

    def records(self, *, on_problem: ProblemHandler | None = None, **filters: Any) -> Iterator[AuditRecord]:
        """Records matching the filters (``session=``, ``user=``, ``client=``, ``model=``,
        ``provider=``, ``source=``, ``since=``, ``until=``, ``errors_only=``, ``is_aggregation=``,
        ``ids=``, ``limit=``, ``order="asc"|"desc"``).

        Raises:
            ConfigurationError: an unknown filter.
        """
        return self.storage.read(_query(filters), on_problem=on_problem)

    def sessions(
        self,
        *,
        limit: int | None = None,
        on_problem: ProblemHandler | None = None,
        **filters: Any,
    ) -> list[SessionSummary]:
        """One summary per session key, the most recently active first (aggregation records left
        out). Takes the filters of `records` except ``limit`` and ``order``."""
        query = replace(_query(filters), is_aggregation=False)
        native = getattr(self.storage, "summarize_sessions", None)
        if native is not None:
            return list(native(query, limit))
        tallies: dict[str, _Tally] = {}
        for r in self.storage.read(query, on_problem=on_problem):
            if r.session_key is not None:
                tallies.setdefault(r.session_key, _Tally()).add(r)
        out = [
            SessionSummary(
                key, t.user, t.first, t.last, t.calls, t.input_tokens, t.output_tokens, t.cost, t.errors
            )
            for key, t in tallies.items()
            if t.first is not None and t.last is not None
        ]
        out.sort(key=lambda x: (x.last, x.key), reverse=True)
        return out if limit is None else out[:limit]

    def stats(
        self,
        by: Sequence[str] = ("client", "model"),
        *,
        include_aggregations: bool = False,
        on_problem: ProblemHandler | None = None,
        **filters: Any,
    ) -> list[StatsRow]:
        """Calls, tokens, cost, p50/p95 latency and errors per group (``by`` from `GROUPABLE`;
        ``day`` is the UTC date), the busiest group first. Aggregation records are left out unless
        *include_aggregations*, so nothing is counted twice.

        Raises:
            ConfigurationError: an unknown grouping field or filter.
        """
        unknown = [name for name in by if name not in GROUPABLE]
        if unknown:
            raise ConfigurationError(
                f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUPABLE)}"
            )
        query = _query(filters)
        if not include_aggregations:
            query = replace(query, is_aggregation=False)
        native = getattr(self.storage, "summarize", None)
        if native is not None:
            return sort_stats(list(native(tuple(by), query)))
        groups: dict[tuple[Any, ...], _Tally] = {}
        for r in self.storage.read(query, on_problem=on_problem):
            key = tuple(_group_value(r, name) for name in by)
            groups.setdefault(key, _Tally()).add(r)
        rows = []
        for key, t in groups.items():
            values = sorted(t.durations)
            rows.append(
                StatsRow(
                    dict(zip(by, key, strict=True)),
                    t.calls,
                    t.input_tokens,
                    t.output_tokens,
                    t.cost,
                    nearest_rank(values, 0.5),
                    nearest_rank(values, 0.95),
                    t.errors,
                )
            )
        return sort_stats(rows)

    def get(self, record_id: str) -> AuditRecord | None:
        """The record with this id, or None."""
        return next(iter(self.storage.read(Query(ids=(record_id,), limit=1))), None)

    # -- the chain ------------------------------------------------------------------------------

    def _chain_store(self, action: str) -> ChainStore:
        if not isinstance(self.storage, ChainStore):
            raise ConfigurationError(f"storage {self.storage.url} does not support {action}")
        return self.storage

    def verify(
        self,
        key: str | bytes | None = None,
        *,
        on_problem: ProblemHandler | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> VerifyReport:
        """Check every record against its writer's hash chain (key: ``LLMAUDIT_CHAIN_KEY`` by default)."""
        store = self._chain_store("verification")
        secret = chain_key(key if key is not None else os.environ.get("LLMAUDIT_CHAIN_KEY"))
        states = store.chain_states()
        records = _counted(self.storage.read(Query(), on_problem=on_problem), progress)
        return verify_chain(records, states, secret)

    def forget(
        self,
        *,
        session: str | None = None,
        user: str | None = None,
        ids: Sequence[str] | None = None,
        key: str | bytes | None = None,
        force: bool = False,
    ) -> ForgetResult:
        """Erase what the matching records hold of the data subject, keeping digests so the log
        still verifies: the JSON fields (request, response, metadata, headers) become tombstones
        (with a MAC over record id, field, digest and time when a chain key is given), the text
        fields (session_key, parent_session_key, user, url, error, tags, notes) the marker
        ``erased:<digest>``, which groups as the value did. A session's nested sessions (records
        whose ``parent_session_key`` is it) are erased with it. Waiting spool files are replayed
        first so that no copy survives there; files held by a running writer are left alone and
        counted. See `ForgetResult` for records sealed before every field was digested.

        Args:
            key: the chain key (``LLMAUDIT_CHAIN_KEY`` by default): the markers' digests are keyed
                like the chain, so a keyed log erased without its key would no longer verify.
            force: erase even records that do not verify with *key* before erasure (tampered, or
                the wrong key): they are listed in ``ForgetResult.unverified``.

        Raises:
            ConfigurationError: no selector was given, the backend cannot erase, or (without
                *force*) a matching record does not verify with *key*.
        """
        if session is None and user is None and not ids:
            raise ConfigurationError("forget needs session=, user= or ids=")
        secret = chain_key(key if key is not None else os.environ.get("LLMAUDIT_CHAIN_KEY"))
        store = self._chain_store("erasure")
        spool = Spool(self._spool_dir)
        replayed = spool.replay(self.storage).records if spool.pending() else 0
        in_use = len(spool.files())
        spool.release()
        now = utcnow()
        payloads: dict[str, dict[str, Any]] = {}
        queries = []
        if session is not None:
            queries.append(Query(session_key=session))
        if user is not None:
            queries.append(Query(user=user))
        if ids:
            queries.append(Query(ids=tuple(ids)))
        wanted = set(ids or ())

        def selected(r: AuditRecord) -> bool:
            return (
                r.id in wanted
                or (session is not None and session in (r.session_key, r.parent_session_key))
                or (user is not None and r.user == user)
            )

        if session is not None:  # nested sessions: no index on parent_session_key, so a scan (rare)
            queries.append(Query())
        legacy: list[str] = []
        unverified: list[str] = []
        for query in queries:
            for record in self.storage.read(query):
                if record.id in payloads or not selected(record):
                    continue
                fields = _erasure(record, now, secret)
                if not fields:
                    continue
                payloads[record.id] = fields
                if hash_version(record) == 1:
                    legacy.append(record.id)
                if record.hash is not None and compute_hash(record, secret) != record.hash:
                    unverified.append(record.id)
        if unverified and not force:
            raise ConfigurationError(
                f"{len(unverified)} matching records (e.g. {unverified[0]!r}) do not verify with "
                f"{'the chain key given' if secret else 'no chain key (set LLMAUDIT_CHAIN_KEY)'}: "
                "erasing them would leave digests that never verify; give the right key, or force"
            )
        erased = store.erase(payloads) if payloads else 0
        self._erase_rejected(selected, now, secret)
        return ForgetResult(erased, replayed, in_use, legacy=tuple(legacy), unverified=tuple(unverified))

    def _erase_rejected(
        self, selected: Callable[[AuditRecord], bool], now: datetime, key: bytes | None = None
    ) -> None:
        """Rejected records kept in the spool for the operator lose the subject's data too (the
        files are rewritten atomically, like JSONL files)."""
        from .storage.jsonl import _changed_lines, _replace_file  # noqa: PLC0415

        if not self._spool_dir.is_dir():
            return
        for path in self._spool_dir.glob("rejected-*.jsonl"):
            data = path.read_bytes()
            ids = {r.id for r in _decode_lines(data) if selected(r)}
            if ids:
                lines, _ = _changed_lines(data, ids, lambda r: replace(r, **_erasure(r, now, key)))
                _replace_file(path, b"".join(lines))

    def prune(self, older_than: datetime, *, progress: Callable[[int], None] | None = None) -> PruneResult:
        """Delete records created before *older_than*, leaving per writer a checkpoint (the last
        deleted ``seq`` and hash) where verification of what remains starts. Only a writer's
        unbroken run of old records from its oldest one is cut, so what remains is contiguous."""
        store = self._chain_store("pruning")
        old: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        first_kept: dict[str, int] = {}
        unchained: list[str] = []
        for record in _counted(self.storage.read(Query()), progress):
            if record.writer_id is None or record.seq is None or record.hash is None:
                if record.created_at < older_than:
                    unchained.append(record.id)
                continue
            if record.created_at < older_than:
                old[record.writer_id].append((record.seq, record.id, record.hash))
            else:
                known = first_kept.get(record.writer_id)
                first_kept[record.writer_id] = record.seq if known is None else min(known, record.seq)
        ids = list(unchained)
        checkpoints: dict[str, tuple[int, str]] = {}
        kept_back = 0
        for writer, rows in old.items():
            limit = first_kept.get(writer)
            cut = [row for row in sorted(rows) if limit is None or row[0] < limit]
            kept_back += len(rows) - len(cut)
            if cut:
                ids.extend(row[1] for row in cut)
                checkpoints[writer] = (cut[-1][0], cut[-1][2])
        deleted = store.delete(ids, checkpoints) if ids else 0
        return PruneResult(deleted, len(checkpoints), kept_back)

    # -- aggregation and export ------------------------------------------------------------------

    def aggregate(
        self,
        *,
        session: str | None = None,
        day: date | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> AuditRecord:
        """Write one ``is_aggregation=true`` record summarising a session or a UTC day (calls, tokens,
        cost, models, time span, and the ids it covers, or its session and time range when there are
        more than `MAX_AGGREGATED_IDS`), chained like any record. Totals leave aggregation records out
        by default, so nothing is counted twice.

        Raises:
            ConfigurationError: neither or both of *session* and *day*, or nothing to aggregate.
        """
        if (session is None) == (day is None):
            raise ConfigurationError("aggregate needs exactly one of session= or day=")
        if day is not None:
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            query = Query(since=start, until=start + timedelta(days=1), is_aggregation=False)
        else:
            query = Query(session_key=session, is_aggregation=False)
        ids: list[str] = []
        tally = _Tally()
        for r in _counted(self.storage.read(query), progress):
            tally.add(r)
            if len(ids) <= MAX_AGGREGATED_IDS:
                ids.append(r.id)
        first, last = tally.first, tally.last
        if first is None or last is None:
            raise ConfigurationError(
                f"nothing to aggregate for {'session ' + str(session) if session else day}"
            )
        summary: dict[str, Any] = {
            "calls": tally.calls,
            "errors": tally.errors,
            "input_tokens": tally.input_tokens,
            "output_tokens": tally.output_tokens,
            "cost_usd": tally.cost,
            "models": sorted(tally.models),
            "first": format_timestamp(first),
            "last": format_timestamp(last),
        }
        covers: dict[str, Any] = {"session_key": session} if session else {"day": str(day)}
        covers |= {"since": format_timestamp(first), "until": format_timestamp(last)}
        if len(ids) <= MAX_AGGREGATED_IDS:
            covers["record_ids"] = ids
        record = AuditRecord(
            session_key=session,
            user=tally.only_user,
            source="aggregate",
            operation="aggregate.session" if session else "aggregate.day",
            is_aggregation=True,
            input_tokens=tally.input_tokens,
            output_tokens=tally.output_tokens,
            total_tokens=tally.input_tokens + tally.output_tokens,
            cost_usd=tally.cost,
            request=covers,
            response=summary,
        )
        from ._auditor import Auditor  # noqa: PLC0415 - the writer seals it into a chain

        with Auditor(self.storage, mode="sync", spool_dir=str(self._spool_dir)) as auditor:
            auditor.submit(record)
        return next(iter(self.storage.read(Query(ids=(record.id,)))), record)

    def export(
        self,
        destination: str,
        *,
        batch_size: int = 1000,
        progress: Callable[[int], None] | None = None,
        **filters: Any,
    ) -> int:
        """Copy the matching records to *destination*: a storage URL (``jsonl://``, SQL, …), or a file
        path ending in ``.jsonl`` or ``.csv``. Idempotent and resumable: records already there (same id)
        are not written again, so an interrupted export is simply run again. Returns records copied.

        Raises:
            ConfigurationError: the destination is neither a URL nor a .jsonl/.csv path.
        """
        from . import _export  # noqa: PLC0415

        checkpoints = None
        if isinstance(self.storage, ChainStore):
            checkpoints = {
                writer: (state.base_seq, state.base_hash)
                for writer, state in self.storage.chain_states().items()
                if state.base_seq is not None and state.base_hash is not None
            }
        records = self.storage.read(_query(filters))
        return _export.export(records, destination, batch_size, progress, checkpoints)

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns:
            self.storage.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Reader {self.storage.url!r}>"


class _Tally:
    """The running totals of a group of records: what sessions, stats and aggregation all add up."""

    __slots__ = (
        "_cost",
        "calls",
        "durations",
        "errors",
        "first",
        "input_tokens",
        "last",
        "models",
        "output_tokens",
        "users",
    )

    def __init__(self) -> None:
        self.calls = self.errors = self.input_tokens = self.output_tokens = 0
        self._cost: float | None = None
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.durations: list[float] = []
        self.models: set[str] = set()
        self.users: set[str] = set()

    def add(self, r: AuditRecord) -> None:
        self.calls += 1
        self.errors += is_error(r)
        self.input_tokens += r.input_tokens or 0
        self.output_tokens += r.output_tokens or 0
        if r.cost_usd is not None:
            self._cost = (self._cost or 0.0) + r.cost_usd
        if r.duration_ms is not None:
            self.durations.append(r.duration_ms)
        if r.model:
            self.models.add(r.model)
        if r.user is not None:
            self.users.add(r.user)
        self.first = r.created_at if self.first is None else min(self.first, r.created_at)
        self.last = r.created_at if self.last is None else max(self.last, r.created_at)

    @property
    def cost(self) -> float | None:
        return round_cost(self._cost)

    @property
    def user(self) -> str | None:
        """The smallest user (what SQL's MIN gives), so every backend names the same one."""
        return min(self.users) if self.users else None

    @property
    def only_user(self) -> str | None:
        return next(iter(self.users)) if len(self.users) == 1 else None


def _counted(records: Iterator[AuditRecord], progress: Callable[[int], None] | None) -> Iterator[AuditRecord]:
    """*records*, telling *progress* every thousand (for progress bars over large logs)."""
    if progress is None:
        yield from records
        return
    count = 0
    for record in records:
        yield record
        count += 1
        if count == 1000:
            progress(count)
            count = 0
    if count:
        progress(count)


def _erasure(record: AuditRecord, now: datetime, key: bytes | None) -> dict[str, Any]:
    """The fields of *record* not erased yet, erased: tombstones and markers (see `Reader.forget`).
    A record sealed with hashing version 1 digests its payloads only: only those can go."""
    modern = hash_version(record) >= 2
    changes: dict[str, Any] = {
        name: tombstone(getattr(record, name), now, key=key, record_id=record.id, name=name)
        for name in (TOMBSTONE_FIELDS if modern else PAYLOAD_FIELDS)
        if not is_tombstone(getattr(record, name))
    }
    if modern:
        for name in MARKED_FIELDS:
            value = getattr(record, name)
            if value and not is_marker(value):
                changes[name] = marker(name, value, key)
    return changes


def _decode_lines(data: bytes) -> Iterator[AuditRecord]:
    for line in data.splitlines():
        try:
            yield decode_record(line)
        except (ValueError, TypeError):
            continue


def _query(filters: dict[str, Any]) -> Query:
    named = {_FILTER_ALIASES.get(k, k): v for k, v in filters.items()}
    if isinstance(named.get("ids"), (list, set)):
        named["ids"] = tuple(named["ids"])
    try:
        return Query(**named)
    except TypeError as exc:
        raise ConfigurationError(f"unknown record filter: {exc}") from None


def _group_value(record: AuditRecord, name: str) -> Any:
    if name == "day":
        return record.created_at.date().isoformat()
    return getattr(record, name)


def sort_stats(rows: list[StatsRow]) -> list[StatsRow]:
    """Busiest group first, then by the group's values (None first), the same on every backend."""
    return sorted(
        rows,
        key=lambda r: (
            -r.calls,
            [(v is not None, str(v) if v is not None else "") for v in r.group.values()],
        ),
    )


def open(url: str | Storage | None = None, *, spool_dir: str | os.PathLike[str] | None = None) -> Reader:
    """A `Reader` over the storage at *url* (default ``LLMAUDIT_STORAGE``, else the embedded store).

    Raises:
        ConfigurationError: the URL is malformed or its scheme unknown.
        StorageError: the storage cannot be opened.
    """
    if url is None or isinstance(url, str):
        storage = open_storage(url or os.environ.get("LLMAUDIT_STORAGE") or default_storage_url())
        return Reader(storage, owns=True, spool_dir=spool_dir)
    return Reader(url, owns=False, spool_dir=spool_dir)
