"""``writer="process"``: the writer's work in a child process, off the caller's interpreter lock.

With the default thread writer, building, redacting, sealing and storing a record runs in the caller's
process and so competes with the caller for the GIL: on a CPU-bound program every microsecond of it is
added to the caller's time. With `ProcessWriter` (a `Writer` whose runner is a `ProcessRunner`) a child
Python process does that work with the same pipeline and sink (`process_child`: a `Writer` of its own,
its own hash chain, the same spool directory), and answers each batch with its counters; ``flush()``
waits for the answers.

``submit`` still queues with a ``deque.append``. Every `DEFAULT_SHIP_SIZE` captures (fewer when they
are large: about `SHIP_BYTES`) the caller's thread hands the queued ones on itself: a pickle of their
raw bytes and headers (no parsing) and one non-blocking pipe write (`ProcessRunner.after_submit`
says why the writer thread cannot do it in time); what the pipe cannot take goes out with the next
calls. The writer thread sends only what the caller leaves: the captures before a flush, a trickle once the
caller stops, and what the caller could not pickle (`ProcessRunner.round`).

The child (`process_child.spawn`) starts when the writer thread does. Processors travel by pickle, so
they must be importable: one defined in ``__main__`` is refused at configure time.

If the child cannot start or dies, the parent says so once (WARNING) and goes on as a thread writer: the
batches the child had not yet confirmed are built and stored in the parent, so no record is lost. A
batch the child had stored but not yet confirmed when it died is then stored twice (same content, new
ids); ``stats()`` counts it once.

Never raises into the caller (a failed hand-on leaves the captures queued) and never forks.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import pickle
import subprocess
import threading
from typing import Any

from .._guard import report
from ..storage._base import Storage
from .frames import PIPE_BYTES, POLL_S, Frames, dispatch_table, dumps, sort_shippable
from .pipeline import Pending
from .process_child import check_processors, spawn
from .queue import Marker
from .spool import Spool
from .stats import COUNTERS, WriterStats
from .writer import Writer

__all__ = ["DEFAULT_SHIP_SIZE", "ProcessRunner", "ProcessWriter", "check_processors"]

logger = logging.getLogger("llmaudit")

#: Captures per message to the child. Small, so that the child works while the caller is still
#: calling and a flush waits for little; a wake-up of the writer thread costs the caller a GIL hand-off.
DEFAULT_SHIP_SIZE = 32
#: Bytes per hand-on that make the caller's thread hand on before `DEFAULT_SHIP_SIZE` captures: with
#: 100 KB bodies, 32 captures would be 3 MB, more than the pipe takes, and the child would sit idle
#: until they had all arrived (and a flush would wait for the largest batches).
SHIP_BYTES = 256 * 1024
#: Batches in flight before the writer thread reads the child's answers (else only at flush).
ANSWERS_EVERY = 8


# -- the parent's side -------------------------------------------------------------------------


class ProcessRunner:
    """The `Runner` that hands the writer thread's batches (and the caller's) to a child process.

    *storage_url* is what the child opens; the parent's own storage handle (the writer's) serves
    reads, ``replay_spool``, and the writing after a fallback. The parent hands captures on
    *ship_size* at a time (``batch_size`` is the child's batch).
    """

    def __init__(self, writer: Writer, *, storage_url: str, ship_size: int = DEFAULT_SHIP_SIZE) -> None:
        self.writer = writer
        self.storage_url = storage_url
        self.ship_size = ship_size
        self._child: subprocess.Popen[bytes] | None = None
        self._outbox: Frames | None = None
        self._inbox: Frames | None = None
        self._table: dict[Any, Any] | None = None
        self._send_lock = threading.Lock()  # taking captures off the queue and sending them
        self._ship_lock = threading.Lock()  # the batches in flight
        self._read_lock = threading.RLock()  # RLock: a read that finds the pipe's end falls back,
        # and falling back reads the child's last answers
        self._seq = 0  # of the last batch handed to the child
        self._acked = 0  # of the last batch the child confirmed
        self._unacked: collections.deque[tuple[int, list[Pending]]] = collections.deque()
        self._child_counts = dict.fromkeys(COUNTERS, 0)  # guarded by the writer's counter lock
        self._broken: str | None = None  # the caller's thread found the child gone
        self._deferred: collections.deque[Pending] = collections.deque()  # left to the writer thread
        self.fallback_reason: str | None = None  # set once the parent writes by itself
        self._ship_at = self.ship_size  # captures per hand-on, fewer when they are large (`_ship`)
        self._hand_ons = 0  # batches the caller's thread handed on (`_caller_keeps_up`)
        self._hand_ons_seen = 0

    def forget(self) -> None:
        """After fork(): a forked child of the application leaves the parent's writer process to the
        parent and starts its own on its first batch (a new runner). It closes its copies of the
        pipes, or the parent's child would never see the end of its input when the parent closes."""
        for inherited in (self._outbox, self._inbox):
            if inherited is not None:
                inherited.close()

    # -- the caller's thread ---------------------------------------------------------------------

    def after_submit(self) -> None:
        """After each submit: every `ship_size` captures, hand them to the child from here.

        The writer thread would have to win the interpreter lock from a busy caller to do it, which
        can take tens of milliseconds (a thread waiting for the GIL is starved while the holder
        keeps releasing and retaking it), so captures piled up until ``flush()`` and the child then
        did the whole block's work while the caller waited. Handing on costs the caller a pickle of
        the captures' bytes (no parsing) and one non-blocking pipe write per `ship_size` calls; when
        the pipe is full or the writer thread is sending, the captures stay queued for a later call
        (or for the writer thread, once the calls stop). A batch larger than the pipe goes out over
        the following calls, each writing what the child has made room for.
        """
        outbox = self._outbox
        if (
            outbox is not None
            and (outbox.unsent or len(self.writer._queue) >= self._ship_at)
            and self._send_lock.acquire(blocking=False)
        ):
            try:
                self._hand_on(outbox)
            except Exception as exc:  # noqa: BLE001 - the captures are queued or in flight either way
                report("process writer hand-off", exc)
            finally:
                self._send_lock.release()

    def _hand_on(self, outbox: Frames) -> None:
        queue = self.writer._queue
        if outbox.unsent >= PIPE_BYTES or len(queue) < self._ship_at:
            try:
                outbox.push(wait=False)  # the rest of a batch larger than what the pipe took
            except OSError as exc:
                self._gone(f"the writer process is gone ({type(exc).__name__})")
            self._hand_ons += 1
            return
        batch = list[Pending]()
        while queue and len(batch) < self._ship_at:
            head = queue[0]
            if isinstance(head, Marker):
                break  # a flush waits there: the writer thread sends what is before it
            batch.append(head)
            queue.popleft()
        if batch:
            self._ship(batch, wait=False)
            self._hand_ons += 1

    # -- the writer thread ---------------------------------------------------------------------

    def on_thread_start(self) -> None:
        self._start_child()  # at once, so that the caller's thread can hand on from the start

    def round(self, limit: int | None) -> None:
        """Send what the caller's thread left: deferred captures, those before a flush marker, and
        a trickle too small to ship, and no more than is queued now (*limit* is not used).

        Otherwise this thread stays out of the way: while the caller's thread is busy, this one can
        wait 100-200 ms for the interpreter lock (measured with several auditors in one process),
        and if it held the send lock meanwhile, the caller could not hand on and every capture of
        that stretch waited for it: a flush took 15-25 ms instead of 2-3. What arrives while it
        sends, the caller hands on; a flush sets the wake-up again, so its marker is not left
        behind."""
        if self._caller_keeps_up():
            return
        writer = self.writer
        with self._send_lock:
            if self._broken is not None and self.fallback_reason is None:
                self._fall_back(self._broken)
            deferred = self._deferred
            if deferred:
                self.store([deferred.popleft() for _ in range(len(deferred))])
            writer.queue.drain(self.store, self.settle, None if writer._stopping else len(writer._queue))
            self.replay()
            if self.fallback_reason is not None and not writer._queue:
                writer.sink.maintain()

    def _caller_keeps_up(self) -> bool:
        """True when this thread has nothing to do that the caller's thread will not do: no flush
        marker, nothing deferred, no child gone, not stopping, and either the caller handed on since
        this thread last looked (what is left then goes with the caller's next batch, or at this
        thread's next round if the caller has gone quiet) or nothing is waiting to be sent."""
        seen, self._hand_ons_seen = self._hand_ons_seen, self._hand_ons
        if (
            self.writer._stopping
            or self._deferred
            or self._broken is not None
            or self.fallback_reason is not None
        ):
            return False
        queued = list(self.writer._queue)  # one C call: another thread's append cannot interleave
        if any(type(item) is Marker for item in queued):
            return False
        if seen != self._hand_ons:
            return True
        return not queued and not (self._outbox is not None and self._outbox.unsent)

    def store(self, items: list[Pending]) -> None:
        """Ship *items* to the child (starting it if need be), or store them here after a fallback."""
        if not items:
            return
        if self.fallback_reason is None and (self._child is not None or self._start_child()):
            self._ship(items, wait=True)
        else:
            self._store_here(items)

    def _store_here(self, items: list[Pending]) -> None:
        if items:
            self.writer._store_now(items, durable=False)

    def settle(self) -> None:
        """Wait until the child has confirmed every batch handed to it (or fall back)."""
        outbox = self._outbox
        if outbox is not None and self.fallback_reason is None:
            try:
                outbox.push(wait=True)
            except OSError as exc:
                self._fall_back(f"the writer process is gone ({type(exc).__name__})")
        while self.fallback_reason is None and self._acked < self._seq:
            if not self._read_answers(POLL_S) and self._child is not None and self._child.poll() is not None:
                self._fall_back(f"the writer process exited with status {self._child.returncode}")

    def replay(self) -> None:
        """The child replays the spool; this process does only once it writes by itself."""
        if self.fallback_reason is not None or self.writer.mode == "sync":
            self.writer.sink.maybe_replay()

    def stats(self, own: WriterStats) -> WriterStats:
        with self.writer.counts.lock:
            child = dict(self._child_counts)
        with self._ship_lock:
            waiting = sum(len(items) for _, items in self._unacked) + len(self._deferred)
        fields = {name: getattr(own, name) + child[name] for name in COUNTERS}
        return WriterStats(
            **fields,
            queue_depth=own.queue_depth + waiting,
            spool_files=own.spool_files,
            unmatched=own.unmatched,  # counted on the caller's side, never in the child
        )

    def close(self, timeout: float | None) -> None:
        """The writer has flushed through the child and stopped its thread: end the child."""
        self._stop_child(timeout)

    # -- the child process ---------------------------------------------------------------------

    def _start_child(self) -> bool:
        try:
            self._spawn()
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the records are written here
            self._fall_back(f"the writer process could not start: {exc}")
            return False
        return True

    def _spawn(self) -> None:
        w = self.writer
        config = {
            "storage_url": self.storage_url,
            "spool_dir": str(w.spool.directory),
            "batch_size": w.batch_size,
            "processors": w.processors,
            "retry_delays_s": w.retry_delays_s,
            "probe_interval_s": w.probe_interval_s,
            "chain_key": w.chain_key,
            "checkpointing": w.checkpointing,  # the child seals, so the child signs its checkpoints
        }
        self._child, self._outbox, self._inbox = spawn(config)
        self._table = dispatch_table()

    def _ship(self, items: list[Pending], *, wait: bool) -> None:
        """Send *items* as one batch; without *wait* (the caller's thread), what does not fit in
        the pipe now is left for the writer thread to write."""
        outbox, table = self._outbox, self._table
        if outbox is None or table is None or self.fallback_reason is not None:
            self._defer(items) if not wait else self._store_here(items)
            return
        try:
            blob = dumps(items, table)
        except Exception:  # noqa: BLE001 - one item that does not pickle: sort them one by one
            if not wait:  # building or storing is not for the caller's thread
                self._defer(items)
                return
            items, blob = self._shippable(items)
            if not items:
                return
        self._ship_at = max(1, min(self.ship_size, SHIP_BYTES * len(items) // max(len(blob), 1)))
        with self._ship_lock:
            self._seq += 1
            self._unacked.append((self._seq, items))
        outbox.post(blob)
        try:
            if len(self._unacked) > ANSWERS_EVERY:  # one read takes every answer waiting
                self._read_answers(0)
            outbox.push(wait=wait)
        except OSError as exc:
            self._gone(f"the writer process is gone ({type(exc).__name__})")

    def _defer(self, items: list[Pending]) -> None:
        """Leave *items* to the writer thread (which sends them first at its next round)."""
        self._deferred.extend(items)
        self.writer.queue.wake.set()

    def _shippable(self, items: list[Pending]) -> tuple[list[Pending], bytes]:
        """The items that pickle (a capture that does not is built here and its record sent
        instead); one that cannot be sent at all is stored by this process at once."""
        assert self._table is not None
        kept, here, dropped = sort_shippable(items, self._table)
        self.writer.counts.add("submitted", dropped)
        self.writer.counts.add("dropped", dropped)
        if here:
            self._store_here(here)
        return kept, (dumps(kept, self._table) if kept else b"")

    def _read_answers(self, timeout: float, *, at_end: bool = False) -> bool:
        """Take the child's answers waiting (or arriving within *timeout*); False if none came.
        The pipe's end means the child is gone: unless *at_end* (we closed it), fall back."""
        with self._read_lock:  # close() may read while the writer thread waits in _settle
            return self._read_answers_locked(timeout, at_end=at_end)

    def _read_answers_locked(self, timeout: float, *, at_end: bool) -> bool:
        inbox = self._inbox
        if inbox is None:
            return False
        try:
            answers = inbox.receive(timeout)
            for answer in answers:
                kind, seq, detail = pickle.loads(answer)  # noqa: S301 - our own child
                if kind == "ack":
                    with self._ship_lock:
                        while self._unacked and self._unacked[0][0] <= seq:
                            self._unacked.popleft()
                        self._acked = max(self._acked, seq)
                    with self.writer.counts.lock:
                        self._child_counts = detail
        except (OSError, EOFError) as exc:
            if not at_end:
                self._gone(f"the writer process is gone ({type(exc).__name__})")
            return True
        return bool(answers)

    def _gone(self, reason: str) -> None:
        """The child is gone: fall back now on the writer thread; on the caller's thread, leave
        that (building and storing what the child had not confirmed) to the writer thread."""
        if threading.current_thread() is self.writer._thread:
            self._fall_back(reason)
        else:
            self._broken = reason
            self.writer.queue.wake.set()

    def _fall_back(self, reason: str) -> None:
        """Write in this process from now on; store here what the child had not confirmed."""
        with self._ship_lock:
            if self.fallback_reason is not None:
                return
            self.fallback_reason = reason
        logger.warning("llmaudit: %s; writing in this process from now on", reason)
        self._end_child(kill=True)  # and read the answers it sent before it went
        with self._ship_lock:
            batches = [items for _, items in self._unacked]
            self._unacked.clear()
            self._acked = self._seq
        counts = self.writer.counts
        with counts.lock:
            for name in COUNTERS:  # what the child confirmed stays counted
                counts.values[name] += self._child_counts[name]
            self._child_counts = dict.fromkeys(COUNTERS, 0)
        for items in batches:
            self._store_here(items)

    def _stop_child(self, timeout: float | None) -> None:
        """At close: let the child finish (its pipe closes, it stores what it has and exits); one
        that does not within *timeout* is killed and its unconfirmed batches are spilled here."""
        if self._child is not None:
            self._end_child(kill=False, timeout=timeout)
        with self._ship_lock:
            batches = [items for _, items in self._unacked]
            self._unacked.clear()
            deferred = self._deferred
            batches.append([deferred.popleft() for _ in range(len(deferred))])
        for items in batches:
            self.writer._store_now(items, durable=True, spill_only=True)
        self.writer.spool.release()

    def _end_child(self, *, kill: bool, timeout: float | None = None) -> None:
        child, outbox, inbox = self._child, self._outbox, self._inbox
        if outbox is not None:
            outbox.close()
        if child is not None:
            if kill:
                with contextlib.suppress(OSError):
                    child.kill()
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("llmaudit: the writer process did not finish in time; stopping it")
                child.kill()
                child.wait()
        if inbox is not None:
            self._read_answers(0, at_end=True)  # the last batch's answer, sent before it exited
            inbox.close()
        self._child = self._outbox = self._inbox = None


class ProcessWriter(Writer):
    """A `Writer` whose runner is a `ProcessRunner` (see the module docstring): records are built and
    stored by a child process. *storage_url* is what the child opens."""

    def __init__(
        self,
        storage: Storage,
        spool: Spool,
        *,
        storage_url: str,
        ship_size: int = DEFAULT_SHIP_SIZE,
        **options: Any,
    ) -> None:
        self.storage_url = storage_url
        self.ship_size = ship_size
        runner = functools.partial(ProcessRunner, storage_url=storage_url, ship_size=ship_size)
        super().__init__(storage, spool, runner=runner, **options)

    @property
    def process_runner(self) -> ProcessRunner:
        """This writer's runner (a forked child of the application gets a new one)."""
        runner = self.runner
        assert isinstance(runner, ProcessRunner)
        return runner

    @property
    def fallback_reason(self) -> str | None:
        """Why this process writes by itself (the child could not start or died), or None."""
        return self.process_runner.fallback_reason

    @property
    def _ship_at(self) -> int:
        return self.process_runner._ship_at

    @_ship_at.setter
    def _ship_at(self, size: int) -> None:
        self.process_runner._ship_at = size

    def __getattr__(self, name: str) -> Any:
        """The runner's state (``_child``, ``_outbox``, ``_seq``, …) read through the writer, for
        tests and debugging; only called for names the writer itself does not have."""
        if name.startswith("__") or name == "runner":  # not before __init__ has set it
            raise AttributeError(name)
        return getattr(self.runner, name)
