"""In-memory storage, for tests: ``memory://`` is private to one object, ``memory://NAME`` is shared
by every storage opened with the same name in this process (so a reader sees what a writer wrote)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._chain import ChainState
from .._record import AuditRecord
from ._base import ProblemHandler, Query, batch_heads, select

__all__ = ["MemoryStorage"]

_Shared = tuple[dict[str, AuditRecord], threading.Lock, dict[str, ChainState]]
_shared: dict[str, _Shared] = {}
_shared_lock = threading.Lock()


class MemoryStorage:
    """A dict of records keyed by id; writes are idempotent like every backend's."""

    def __init__(self, name: str = "") -> None:
        self.url = f"memory://{name}"
        if name:
            with _shared_lock:
                self._records, self._lock, self._chain = _shared.setdefault(name, ({}, threading.Lock(), {}))
        else:
            self._records, self._lock, self._chain = {}, threading.Lock(), {}

    @classmethod
    def from_url(cls, url: str) -> MemoryStorage:
        return cls(url.split("://", 1)[1].strip("/"))

    def write(self, records: Sequence[AuditRecord]) -> None:
        with self._lock:
            for record in records:
                self._records.setdefault(record.id, record)
            for writer, (seq, digest) in batch_heads(records).items():
                known = self._chain.get(writer)
                if known is None:
                    self._chain[writer] = ChainState(seq, digest)
                elif seq > known.head_seq:
                    self._chain[writer] = known._replace(head_seq=seq, head_hash=digest)

    def chain_states(self) -> dict[str, ChainState]:
        with self._lock:
            return dict(self._chain)

    def erase(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        changed = 0
        with self._lock:
            for record_id, fields in payloads.items():
                if record_id in self._records:
                    self._records[record_id] = dataclasses.replace(self._records[record_id], **fields)
                    changed += 1
        return changed

    def delete(self, ids: Sequence[str], checkpoints: Mapping[str, tuple[int, str]]) -> int:
        with self._lock:
            removed = sum(self._records.pop(i, None) is not None for i in ids)
            for writer, (seq, digest) in checkpoints.items():
                known = self._chain.get(writer, ChainState(seq, digest))
                self._chain[writer] = known._replace(base_seq=seq, base_hash=digest)
        return removed

    def read(
        self,
        query: Query = Query(),
        *,
        on_problem: ProblemHandler | None = None,
    ) -> Iterator[AuditRecord]:
        with self._lock:
            snapshot = list(self._records.values())
        return iter(select(snapshot, query))

    def close(self) -> None:
        """Nothing to release; the records stay for other storages opened with the same name."""

    def __len__(self) -> int:
        return len(self._records)
