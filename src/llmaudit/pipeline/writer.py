"""The writer: turns pending captures into records and stores them, off the caller's thread.

`submit` is the only method on the hot path: a length check and a ``deque.append`` (no lock, no I/O,
no parsing). A daemon thread wakes when a batch is full or the flush interval passes, builds the records
(``item.to_record()`` for captures), runs the processors (redaction first), seals them into this
writer's hash chain (`integrity.chain.Chain`), and writes the batch with retries; when the
backend stays down the batch spills to the `Spool`, and the spool is replayed once a write succeeds
again. A full queue spills from the caller's thread, the one exception to "no I/O on the hot path",
because the alternative is losing records. ``mode="sync"`` does all of it on the caller's thread and
returns only once the record is durable (stored, or spilled and fsynced).

Every record ends in exactly one counter: written, spilled (then replayed), dropped by a processor,
rejected by the backend (kept in the spool's rejected file), or failed (logged at ERROR).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .._errors import AuditError, StorageError, StorageUnavailableError
from .._guard import report
from ..integrity.chain import Chain
from ..record.codec import forget_encodings
from ..record.model import AuditRecord
from ..storage._base import RegistryStore, Storage
from .spool import Spool

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FLUSH_INTERVAL_S",
    "DEFAULT_QUEUE_SIZE",
    "Capture",
    "Processor",
    "Writer",
    "WriterStats",
]

logger = logging.getLogger("llmaudit")

DEFAULT_BATCH_SIZE = 500
DEFAULT_FLUSH_INTERVAL_S = 0.5
DEFAULT_QUEUE_SIZE = 100_000
RETRY_DELAYS_S = (0.05, 0.25, 1.0)
PROBE_INTERVAL_S = 5.0
SPOOL_CHECK_INTERVAL_S = 30.0

Mode = Literal["background", "sync"]


class Capture(Protocol):
    """Anything the hot path hands over that becomes a record on the writer thread."""

    def to_record(self) -> AuditRecord | None: ...


Pending = AuditRecord | Capture
Processor = Callable[[AuditRecord], AuditRecord | None]


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since the writer started (per process: a forked child starts from zero)."""

    submitted: int
    written: int
    spilled: int
    replayed: int
    dropped: int
    rejected: int
    failed: int
    queue_depth: int
    spool_files: int
    #: requests an explicitly attached transport passed through unrecorded (no provider matched)
    unmatched: int = 0


class _Marker:
    """A flush request travelling through the queue behind the items it waits for."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_live_writers: weakref.WeakSet[Writer] = weakref.WeakSet()


#: How long a fork waits for a batch being written (retries included) before it goes ahead anyway.
FORK_WAIT_S = 5.0
_held_for_fork: list[threading.Lock] = []


def _before_fork() -> None:
    """Hold every writer's store lock across ``fork()``: a child must never inherit a storage in the
    middle of a write (SQLite's process-wide mutexes copied while held hang the child for ever, and
    a file lock taken by the parent's writer would stay held in the child's copy)."""
    for writer in list(_live_writers):
        lock = writer._store_lock
        if lock.acquire(timeout=FORK_WAIT_S):
            _held_for_fork.append(lock)


def _after_fork_in_parent() -> None:
    while _held_for_fork:
        _held_for_fork.pop().release()


def _after_fork_in_child() -> None:
    _held_for_fork.clear()  # the child's writers get new locks below
    for writer in list(_live_writers):
        writer._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )


def _stopped(why: str, cause: Exception) -> AuditError:
    """The `AuditError` that stops a caller in strict mode, saying why (raised ``from`` *cause*)."""
    return AuditError(f"llmaudit strict mode stopped this call: {why} ({type(cause).__name__}: {cause})")


class Writer:
    """Builds, batches and stores records; see the module docstring for the guarantees."""

    def __init__(
        self,
        storage: Storage,
        spool: Spool,
        *,
        mode: Mode = "background",
        strict: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        processors: Sequence[Processor] = (),
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
        probe_interval_s: float = PROBE_INTERVAL_S,
        chain_key: bytes | None = None,
    ) -> None:
        self.storage, self.spool, self.mode, self.strict = storage, spool, mode, strict
        self.chain_key = chain_key
        if isinstance(storage, RegistryStore):  # it MACs the heads and registry entries it writes
            storage.chain_key = chain_key
        spool.chain_key = chain_key  # erasures of the spool's forget list are keyed like the chain
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.queue_size, self.processors = queue_size, tuple(processors)
        self.retry_delays_s, self.probe_interval_s = tuple(retry_delays_s), probe_interval_s
        self._init_state()
        _live_writers.add(self)

    def _init_state(self) -> None:
        self.chain = Chain(self.chain_key)  # a new writer_id: a forked child starts its own chain
        self.chain.remember_records = bool(getattr(self.storage, "writes_record_json", False))
        self._queue: collections.deque[Pending | _Marker] = collections.deque()
        self._wake = threading.Event()
        self._store_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("submitted", "written", "spilled", "replayed", "dropped", "rejected", "failed", "unmatched"), 0
        )
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._stopping = False
        self._down_until = 0.0  # monotonic time before which the backend is not retried
        self._next_spool_check = 0.0  # check for leftover spool files at the first good write

    # -- the hot path ---------------------------------------------------------------------------

    def submit(self, item: Pending) -> None:
        """Hand *item* over for storage. Never blocks on I/O unless the queue is full or mode="sync".

        Raises:
            AuditError: only with ``strict=True``, when the record could not be built, or could be
                neither stored nor spilled, on this thread (``mode="sync"``, or a full queue).
        """
        if self.mode == "sync" or self._stopping:
            self._store_now([item], durable=True, strict=self.strict)
        elif len(self._queue) >= self.queue_size:
            self._store_now([item], durable=False, spill_only=True, strict=self.strict)
        else:
            self._queue.append(item)
            if self._thread is None:
                self._start()
            if len(self._queue) >= self.batch_size and not self._wake.is_set():
                # set() takes a lock and notifies: once per batch, not once per submit while the
                # writer thread is still waiting for the GIL (it clears the flag before it drains,
                # so an item seeing the flag set is always drained by the wake-up already asked for)
                self._wake.set()

    # -- public control -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread now (it replays any waiting spool files first); in sync mode,
        replay right away."""
        if self.mode == "sync":
            self._maybe_replay()
        else:
            self._start()
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is stored or spilled; False if *timeout* ran out."""
        if self.mode == "sync" or (self._thread is None and not self._queue):
            return True
        marker = _Marker()
        self._queue.append(marker)
        if self._thread is None:
            self._start()
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop the thread, and spill whatever could not be written within *timeout*."""
        flushed = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and flushed:
            thread.join(timeout)
        leftovers = self._take_all()
        if leftovers:
            logger.warning("llmaudit: spilling %d records not written before shutdown", len(leftovers))
            self._store_now(leftovers, durable=True, spill_only=True)
        self.spool.release()

    def replay_spool(self) -> int:
        """Replay every waiting spool file now; returns the number of records replayed."""
        with self._store_lock:
            result = self.spool.replay(self.storage, batch_size=self.batch_size)
            self._count("replayed", result.records)
        return result.records

    def count_unmatched(self) -> None:
        """Count a request a transport passed through unrecorded (caller's thread: one increment)."""
        self._count("unmatched")

    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        with self._count_lock:
            counts = dict(self._counts)
        depth = sum(1 for item in list(self._queue) if not isinstance(item, _Marker))
        return WriterStats(**counts, queue_depth=depth, spool_files=len(self.spool.files()))

    # -- the writer thread ----------------------------------------------------------------------

    def _start(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="llmaudit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._drain()
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything
                report("writer loop", exc)
            if self._stopping and not self._queue:
                return

    def _take_all(self) -> list[Pending]:
        items: list[Pending] = []
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, _Marker):
                item.done.set()
            else:
                items.append(item)
        return items

    def _drain(self, limit: int | None = None) -> None:
        """Store what is queued, answering each flush marker in turn; with *limit*, take at most that
        many entries (markers included) and leave what arrives meanwhile for the next round."""
        batch: list[Pending] = []
        left = -1 if limit is None else limit
        while self._queue and left:
            left -= 1
            item = self._queue.popleft()
            if isinstance(item, _Marker):
                self._store_batch(batch)
                batch = []
                self._settle()
                item.done.set()
                continue
            batch.append(item)
            if len(batch) >= self.batch_size:
                self._store_batch(batch)
                batch = []
        self._store_batch(batch)
        self._maybe_replay()
        self._maintain()

    def _maintain(self) -> None:
        """Let the storage do its housekeeping (SQLite's checkpoint) now that the queue is empty,
        after every waiting ``flush()`` has been answered."""
        maintain = getattr(self.storage, "maintain", None)
        if maintain is None or self._queue or time.monotonic() < self._down_until:
            return
        try:
            with self._store_lock:
                maintain()
        except Exception as exc:  # noqa: BLE001 - housekeeping never costs a record; the next try may work
            logger.debug("llmaudit: storage maintenance failed: %s", exc)

    def _store_batch(self, items: list[Pending]) -> None:
        if items:
            self._store_now(items, durable=False)

    def _settle(self) -> None:
        """Return once every batch handed to `_store_batch` is stored or spilled (a flush waits on
        this; here they are, `_process.ProcessWriter` waits for its writer process)."""

    # -- building and storing (any thread) ------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        if n:
            with self._count_lock:
                self._counts[key] += n

    def _build(
        self, items: Sequence[Pending], owned: set[int] | None = None, failures: list[Exception] | None = None
    ) -> list[AuditRecord]:
        """Records from *items*, through the processors; the ``id()`` of each one built here (not
        handed in by the caller) goes into *owned*, and each failure into *failures*."""
        records: list[AuditRecord] = []
        for item in items:
            try:
                record = item if isinstance(item, AuditRecord) else item.to_record()
                for processor in self.processors:
                    if record is None:
                        break
                    record = processor(record)
            except Exception as exc:  # noqa: BLE001 - one bad capture must not sink its batch
                self._count("failed")
                report("record building", exc)
                if failures is not None:
                    failures.append(exc)
                continue
            if record is None:
                self._count("dropped")
            else:
                records.append(record)
                if owned is not None and record is not item:
                    owned.add(id(record))
        return records

    def _store_now(
        self, items: Sequence[Pending], *, durable: bool, spill_only: bool = False, strict: bool = False
    ) -> None:
        """Store or spill *items* on this thread. With *strict* (the caller's own record, on the
        caller's thread), a record that could not be built, or neither stored nor spilled, raises
        `AuditError` once everything else here is done; the writer thread never passes *strict*."""
        self._count("submitted", len(items))
        owned: set[int] = set()
        failures: list[Exception] = []
        records = self._build(items, owned, failures)
        if strict and failures:
            raise _stopped("its audit record could not be built", failures[0]) from failures[0]
        if not records:
            return
        if spill_only or time.monotonic() < self._down_until:
            lost = self._spill(self._seal(records, owned), durable=durable)
            forget_encodings()
        else:
            try:
                # Sealed under the store lock, so that records reach the storage in chain order: when
                # several threads store at once (sync mode) and the process dies, what is missing is
                # the end of the chain, never a record in the middle that verify would report deleted.
                with self._store_lock:
                    lost = self._write_or_spill(self._seal(records, owned), durable=durable)
            finally:
                forget_encodings()
        if strict and lost is not None:
            raise _stopped("its audit record could be neither stored nor spilled", lost) from lost
        if self.mode == "sync":
            self._maybe_replay()

    def _seal(self, records: list[AuditRecord], owned: set[int]) -> list[AuditRecord]:
        try:
            return self.chain.seal(records, owned)
        except Exception as exc:  # noqa: BLE001 - unsealed is better than lost: verify flags them
            report("chain sealing", exc)
            return records

    def _write_or_spill(self, records: list[AuditRecord], *, durable: bool) -> Exception | None:
        """Write *records*, retrying, else spill them; returns why some were lost (None: none was)."""
        delays = self.retry_delays_s if self.mode == "background" else self.retry_delays_s[:1]
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
                self._count("written", len(records))
                self._down_until = 0.0
                return None
            if delay is not None:
                time.sleep(delay)
        self._mark_down(last)
        return self._spill(records, durable=durable)

    def _mark_down(self, exc: Exception) -> None:
        if not self._down_until:
            logger.warning(
                "llmaudit: storage %s unavailable (%s); spilling to %s until it recovers",
                self.storage.url,
                exc,
                self.spool.directory,
            )
        self._down_until = time.monotonic() + self.probe_interval_s
        self._next_spool_check = 0.0

    def _reject(self, records: list[AuditRecord], exc: StorageError) -> Exception | None:
        """Keep records the backend refused aside; returns why some were lost (None: none was)."""
        if len(records) > 1:  # isolate the record at fault; the others are fine (each one is tried)
            lost = [self._write_or_spill([record], durable=False) for record in records]
            return next((e for e in lost if e is not None), None)
        try:
            path = self.spool.reject(records)
        except OSError as spool_exc:
            return self._lose(records, spool_exc)
        self._count("rejected", len(records))
        logger.error("llmaudit: storage refused record %s (%s); kept in %s", records[0].id, exc, path)
        return None

    def _spill(self, records: list[AuditRecord], *, durable: bool) -> Exception | None:
        try:
            self.spool.append(records, durable=durable)
        except OSError as exc:
            return self._lose(records, exc)
        self._count("spilled", len(records))
        return None

    def _lose(self, records: list[AuditRecord], exc: Exception) -> Exception:
        self._count("failed", len(records))
        logger.error("llmaudit: %d records could be neither stored nor spilled: %s", len(records), exc)
        return exc

    def _maybe_replay(self) -> None:
        now = time.monotonic()
        if now < self._down_until or now < self._next_spool_check:
            return
        self._next_spool_check = now + SPOOL_CHECK_INTERVAL_S
        if not self.spool.pending():
            return
        try:
            replayed = self.replay_spool()
        except Exception as exc:  # noqa: BLE001 - the backend failed again: wait and retry later
            self._mark_down(exc)
            return
        if replayed:
            logger.info("llmaudit: replayed %d spooled records into %s", replayed, self.storage.url)

    def _reset_after_fork(self) -> None:
        """In a forked child: the parent writes its own pending records; the child starts clean."""
        self.spool.forget_after_fork()
        self._init_state()
