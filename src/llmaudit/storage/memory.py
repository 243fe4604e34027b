"""In-memory storage, for tests: ``memory://`` is private to one object, ``memory://NAME`` is shared
by every storage opened with the same name in this process (so a reader sees what a writer wrote)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..integrity.chain import ChainState, RegistryEntry, new_state
from ..integrity.checkpoints import Checkpoint
from ..record.model import AuditRecord
from ._base import (
    ProblemHandler,
    Query,
    batch_heads,
    ordered_checkpoints,
    raise_head,
    registered_writers,
    registry_additions,
    sealed_head,
    select,
    unstored_checkpoints,
)

__all__ = ["MemoryStorage"]

_Shared = tuple[
    dict[str, AuditRecord], threading.Lock, dict[str, ChainState], list[RegistryEntry], list[Checkpoint]
]
_shared: dict[str, _Shared] = {}
_shared_lock = threading.Lock()


class MemoryStorage:
    """A dict of records keyed by id; writes are idempotent like every backend's."""

    def __init__(self, name: str = "") -> None:
        self.url = f"memory://{name}"
        #: The chain's HMAC key for heads, checkpoints and the registry (see ``RegistryStore``).
        self.chain_key: bytes | None = None
        if name:
            with _shared_lock:
                shared = _shared.setdefault(name, ({}, threading.Lock(), {}, [], []))
            self._records, self._lock, self._chain, self._registry, self._checkpoints = shared
        else:
            self._records, self._lock, self._chain, self._registry = {}, threading.Lock(), {}, []
            self._checkpoints = []

    @classmethod
    def from_url(cls, url: str) -> MemoryStorage:
        return cls(url.split("://", 1)[1].strip("/"))

    def write(self, records: Sequence[AuditRecord]) -> None:
        with self._lock:
            for record in records:
                self._records.setdefault(record.id, record)
            heads = batch_heads(records)
            for writer, (seq, digest) in heads.items():
                state = raise_head(self._chain.get(writer), writer, seq, digest, self.chain_key)
                if state is not None:
                    self._chain[writer] = state
            if heads:
                known = registered_writers(self._registry)
                new = {w: head for w, head in heads.items() if w not in known}
                self._append("writer", new)

    def _append(self, kind: str, items: Mapping[str, tuple[int, str]], detail: Any = None) -> None:
        tail = self._registry[-1] if self._registry else None
        self._registry.extend(registry_additions(tail, kind, items, self.chain_key, detail))

    def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        with self._lock:
            self._checkpoints.extend(unstored_checkpoints(self._checkpoints, checkpoints))

    def read_checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]:
        with self._lock:
            return ordered_checkpoints(self._checkpoints, writer_id)

    def chain_states(self) -> dict[str, ChainState]:
        with self._lock:
            return dict(self._chain)

    def registry(self) -> list[RegistryEntry]:
        with self._lock:
            return list(self._registry)

    def seal_legacy(self, records: Sequence[AuditRecord], detail: Mapping[str, Any]) -> None:
        if not records:
            return
        writer, seq, digest = sealed_head(records)
        with self._lock:
            for record in records:
                self._records[record.id] = record
            self._chain[writer] = new_state(writer, seq, digest, self.chain_key)
            self._append("seal-legacy", {writer: (seq, digest)}, detail)

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
                known = self._chain.get(writer) or new_state(writer, seq, digest, self.chain_key)
                self._chain[writer] = known.cut(writer, seq, digest, self.chain_key)
            self._append("prune", checkpoints)
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
