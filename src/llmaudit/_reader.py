"""The read side's entry point: ``llmaudit.open(url)`` gives one API over every backend.

This module holds what the tamper-evident chain needs from the read side: reading records back,
`Reader.verify`, `Reader.forget` (erasure that keeps the proof) and `Reader.prune` (deleting old
records while leaving a checkpoint). The backends do the storage-specific work (``ChainStore``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from ._chain import PAYLOAD_FIELDS, VerifyReport, chain_key, is_tombstone, tombstone, verify_chain
from ._errors import ConfigurationError
from ._record import AuditRecord, utcnow
from ._settings import default_spool_dir, default_storage_url
from ._spool import Spool
from .storage import Query, Storage, open_storage
from .storage._base import ChainStore, ProblemHandler

__all__ = ["ForgetResult", "PruneResult", "Reader", "open"]


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What `Reader.forget` did: records erased, and spool files it could not touch (in use)."""

    erased: int
    spool_replayed: int
    spool_files_in_use: int


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
        """Records matching the `Query` filters given as keywords (``session_key=``, ``since=``, …)."""
        try:
            query = Query(**filters)
        except TypeError as exc:
            raise ConfigurationError(f"unknown record filter: {exc}") from None
        return self.storage.read(query, on_problem=on_problem)

    def get(self, record_id: str) -> AuditRecord | None:
        """The record with this id, or None."""
        return next(iter(self.storage.read(Query(ids=(record_id,), limit=1))), None)

    # -- the chain ------------------------------------------------------------------------------

    def _chain_store(self, action: str) -> ChainStore:
        if not isinstance(self.storage, ChainStore):
            raise ConfigurationError(f"storage {self.storage.url} does not support {action}")
        return self.storage

    def verify(
        self, key: str | bytes | None = None, *, on_problem: ProblemHandler | None = None
    ) -> VerifyReport:
        """Check every record against its writer's hash chain (key: ``LLMAUDIT_CHAIN_KEY`` by default)."""
        store = self._chain_store("verification")
        secret = chain_key(key if key is not None else os.environ.get("LLMAUDIT_CHAIN_KEY"))
        states = store.chain_states()
        return verify_chain(self.storage.read(Query(), on_problem=on_problem), states, secret)

    def forget(
        self,
        *,
        session: str | None = None,
        user: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> ForgetResult:
        """Erase the payloads (request, response, metadata) of the matching records, keeping their
        digests in a tombstone so the log still verifies. Waiting spool files are replayed first so
        that no copy survives there; files held by a running writer are left alone and counted.

        Raises:
            ConfigurationError: no selector was given, or the backend cannot erase.
        """
        if session is None and user is None and not ids:
            raise ConfigurationError("forget needs session=, user= or ids=")
        store = self._chain_store("erasure")
        spool = Spool(self._spool_dir)
        replayed = spool.replay(self.storage).records if spool.pending() else 0
        in_use = len(spool.files())
        spool.release()
        selected: set[str] = set()
        if ids:
            selected.update(ids)
        now = utcnow()
        payloads: dict[str, dict[str, Any]] = {}
        queries = []
        if session is not None:
            queries.append(Query(session_key=session))
        if user is not None:
            queries.append(Query(user=user))
        if ids:
            queries.append(Query(ids=tuple(ids)))
        for query in queries:
            for record in self.storage.read(query):
                fields = {
                    name: tombstone(getattr(record, name), now)
                    for name in PAYLOAD_FIELDS
                    if not is_tombstone(getattr(record, name))
                }
                if fields:
                    payloads[record.id] = fields
        erased = store.erase(payloads) if payloads else 0
        return ForgetResult(erased, replayed, in_use)

    def prune(self, older_than: datetime) -> PruneResult:
        """Delete records created before *older_than*, leaving per writer a checkpoint (the last
        deleted ``seq`` and hash) where verification of what remains starts. Only a writer's
        unbroken run of old records from its oldest one is cut, so what remains is contiguous."""
        store = self._chain_store("pruning")
        old: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        first_kept: dict[str, int] = {}
        unchained: list[str] = []
        for record in self.storage.read(Query()):
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
