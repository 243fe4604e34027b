"""The sink: where sealed records go. It writes a batch with retries, keeps a refused record aside,
spills to the `Spool` while the backend is down, and replays the spool once a write succeeds again.

Every record handed to the sink ends in one counter: written, spilled, rejected or failed (logged at
ERROR). Never raises: each method returns why records were lost (None when none was), for strict mode
to raise on the caller's thread. Builds and seals nothing (that is `pipeline.RecordPipeline`'s work).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from .._errors import StorageError, StorageUnavailableError
from ..record.model import AuditRecord
from ..storage._base import MaintainedStore, Storage
from .limits import SPOOL_CHECK_INTERVAL_S
from .spool import Spool
from .stats import Counters

__all__ = ["Sink"]

logger = logging.getLogger("llmaudit")


class Sink:
    """Writes to *storage*, spills to *spool*; *retry_delays_s* are the pauses between tries (with
    *background* False, only the first: the caller is waiting)."""

    def __init__(
        self,
        storage: Storage,
        spool: Spool,
        counts: Counters,
        *,
        background: bool,
        batch_size: int,
        retry_delays_s: Sequence[float],
        probe_interval_s: float,
    ) -> None:
        self.storage, self.spool, self.counts = storage, spool, counts
        self.background, self.batch_size = background, batch_size
        self.retry_delays_s, self.probe_interval_s = tuple(retry_delays_s), probe_interval_s
        #: held while the storage is written: records reach it in chain order, and fork() waits for it
        self.reset()

    def reset(self) -> None:
        """A fresh lock and no memory of an outage (at start, and in a forked child)."""
        self.lock = threading.Lock()
        self.down_until = 0.0  # monotonic time before which the backend is not retried
        self.next_spool_check = 0.0  # check for leftover spool files at the first good write

    def is_down(self) -> bool:
        """True while a backend that failed every try is left alone (records spill meanwhile)."""
        return time.monotonic() < self.down_until

    def write_or_spill(self, records: list[AuditRecord], *, durable: bool) -> Exception | None:
        """Write *records*, retrying, else spill them; returns why some were lost (None: none was)."""
        delays = self.retry_delays_s if self.background else self.retry_delays_s[:1]
        for delay in (*delays, None):
            try:
                self.storage.write(records)
            except StorageUnavailableError as exc:
                last: Exception = exc
            except StorageError as exc:
                return self._reject(records, exc)
            except Exception as exc:  # noqa: BLE001 - a third-party backend: treat as transient
                last = exc
            else:
                self.counts.add("written", len(records))
                self.down_until = 0.0
                return None
            if delay is not None:
                time.sleep(delay)
        self.mark_down(last)
        return self.spill(records, durable=durable)

    def mark_down(self, exc: Exception) -> None:
        """Leave the backend alone for ``probe_interval_s`` (saying so once, at WARNING)."""
        if not self.down_until:
            logger.warning(
                "llmaudit: storage %s unavailable (%s); spilling to %s until it recovers",
                self.storage.url,
                exc,
                self.spool.directory,
            )
        self.down_until = time.monotonic() + self.probe_interval_s
        self.next_spool_check = 0.0

    def _reject(self, records: list[AuditRecord], exc: StorageError) -> Exception | None:
        """Keep records the backend refused aside; returns why some were lost (None: none was)."""
        if len(records) > 1:  # isolate the record at fault; the others are fine (each one is tried)
            lost = [self.write_or_spill([record], durable=False) for record in records]
            return next((e for e in lost if e is not None), None)
        try:
            path = self.spool.reject(records)
        except OSError as spool_exc:
            return self._lose(records, spool_exc)
        self.counts.add("rejected", len(records))
        logger.error("llmaudit: storage refused record %s (%s); kept in %s", records[0].id, exc, path)
        return None

    def spill(self, records: list[AuditRecord], *, durable: bool) -> Exception | None:
        """Append *records* to the spool; returns why they were lost (None: they were spilled)."""
        try:
            self.spool.append(records, durable=durable)
        except OSError as exc:
            return self._lose(records, exc)
        self.counts.add("spilled", len(records))
        return None

    def _lose(self, records: list[AuditRecord], exc: Exception) -> Exception:
        self.counts.add("failed", len(records))
        logger.error("llmaudit: %d records could be neither stored nor spilled: %s", len(records), exc)
        return exc

    def replay(self) -> int:
        """Replay every waiting spool file now; returns the number of records replayed.

        Raises:
            Exception: whatever the backend raises (`maybe_replay` treats it as the backend down).
        """
        with self.lock:
            result = self.spool.replay(self.storage, batch_size=self.batch_size)
            self.counts.add("replayed", result.records)
        return result.records

    def maybe_replay(self) -> None:
        """Replay the spool if the backend is up and it is time to look (`SPOOL_CHECK_INTERVAL_S`)."""
        now = time.monotonic()
        if now < self.down_until or now < self.next_spool_check:
            return
        self.next_spool_check = now + SPOOL_CHECK_INTERVAL_S
        if not self.spool.pending():
            return
        try:
            replayed = self.replay()
        except Exception as exc:  # noqa: BLE001 - the backend failed again: wait and retry later
            self.mark_down(exc)
            return
        if replayed:
            logger.info("llmaudit: replayed %d spooled records into %s", replayed, self.storage.url)

    def maintain(self) -> None:
        """Let the storage do its housekeeping (SQLite's checkpoint) unless it is down."""
        maintain = self.storage.maintain if isinstance(self.storage, MaintainedStore) else None
        if maintain is None or time.monotonic() < self.down_until:
            return
        try:
            with self.lock:
                maintain()
        except Exception as exc:  # noqa: BLE001 - housekeeping never costs a record; the next try may work
            logger.debug("llmaudit: storage maintenance failed: %s", exc)
