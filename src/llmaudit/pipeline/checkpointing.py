"""The writer's signed checkpoints: one `integrity.checkpoints.CheckpointEmitter` per chain.

`Checkpointing` is the setting (the signing key, how often, the witness); `Checkpointer` is what a
`writer.Writer` holds for its current chain (a forked child, with a new chain, gets a new one). It is
told the chain hashes of each sealed batch, in ``seq`` order, and publishes every checkpoint made to
the storage (a `storage.CheckpointStore`; a storage without the capability keeps none) and to the
witness. Publishing never raises into the writer: a failure is reported (``_guard.report``) and
counted (``checkpoint_errors``), and a checkpoint the storage refused is offered again with the next
one (the witness is told each one once).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .._guard import report
from ..integrity.checkpoints import (
    DEFAULT_CHECKPOINT_INTERVAL_S,
    DEFAULT_CHECKPOINT_RECORDS,
    Checkpoint,
    CheckpointEmitter,
    Signer,
)
from ..integrity.witness import Witness
from ..record.model import AuditRecord
from ..storage._base import CheckpointStore, Storage

__all__ = ["Checkpointer", "Checkpointing"]


@dataclass(frozen=True, slots=True)
class Checkpointing:
    """Sign a checkpoint every *every_records* sealed records, *every_s* seconds and at shutdown,
    and copy each to *witness* (None: the storage's copy only)."""

    signer: Signer
    every_records: int = DEFAULT_CHECKPOINT_RECORDS
    every_s: float = DEFAULT_CHECKPOINT_INTERVAL_S
    witness: Witness | None = None


class Checkpointer:
    """One chain's emitter and where its checkpoints go (see the module docstring). Called on the
    thread that seals, under the writer's store lock."""

    __slots__ = ("_early", "_lock", "_next", "_unstored", "emitter", "errors", "storage", "witness")

    def __init__(
        self, settings: Checkpointing, storage: Storage, writer_id: str, *, chain_keyed: bool
    ) -> None:
        self.storage = storage if isinstance(storage, CheckpointStore) else None
        self.witness = settings.witness
        self._unstored: list[Checkpoint] = []
        self._lock = threading.Lock()
        self._next = 1  # the seq the tree takes next
        self._early: dict[int, str] = {}  # sealed before an earlier batch was handed over (threads)
        self.errors = 0
        self.emitter = CheckpointEmitter(
            writer_id,
            settings.signer,
            chain_keyed=chain_keyed,
            every_records=settings.every_records,
            every_s=settings.every_s,
            publish=self._publish,
        )

    def sealed(self, records: Sequence[AuditRecord]) -> None:
        """Take a sealed batch (records of this chain, consecutive ``seq``). Two threads sealing at
        once (sync mode, a full queue) may hand their batches over in either order: the tree takes
        the leaves in ``seq`` order all the same. A record left unsealed (sealing failed) is not a
        leaf."""
        with self._lock:
            try:
                first = records[0].seq if records else None
                if first == self._next and not self._early and _consecutive(records, self.emitter.writer_id):
                    self._next += len(records)
                    self.emitter.add_many([r.hash for r in records])  # type: ignore[misc]
                    return
                writer_id = self.emitter.writer_id
                for r in records:
                    if r.writer_id == writer_id and r.seq is not None and r.hash is not None:
                        self._early[r.seq] = r.hash
                ready = []
                while self._next in self._early:
                    ready.append(self._early.pop(self._next))
                    self._next += 1
                if ready:
                    self.emitter.add_many(ready)
            except Exception as exc:  # noqa: BLE001 - never into the caller's call
                self._failed(exc)

    def tick(self) -> None:
        """The writer is idle: a checkpoint if one is due by time."""
        with self._lock:
            try:
                self.emitter.tick()
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
            if self._unstored:
                self._store()

    def close(self) -> None:
        """The final checkpoint (the writer closes)."""
        with self._lock:
            try:
                self.emitter.close()
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)

    def _publish(self, checkpoint: Checkpoint) -> None:
        self._unstored.append(checkpoint)
        self._store()
        if self.witness is not None:
            try:
                self.witness.publish(checkpoint)
            except Exception as exc:  # noqa: BLE001 - OSError, a command that failed…
                self._failed(exc)

    def _store(self) -> None:
        if self.storage is None:
            self._unstored.clear()
            return
        try:
            self.storage.write_checkpoints(self._unstored)
        except Exception as exc:  # noqa: BLE001 - kept, and offered again with the next one
            self._failed(exc)
            return
        self._unstored.clear()

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        report("checkpoints", exc)


def _consecutive(records: Sequence[AuditRecord], writer_id: str) -> bool:
    """Whether *records* are sealed by *writer_id* with consecutive ``seq`` (the usual batch)."""
    first, last = records[0], records[-1]
    return (
        first.seq is not None
        and last.seq is not None
        and last.seq - first.seq == len(records) - 1
        and last.hash is not None
        and first.writer_id == last.writer_id == writer_id
    )
