"""The read side's entry point: ``llmaudit.open(url)`` gives one API over every backend.

This module holds what the tamper-evident chain needs from the read side: reading records back,
`Reader.verify`, `Reader.forget` (erasure that keeps the proof) and `Reader.prune` (deleting old
records while leaving a checkpoint): the reader checks their arguments, and the work of the last two
is in `maintenance`. The backends do the storage-specific work (``ChainStore``).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from .._errors import ConfigurationError
from ..integrity.chain import Chain, chain_key
from ..integrity.checkpoints import Checkpoint
from ..integrity.proofs import prove
from ..integrity.verify import VerifyReport, verify_chain
from ..pipeline.settings import check_setting, default_spool_dir, default_storage_url
from ..record.codec import format_timestamp
from ..record.model import KINDS, AuditRecord, Kind, new_id, record_kind
from ..storage import (
    ChainStore,
    CheckpointStore,
    ProblemHandler,
    Query,
    RegistryStore,
    Storage,
    SummaryStore,
    open_storage,
)
from .maintenance import ForgetResult, PruneResult, forget_records, prune_records
from .summary import SessionSummary, StatsRow, Tally, nearest_rank

__all__ = [
    "ForgetResult",
    "PruneResult",
    "Reader",
    "SealResult",
    "SessionSummary",
    "StatsRow",
    "has_text",
    "open",
]

logger = logging.getLogger("llmaudit")

#: An aggregation record lists the ids it covers up to this many (else its session and time range).
MAX_AGGREGATED_IDS = 1000

#: What `Reader.stats` can group by.
GROUPABLE = ("client", "model", "provider", "operation", "user", "session_key", "source", "day")
_FILTER_ALIASES = {"session": "session_key"}


@dataclass(frozen=True, slots=True)
class SealResult:
    """What `Reader.seal_legacy` did: records sealed into one new writer's chain, and unchained
    records left alone because they were created after the store's first chained record."""

    sealed: int
    writer_id: str | None
    left_unchained: int


class Reader:
    """Records, verification, erasure and pruning over one storage; see `open`."""

    def __init__(
        self, storage: Storage, *, owns: bool = True, spool_dir: str | os.PathLike[str] | None = None
    ):
        self.storage = storage
        self._owns = owns
        # where the application's writers spill (LLMAUDIT_SPOOL_DIR, as they read it): forget looks there
        spool_dir = spool_dir if spool_dir is not None else os.environ.get("LLMAUDIT_SPOOL_DIR") or None
        self._spool_dir = Path(spool_dir) if spool_dir is not None else default_spool_dir(storage.url)

    # -- reading --------------------------------------------------------------------------------

    def records(
        self, *, on_problem: ProblemHandler | None = None, text: str | None = None, **filters: Any
    ) -> Iterator[AuditRecord]:
        """Records matching the filters (``session=``, ``user=``, ``client=``, ``model=``,
        ``provider=``, ``source=``, ``since=``, ``until=``, ``errors_only=``, ``is_aggregation=``,
        ``kind=`` (``"call"``, ``"function"``, ``"aggregation"`` or a tuple of them: see
        `record_kind`), ``ids=``, ``limit=``, ``order="asc"|"desc"``). *text* keeps the records
        whose prompt or answer (``input_text``, ``output_text``) contains it, ignoring case.

        Raises:
            ConfigurationError: an unknown filter.
        """
        query = _query(filters)
        if not text:
            return self.storage.read(query, on_problem=on_problem)
        found = self.storage.read(replace(query, limit=None), on_problem=on_problem)
        return _limited((r for r in found if has_text(r, text)), query.limit)

    def sessions(
        self,
        *,
        limit: int | None = None,
        on_problem: ProblemHandler | None = None,
        before: tuple[datetime, str] | None = None,
        text: str | None = None,
        **filters: Any,
    ) -> list[SessionSummary]:
        """One summary per session key, the most recently active first: its LLM calls (``calls``,
        tokens, cost, errors), its ``@audited`` function records (``functions``) and its
        aggregation records (``aggregations``), each counted as what it is (see `SessionSummary`).
        Takes the filters of `records` except ``limit`` and ``order``.

        *before* ``(last, session_key)`` pages through the list (keyset pagination): only the sessions
        that sort after it, as the last row of the page before gives it. *text* keeps the sessions
        with a record whose prompt or answer contains it (ignoring case), summarising those records.
        """
        query = _query(filters)
        if isinstance(self.storage, SummaryStore) and not text:  # computed by the database
            if before is None:
                return list(self.storage.summarize_sessions(query, limit))
            return _after(list(self.storage.summarize_sessions(query, None)), before, limit)
        tallies: dict[str, Tally] = {}
        for r in self.storage.read(query, on_problem=on_problem):
            if text and not has_text(r, text):
                continue
            if r.session_key is not None:
                tallies.setdefault(r.session_key, Tally()).add(r)
        out = [
            SessionSummary(
                key,
                t.user,
                t.first,
                t.last,
                t.calls,
                t.input_tokens,
                t.output_tokens,
                t.cost,
                t.errors,
                functions=t.functions,
                aggregations=t.aggregations,
            )
            for key, t in tallies.items()
            if t.first is not None and t.last is not None
        ]
        out.sort(key=lambda x: (x.last, x.session_key), reverse=True)
        return _after(out, before, limit)

    def stats(
        self,
        by: Sequence[str] = ("client", "model"),
        *,
        kind: Kind = "call",
        include_aggregations: bool = False,
        on_problem: ProblemHandler | None = None,
        **filters: Any,
    ) -> list[StatsRow]:
        """Totals per group (``by`` from `GROUPABLE`; ``day`` is the UTC date), the busiest group
        first: calls, tokens, cost, p50/p95 latency and errors of the LLM calls. With
        ``kind="function"`` the rows summarise the ``@audited`` function records instead (counted
        as ``functions``: their latency and errors), with ``kind="aggregation"`` the aggregation
        records. Calls and function records are never counted together. *include_aggregations*
        adds the aggregation records to the calls' rows (counted as ``aggregations``, their tokens
        and cost summed in), for totals over records that were aggregated and then pruned.

        Raises:
            ConfigurationError: an unknown grouping field, kind or filter.
        """
        unknown = [name for name in by if name not in GROUPABLE]
        if unknown:
            raise ConfigurationError(
                f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUPABLE)}"
            )
        if kind not in KINDS:
            raise ConfigurationError(f"stats of kind {kind!r}: choose from {', '.join(KINDS)}")
        kinds: tuple[Kind, ...] = (kind,)
        if include_aggregations and kind == "call":
            kinds = ("call", "aggregation")
        query = replace(_query(filters), kind=kinds)
        if isinstance(self.storage, SummaryStore):  # computed by the database
            return sort_stats(list(self.storage.summarize(tuple(by), query)))
        groups: dict[tuple[Any, ...], Tally] = {}
        for r in self.storage.read(query, on_problem=on_problem):
            if record_kind(r) not in kinds:  # a backend that does not know the kind filter
                continue
            key = tuple(_group_value(r, name) for name in by)
            groups.setdefault(key, Tally(kinds)).add(r)
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
                    functions=t.functions,
                    aggregations=t.aggregations,
                )
            )
        return sort_stats(rows)

    def get(self, record_id: str) -> AuditRecord | None:
        """The record with this id, or None."""
        return _first(self.storage.read(Query(ids=(record_id,), limit=1)))

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
        require_macs: bool = False,
    ) -> VerifyReport:
        """Check every record against its writer's hash chain (key: ``LLMAUDIT_CHAIN_KEY`` by default),
        and the heads, prune checkpoints and writers against their MACs and the chain registry.
        With *require_macs*, a head or checkpoint without a MAC fails instead of warning: use it once
        no writer from before heads were authenticated is left (see SECURITY.md)."""
        store = self._chain_store("verification")
        secret = _secret(key)
        # the registry before and after the states: what was registered or pruned while the states
        # were read is told apart from what is missing (records are read last: they only add)
        settled, registry = None, None
        if isinstance(store, RegistryStore):
            settled = max((entry.n for entry in store.registry()), default=0)
        states = store.chain_states()
        if isinstance(store, RegistryStore):
            registry = store.registry()
        records = _counted(self.storage.read(Query(), on_problem=on_problem), progress)
        return verify_chain(records, states, secret, registry, require_macs=require_macs, settled=settled)

    # -- signed checkpoints ---------------------------------------------------------------------

    def checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]:
        """The signed checkpoints stored beside the records (of *writer_id*, else every writer's),
        by writer then number; empty for a storage that keeps none (`storage.CheckpointStore`)."""
        if not isinstance(self.storage, CheckpointStore):
            return []
        return self.storage.read_checkpoints(writer_id)

    def prove(
        self,
        record_id: str,
        *,
        checkpoints: Iterable[Checkpoint] | None = None,
        checkpoint: int | None = None,
    ) -> dict[str, Any]:
        """The self-contained inclusion proof of record *record_id* (``integrity.proofs.prove``)
        against *checkpoints* (default: the stored ones, `checkpoints`): checkable offline with
        `llmaudit.verify_proof` and the public key alone.

        Raises:
            VerificationError: no such record, it has no chain, or no checkpoint covers it.
        """
        chosen = self.checkpoints() if checkpoints is None else list(checkpoints)
        return prove(record_id, self.storage.read(Query()), chosen, checkpoint=checkpoint)

    def seal_legacy(self, key: str | bytes | None = None, *, by: str | None = None) -> SealResult:
        """Seal the records written before the store had a hash chain into one chain of their own
        (writer ``legacy-…``, in the order they were made), keyed with *key* (default
        ``LLMAUDIT_CHAIN_KEY``), and record the sealing in the chain registry: how many records, the
        first and last id, a digest of all ids, when, by whom (*by*, default the OS user) and which
        key (an HMAC fingerprint, never the key). `verify` lists every sealing it finds.

        Only records created before the store's oldest chained record are sealed: one created later
        cannot predate the chain, so it stays unchained and `verify` keeps reporting it. Never run
        implicitly (migrations do not seal): run it once, after checking what it will seal.

        Raises:
            ConfigurationError: the backend keeps no chain registry.
        """
        store = self._chain_store("sealing")
        if not isinstance(store, RegistryStore):
            raise ConfigurationError(
                f"storage {self.storage.url} keeps no chain registry to record a sealing"
            )
        secret = _secret(key)
        unchained: list[AuditRecord] = []
        first_chained: datetime | None = None
        for record in self.storage.read(Query()):
            if record.writer_id is None or record.hash is None or record.seq is None:
                unchained.append(record)
            elif first_chained is None or record.created_at < first_chained:
                first_chained = record.created_at
        eligible = [r for r in unchained if first_chained is None or r.created_at < first_chained]
        eligible.sort(key=lambda r: (r.created_at, r.id))
        if not eligible:
            return SealResult(0, None, len(unchained))
        chain = Chain(secret, writer_id=f"legacy-{new_id()}")
        sealed = chain.seal(eligible)
        ids = [r.id for r in sealed]
        detail = {
            "first_id": ids[0],
            "last_id": ids[-1],
            "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
            "by": by if by is not None else _os_user(),
            "key": "none" if secret is None else _key_fingerprint(secret),
        }
        store.chain_key = secret
        store.seal_legacy(sealed, detail)
        logger.info(
            "sealed %d legacy records of %s into writer %s (%s)",
            len(sealed),
            self.storage.url,
            chain.writer_id,
            detail,
        )
        return SealResult(len(sealed), chain.writer_id, len(unchained) - len(eligible))

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
        fields (session_key, parent_session_key, user, url, error, tags, notes, and the flat text:
        input_text, output_text, tool_calls) the marker
        ``erased:<digest>``, which groups as the value did. A session's nested sessions (records
        whose ``parent_session_key`` is it) are erased with it. Waiting spool files are replayed
        first so that no copy survives there; files held by a running writer are left alone and
        counted, and the erasure is recorded in the spool's forget list so that their records are
        erased when they are replayed. What could not be made sure of is listed in
        ``ForgetResult.unguaranteed``; see `ForgetResult` for records sealed before every field was
        digested.

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
        return forget_records(
            self.storage,
            self._chain_store("erasure"),
            self._spool_dir,
            session=session,
            user=user,
            ids=ids,
            secret=secret,
            force=force,
        )

    def prune(
        self,
        older_than: datetime,
        *,
        progress: Callable[[int], None] | None = None,
        key: str | bytes | None = None,
    ) -> PruneResult:
        """Delete records created before *older_than*, leaving per writer a checkpoint (the last
        deleted ``seq`` and hash) where verification of what remains starts. Only a writer's
        unbroken run of old records from its oldest one is cut, so what remains is contiguous.
        The checkpoints and their registry entries are MACed with *key* (default
        ``LLMAUDIT_CHAIN_KEY``): prune with the key the chain is verified with."""
        store = self._chain_store("pruning")
        if isinstance(store, RegistryStore):
            store.chain_key = _secret(key)
        return prune_records(store, _counted(self.storage.read(Query()), progress), older_than)

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
        covered: tuple[Kind, ...] = ("call", "function")  # never an aggregation of aggregations
        if day is not None:
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            query = Query(since=start, until=start + timedelta(days=1), kind=covered)
        else:
            query = Query(session_key=session, kind=covered)
        ids: list[str] = []
        tally = Tally()
        for r in _counted(self.storage.read(query), progress):
            if record_kind(r) == "aggregation":  # a backend that does not know the kind filter
                continue
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
            "functions": tally.functions,
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
        from ..pipeline.auditor import Auditor  # noqa: PLC0415 - the writer seals it into a chain

        with Auditor(self.storage, mode="sync", spool_dir=str(self._spool_dir)) as auditor:
            auditor.submit(record)
        return _first(self.storage.read(Query(ids=(record.id,), limit=1))) or record

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
        A path ending in ``.parquet`` gets one row per record, written whole (it replaces the file;
        needs the ``parquet`` extra).

        Raises:
            ConfigurationError: the destination is neither a URL nor a .jsonl/.csv/.parquet path,
                or pyarrow is missing for a .parquet one.
        """
        from .export import export  # noqa: PLC0415

        checkpoints = None
        if isinstance(self.storage, ChainStore):
            checkpoints = {
                writer: (state.base_seq, state.base_hash)
                for writer, state in self.storage.chain_states().items()
                if state.base_seq is not None and state.base_hash is not None
            }
        records = self.storage.read(_query(filters))
        return export(records, destination, batch_size, progress, checkpoints, chain_key=_secret(None))

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


def _secret(key: str | bytes | None) -> bytes | None:
    return chain_key(key if key is not None else os.environ.get("LLMAUDIT_CHAIN_KEY"))


def _key_fingerprint(key: bytes) -> str:
    """Names a key without revealing it: the first 16 hex digits of an HMAC of a fixed label."""
    return "hmac:" + hmac.new(key, b"llmaudit key fingerprint", hashlib.sha256).hexdigest()[:16]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name and no passwd entry (a container)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


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


def has_text(record: AuditRecord, text: str) -> bool:
    """Whether *record*'s prompt or answer (``input_text``, ``output_text``) contains *text*,
    ignoring case: the reference of `Reader.records` and `Reader.sessions`' ``text=``."""
    needle = text.casefold()
    return any(value and needle in value.casefold() for value in (record.input_text, record.output_text))


def _limited(records: Iterator[AuditRecord], limit: int | None) -> Iterator[AuditRecord]:
    for count, record in enumerate(records):
        if limit is not None and count >= limit:
            return
        yield record


def _after(
    sessions: Iterable[SessionSummary], before: tuple[datetime, str] | None, limit: int | None
) -> list[SessionSummary]:
    """The sessions (newest first) that sort after *before* ``(last, session_key)``, at most *limit*."""
    out: list[SessionSummary] = []
    for s in sessions:
        if before is not None and (s.last, s.session_key) >= before:
            continue
        if limit is not None and len(out) >= limit:
            break
        out.append(s)
    return out


def _first(records: Iterator[AuditRecord]) -> AuditRecord | None:
    """The first of *records* (a read with ``limit=1``), read to its end: a read left suspended
    keeps its PostgreSQL server-side cursor open until the garbage collector finds it."""
    found = list(records)
    return found[0] if found else None


def _query(filters: dict[str, Any]) -> Query:
    named = {_FILTER_ALIASES.get(k, k): v for k, v in filters.items()}
    if isinstance(named.get("ids"), (list, set)):
        named["ids"] = tuple(named["ids"])
    kind = named.get("kind")
    if kind is not None:
        named["kind"] = (kind,) if isinstance(kind, str) else tuple(kind)
        unknown = [k for k in named["kind"] if k not in KINDS]
        if unknown:
            raise ConfigurationError(f"unknown record kind {unknown[0]!r}: choose from {', '.join(KINDS)}")
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
            -r.records,
            [(v is not None, str(v) if v is not None else "") for v in r.group.values()],
        ),
    )


def open(
    url: str | Storage | None = None,
    *,
    spool_dir: str | os.PathLike[str] | None = None,
    create: bool = False,
) -> Reader:
    """A `Reader` over the storage at *url* (default ``LLMAUDIT_STORAGE``, else the embedded store).

    Reading never creates: a URL that names no store (a typo, or nothing recorded yet) raises
    `StorageNotFoundError` instead of opening a new, empty one.

    Args:
        url: a storage URL or an open `Storage` (which stays the caller's to close).
        spool_dir: the writers' spool directory (where `Reader.forget` looks too).
        create: create the store when it does not exist, as a writer would.

    Raises:
        ConfigurationError: the URL is malformed or its scheme unknown.
        StorageNotFoundError: there is no store at *url* (and *create* is False).
        StorageError: the storage cannot be opened.
    """
    if spool_dir is not None:
        check_setting("spool_dir", spool_dir)
    if not (url is None or isinstance(url, (str, Storage))):
        raise ConfigurationError(
            f"llmaudit.open() takes a storage URL such as 'sqlite:///audit.db' or an open Storage, "
            f"not {type(url).__name__}"
        )
    if url is None or isinstance(url, str):
        storage = open_storage(
            url or os.environ.get("LLMAUDIT_STORAGE") or default_storage_url(), create=create
        )
        return Reader(storage, owns=True, spool_dir=spool_dir)
    return Reader(url, owns=False, spool_dir=spool_dir)
