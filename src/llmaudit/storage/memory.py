"""In-memory storage, for tests: ``memory://`` is private to one object, ``memory://NAME`` is shared
by every storage opened with the same name in this process (so a reader sees what a writer wrote)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from .._record import AuditRecord
from ._base import ProblemHandler, Query, select

__all__ = ["MemoryStorage"]

_shared: dict[str, tuple[dict[str, AuditRecord], threading.Lock]] = {}
_shared_lock = threading.Lock()


class MemoryStorage:
    """A dict of records keyed by id; writes are idempotent like every backend's."""

    def __init__(self, name: str = "") -> None:
        self.url = f"memory://{name}"
        if name:
            with _shared_lock:
                self._records, self._lock = _shared.setdefault(name, ({}, threading.Lock()))
        else:
            self._records, self._lock = {}, threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> MemoryStorage:
        return cls(url.split("://", 1)[1].strip("/"))

    def write(self, records: Sequence[AuditRecord]) -> None:
        with self._lock:
            for record in records:
                self._records.setdefault(record.id, record)

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
