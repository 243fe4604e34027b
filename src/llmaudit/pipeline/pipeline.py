"""The record pipeline: what turns a capture into a sealed record, on whichever runner stores it.

`RecordPipeline.build` makes the records (``item.to_record()`` for captures) and runs the processors
(redaction first, then ``before_write`` and the others; a processor returning None drops the record,
counted); `RecordPipeline.seal` numbers them into this pipeline's hash chain (`integrity.chain.Chain`).
Sealing remembers the canonical encodings for the storage to reuse; `RecordPipeline.end_batch` drops
them once the batch is stored or spilled, so that they live no longer than the batch that made them.

Never raises: a capture that cannot be built is counted as failed and reported (the caller decides,
in strict mode, whether to raise); does no I/O and knows nothing of the storage or the spool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from .._guard import report
from ..integrity.chain import Chain
from ..record.codec import forget_encodings
from ..record.model import AuditRecord
from .stats import Counters

__all__ = ["Capture", "Pending", "Processor", "RecordPipeline"]


class Capture(Protocol):
    """Anything the hot path hands over that becomes a record on the writer's side."""

    def to_record(self) -> AuditRecord | None: ...


Pending = AuditRecord | Capture
Processor = Callable[[AuditRecord], AuditRecord | None]


class RecordPipeline:
    """Build, process and seal: one hash chain (a new ``writer_id``) per pipeline."""

    __slots__ = ("chain", "counts", "processors")

    def __init__(
        self,
        processors: Sequence[Processor],
        counts: Counters,
        *,
        chain_key: bytes | None = None,
        remember_records: bool = False,
    ) -> None:
        self.processors = tuple(processors)
        self.counts = counts
        self.chain = Chain(chain_key)
        #: the storage writes whole records as JSON (JSONL): remember each record's encoding too
        self.chain.remember_records = remember_records

    def build(
        self, items: Sequence[Pending], owned: set[int] | None = None, failures: list[Exception] | None = None
    ) -> list[AuditRecord]:
        """Records from *items*, through the processors; the ``id()`` of each one built here (not
        handed in by the caller) goes into *owned*, and each failure into *failures*."""
        records: list[AuditRecord] = []
        processors = self.processors
        for item in items:
            try:
                record = item if isinstance(item, AuditRecord) else item.to_record()
                for processor in processors:
                    if record is None:
                        break
                    record = processor(record)
            except Exception as exc:  # noqa: BLE001 - one bad capture must not sink its batch
                self.counts.add("failed")
                report("record building", exc)
                if failures is not None:
                    failures.append(exc)
                continue
            if record is None:
                self.counts.add("dropped")
            else:
                records.append(record)
                if owned is not None and record is not item:
                    owned.add(id(record))
        return records

    def seal(self, records: list[AuditRecord], owned: set[int]) -> list[AuditRecord]:
        """*records* numbered into the chain (those in *owned* may be sealed in place)."""
        try:
            return self.chain.seal(records, owned)
        except Exception as exc:  # noqa: BLE001 - unsealed is better than lost: verify flags them
            report("chain sealing", exc)
            return records

    @staticmethod
    def end_batch() -> None:
        """Forget the encodings sealing remembered: the batch they were for is stored or spilled."""
        forget_encodings()
