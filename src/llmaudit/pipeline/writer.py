"""The writer: a bounded queue, a record pipeline and a sink, run off the caller's thread.

`Writer` composes a `queue.BatchQueue` (what the caller hands over), a `pipeline.RecordPipeline`
(capture -> built, processed, sealed record) and a `sink.Sink` (write with retries, spill to the spool,
replay it), and a *runner* that decides where a batch goes: `ThreadRunner` (here: the daemon writer
thread stores it) or `process_runner.ProcessRunner` (a child process does). Both runners share the
same thread loop, pipeline and sink; the process runner falls back to the thread runner's work when its
child is gone.

`submit` is the only method on the hot path: a length check and a ``deque.append`` (no lock, no I/O,
no parsing). The writer thread wakes when a batch is full or the flush interval passes. A full queue
spills from the caller's thread, the one exception to "no I/O on the hot path", because the
alternative is losing records. ``mode="sync"`` does all of it on the caller's thread and returns only
once the record is durable (stored, or spilled and fsynced).

Never raises into the caller, except `AuditError` in strict mode (on the caller's thread only).
Every record ends in exactly one counter (`stats.WriterStats`).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Protocol

from .._errors import AuditError
from .._guard import report
from ..integrity.chain import Chain
from ..storage._base import RecordJSONStore, RegistryStore, Storage
from .checkpointing import Checkpointer, Checkpointing
from .limits import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_INTERVAL_S,
    DEFAULT_QUEUE_SIZE,
    FORK_WAIT_S,
    PROBE_INTERVAL_S,
    RETRY_DELAYS_S,
    Mode,
)
from .pipeline import Capture, Pending, Processor, RecordPipeline
from .queue import BatchQueue
from .sink import Sink
from .spool import Spool
from .stats import Counters, WriterStats

__all__ = ["Capture", "Pending", "Processor", "Runner", "ThreadRunner", "Writer", "WriterStats"]

logger = logging.getLogger("llmaudit")


class Runner(Protocol):
    """Where the writer thread's batches go; one per writer (a forked child gets a new one)."""

    @property
    def after_submit(self) -> Callable[[], None] | None:
        """Called on the caller's thread after each `Writer.submit` (None: nothing to do there)."""

    def on_thread_start(self) -> None:
        """The writer thread has started (before its first round)."""

    def round(self, limit: int | None) -> None:
        """One round of the writer thread: hand the queued batches on, answer the flush markers."""

    def replay(self) -> None:
        """Replay the spool if it is time (after a sync store, at a sync start, after a round)."""

    def stats(self, own: WriterStats) -> WriterStats:
        """*own* (this process's counters) with what the runner knows besides."""

    def close(self, timeout: float | None) -> None:
        """The writer thread has stopped and the queue is empty: release what the runner holds."""

    def forget(self) -> None:
        """In a forked child: let go of the parent's resources (a new runner takes over)."""


class ThreadRunner:
    """The writer thread builds, seals and stores each batch itself."""

    after_submit: Callable[[], None] | None = None

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def on_thread_start(self) -> None:
        """Nothing to start."""

    def round(self, limit: int | None) -> None:
        writer = self.writer
        writer.queue.drain(self.store, self.settle, limit)
        writer.sink.maybe_replay()
        self.maintain()

    def store(self, items: list[Pending]) -> None:
        """Build, seal and store *items* on this thread."""
        if items:
            self.writer._store_now(items, durable=False)

    def settle(self) -> None:
        """Every batch handed to `store` is already stored or spilled."""

    def maintain(self) -> None:
        """Let the storage do its housekeeping now that the queue is empty, after every waiting
        ``flush()`` has been answered."""
        if not self.writer.queue.items:
            self.writer.sink.maintain()

    def replay(self) -> None:
        self.writer.sink.maybe_replay()

    def stats(self, own: WriterStats) -> WriterStats:
        return own

    def close(self, timeout: float | None) -> None:
        """Nothing beyond the writer's own close."""

    def forget(self) -> None:
        """Nothing inherited to let go of."""


_live_writers: weakref.WeakSet[Writer] = weakref.WeakSet()
_held_for_fork: list[threading.Lock] = []


def _before_fork() -> None:
    """Hold every writer's store lock across ``fork()``: a child must never inherit a storage in the
    middle of a write (SQLite's process-wide mutexes copied while held hang the child for ever, and
    a file lock taken by the parent's writer would stay held in the child's copy)."""
    for writer in list(_live_writers):
        lock = writer.sink.lock
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
    """Queue, pipeline and sink, with a runner (default `ThreadRunner`); see the module docstring."""

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
        checkpointing: Checkpointing | None = None,
        runner: Callable[[Writer], Runner] = ThreadRunner,
    ) -> None:
        self.storage, self.spool, self.mode, self.strict = storage, spool, mode, strict
        self.chain_key = chain_key
        #: signed checkpoints of each chain (None: no signing key, none made)
        self.checkpointing = checkpointing
        self.checkpointer: Checkpointer | None = None
        if isinstance(storage, RegistryStore):  # it MACs the heads and registry entries it writes
            storage.chain_key = chain_key
        spool.chain_key = chain_key  # erasures of the spool's forget list are keyed like the chain
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.queue_size, self.processors = queue_size, tuple(processors)
        self.counts = Counters()
        self.sink = Sink(
            storage,
            spool,
            self.counts,
            background=mode == "background",
            batch_size=batch_size,
            retry_delays_s=retry_delays_s,
            probe_interval_s=probe_interval_s,
        )
        self._make_runner = runner
        self.runner: Runner | None = None
        self._init_state()
        _live_writers.add(self)

    def _init_state(self) -> None:
        """A fresh queue, chain (a new writer_id: a forked child starts its own), counters and runner."""
        if self.runner is not None:
            self.runner.forget()
        self.counts = Counters()
        self.sink.counts = self.counts
        self.sink.reset()
        self.queue: BatchQueue[Pending] = BatchQueue(self.batch_size)
        self._queue = self.queue.items  # the hot path's deque (read by `submit` without a call)
        writes_json = isinstance(self.storage, RecordJSONStore) and bool(self.storage.writes_record_json)
        self.pipeline = RecordPipeline(
            self.processors, self.counts, chain_key=self.chain_key, remember_records=writes_json
        )
        if self.checkpointing is not None:  # a new chain, a new tree (a forked child's own)
            self.checkpointer = Checkpointer(
                self.checkpointing,
                self.storage,
                self.pipeline.chain.writer_id,
                chain_keyed=self.chain_key is not None,
            )
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._stopping = False
        runner = self._make_runner(self)
        self.runner = runner
        self._after_submit = runner.after_submit
        if self._after_submit is not None:  # chosen once here, so that `submit` itself asks nothing
            self.submit = self._submit_then_hand_on  # type: ignore[method-assign]

    # -- the parts, by the names the writer had before it was split -----------------------------

    @property
    def chain(self) -> Chain:
        return self.pipeline.chain

    @property
    def retry_delays_s(self) -> tuple[float, ...]:
        return self.sink.retry_delays_s

    @retry_delays_s.setter
    def retry_delays_s(self, delays: Sequence[float]) -> None:
        self.sink.retry_delays_s = tuple(delays)

    @property
    def probe_interval_s(self) -> float:
        return self.sink.probe_interval_s

    @probe_interval_s.setter
    def probe_interval_s(self, seconds: float) -> None:
        self.sink.probe_interval_s = seconds

    @property
    def _wake(self) -> threading.Event:
        return self.queue.wake

    @_wake.setter
    def _wake(self, event: threading.Event) -> None:
        self.queue.wake = event

    @property
    def _store_lock(self) -> threading.Lock:
        return self.sink.lock

    @_store_lock.setter
    def _store_lock(self, lock: threading.Lock) -> None:
        self.sink.lock = lock

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
            queue = self._queue
            queue.append(item)
            if self._thread is None:
                self._start()
            if len(queue) >= self.batch_size:
                wake = self.queue.wake
                if not wake.is_set():
                    # set() takes a lock and notifies: once per batch, not once per submit while the
                    # writer thread is still waiting for the GIL (it clears the flag before it drains,
                    # so an item seeing the flag set is always drained by the wake-up already asked for)
                    wake.set()

    def _submit_then_hand_on(self, item: Pending) -> None:
        """`submit` for a runner that works on the caller's thread after each one (the process
        runner hands batches on from there)."""
        Writer.submit(self, item)
        after = self._after_submit
        assert after is not None  # chosen in `_init_state`
        after()

    # -- public control -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread now (it replays any waiting spool files first); in sync mode,
        replay right away."""
        if self.mode == "sync":
            self._runner().replay()
        else:
            self._start()
            self.queue.wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is stored or spilled; False if *timeout* ran out."""
        if self.mode == "sync" or (self._thread is None and not self._queue):
            return True
        marker = self.queue.mark()
        if self._thread is None:
            self._start()
        self.queue.wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop the thread, and spill whatever could not be written within *timeout*."""
        flushed = self.flush(timeout)
        self._stopping = True
        self.queue.wake.set()
        thread = self._thread
        if thread is not None and flushed:
            thread.join(timeout)
        leftovers = self.queue.take_all()
        if leftovers:
            logger.warning("llmaudit: spilling %d records not written before shutdown", len(leftovers))
            self._store_now(leftovers, durable=True, spill_only=True)
        self.spool.release()
        self._runner().close(timeout)
        self.close_checkpoints()

    def close_checkpoints(self) -> None:
        """Make this chain's final signed checkpoint (none without a signing key); idempotent."""
        if self.checkpointer is not None:
            self.checkpointer.close()

    def tick_checkpoints(self) -> None:
        """The writer is idle: the signed checkpoint due by time, if one is."""
        if self.checkpointer is not None:
            self.checkpointer.tick()

    def replay_spool(self) -> int:
        """Replay every waiting spool file now; returns the number of records replayed."""
        return self.sink.replay()

    def count_unmatched(self) -> None:
        """Count a request a transport passed through unrecorded (caller's thread: one increment)."""
        self.counts.add("unmatched")

    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        counts = self.counts.snapshot()
        own = WriterStats(**counts, queue_depth=self.queue.depth(), spool_files=len(self.spool.files()))
        return self._runner().stats(own)

    # -- the writer thread ----------------------------------------------------------------------

    def _runner(self) -> Runner:
        runner = self.runner
        assert runner is not None  # set in __init__
        return runner

    def _start(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="llmaudit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        self._runner().on_thread_start()
        while True:
            self.queue.wake.wait(self.flush_interval_s)
            self.queue.wake.clear()
            try:
                self._drain()
                self.tick_checkpoints()
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything
                report("writer loop", exc)
            if self._stopping and not self._queue:
                return

    def _drain(self, limit: int | None = None) -> None:
        """One round of the runner: store (or hand on) what is queued, answering each flush marker
        in turn; with *limit*, take at most that many entries (markers included)."""
        self._runner().round(limit)

    # -- building and storing (any thread) ------------------------------------------------------

    def _store_now(
        self, items: Sequence[Pending], *, durable: bool, spill_only: bool = False, strict: bool = False
    ) -> None:
        """Build, seal and store or spill *items* on this thread. With *strict* (the caller's own
        record, on the caller's thread), a record that could not be built, or neither stored nor
        spilled, raises `AuditError` once everything else here is done; the writer thread never
        passes *strict*."""
        self.counts.add("submitted", len(items))
        pipeline, sink = self.pipeline, self.sink
        owned: set[int] = set()
        failures: list[Exception] = []
        records = pipeline.build(items, owned, failures)
        if strict and failures:
            raise _stopped("its audit record could not be built", failures[0]) from failures[0]
        if not records:
            return
        checkpointer = self.checkpointer
        if spill_only or sink.is_down():
            sealed = pipeline.seal(records, owned)
            lost = sink.spill(sealed, durable=durable)
            pipeline.end_batch()
            if checkpointer is not None:
                checkpointer.sealed(sealed)
        else:
            try:
                # Sealed under the store lock, so that records reach the storage in chain order: when
                # several threads store at once (sync mode) and the process dies, what is missing is
                # the end of the chain, never a record in the middle that verify would report deleted.
                with sink.lock:
                    sealed = pipeline.seal(records, owned)
                    lost = sink.write_or_spill(sealed, durable=durable)
                    if checkpointer is not None:  # after the records: a checkpoint covers stored ones
                        checkpointer.sealed(sealed)
            finally:
                pipeline.end_batch()
        if strict and lost is not None:
            raise _stopped("its audit record could be neither stored nor spilled", lost) from lost
        if self.mode == "sync":
            self._runner().replay()

    def _reset_after_fork(self) -> None:
        """In a forked child: the parent writes its own pending records; the child starts clean."""
        self.spool.forget_after_fork()
        self._init_state()
