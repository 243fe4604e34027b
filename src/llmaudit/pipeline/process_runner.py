"""``writer="process"``: the writer's work in a child process, off the caller's interpreter lock.

With the default thread writer, building, redacting, sealing and storing a record runs in the caller's
process and so competes with the caller for the GIL: on a CPU-bound program every microsecond of it is
added to the caller's time. With `ProcessWriter` a child Python process does that work, with an
ordinary `Writer` of its own (its own hash chain, the same spool directory), and answers each batch
with its counters; ``flush()`` waits for the answers.

``submit`` still queues with a ``deque.append``. Every `DEFAULT_SHIP_SIZE` captures (fewer when they
are large: about `SHIP_BYTES`) the caller's thread hands the queued ones on itself: a pickle of their
raw bytes and headers (no parsing) and one non-blocking pipe write (`ProcessWriter.submit` says why
the writer thread cannot do it in time); what the pipe cannot take goes out with the next calls. The
writer thread sends only what the caller leaves: the captures before a flush, a trickle once the
caller stops, and what the caller could not pickle (`ProcessWriter._drain`).

The child is ``sys.executable`` started fresh (never ``fork``: the caller's threads and locks stay
where they are) when the writer thread starts. It ignores SIGINT and SIGTERM (a Ctrl-C or a service
stop reaches the whole process group; the parent's exit flush goes through the child, which then exits
when its pipe closes) and exits by itself when the parent dies. Processors travel by pickle, so they
must be importable: one defined in ``__main__`` is refused at configure time.

If the child cannot start or dies, the parent says so once (WARNING) and goes on as a thread writer: the
batches the child had not yet confirmed are built and stored in the parent, so no record is lost. A
batch the child had stored but not yet confirmed when it died is then stored twice (same content, new
ids); ``stats()`` counts it once.
"""

from __future__ import annotations

import collections
import contextlib
import copyreg
import io
import itertools
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import ConfigurationError
from .._guard import report
from ..record.model import AuditRecord
from ..storage._base import Storage
from .spool import Spool
from .writer import Pending, Processor, Writer, WriterStats, _Marker

__all__ = ["DEFAULT_SHIP_SIZE", "ProcessWriter", "check_processors", "child_main"]

logger = logging.getLogger("llmaudit")

#: Captures per message to the child. Small, so that the child works while the caller is still
#: calling and a flush waits for little; a wake-up of the writer thread costs the caller a GIL hand-off.
DEFAULT_SHIP_SIZE = 32
#: How long the writer thread waits for the child to start (python, llmaudit and the storage driver).
START_TIMEOUT_S = 60.0
#: How often a waiting parent checks that the child is alive, and an idle child replays its spool.
POLL_S = 0.5
#: Bytes per hand-on that make the caller's thread hand on before `DEFAULT_SHIP_SIZE` captures: with
#: 100 KB bodies, 32 captures would be 3 MB, more than the pipe takes, and the child would sit idle
#: until they had all arrived (and a flush would wait for the largest batches).
SHIP_BYTES = 256 * 1024
#: Batches in flight before the writer thread reads the child's answers (else only at flush).
ANSWERS_EVERY = 8

_COUNTERS = ("submitted", "written", "spilled", "replayed", "dropped", "rejected", "failed")


# -- pickling ------------------------------------------------------------------------------------


def _proxy(mapping: dict[str, Any]) -> types.MappingProxyType[str, Any]:
    return types.MappingProxyType(mapping)


def _reduce_proxy(mapping: types.MappingProxyType[str, Any]) -> tuple[Any, ...]:
    return (_proxy, (dict(mapping),))


def _dispatch_table() -> dict[Any, Any]:
    table: dict[Any, Any] = dict(copyreg.dispatch_table)
    table[types.MappingProxyType] = _reduce_proxy  # a session's metadata
    for name in ("httpx", "httpx2"):
        module = sys.modules.get(name)
        url_type = getattr(module, "URL", None)
        if url_type is not None:  # by its text: pickling the parsed parts costs 3x as much
            table[url_type] = lambda url, _t=url_type: (_t, (str(url),))
    return table


def _dumps(value: object, table: dict[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = table
    pickler.dump(value)
    return buffer.getvalue()


def check_processors(processors: Sequence[Processor]) -> None:
    """Refuse, at configure time, processors the writer process could not load.

    Raises:
        ConfigurationError: a processor is defined in ``__main__`` or cannot be pickled.
    """
    for processor in processors:
        inner = getattr(processor, "_before_write", None)
        for candidate in (processor, inner):
            if candidate is None:
                continue
            module = getattr(candidate, "__module__", None) or type(candidate).__module__
            if module == "__main__":
                raise ConfigurationError(
                    f'writer="process" runs processors in a separate process, which cannot load '
                    f"{candidate!r} from __main__: define it in an importable module"
                )
        try:
            pickle.dumps(processor)
        except Exception as exc:  # noqa: BLE001 - any pickling failure is a configuration error
            raise ConfigurationError(
                f'writer="process" needs processors that can be pickled; {processor!r} cannot: {exc}'
            ) from None


# -- the pipes ---------------------------------------------------------------------------------

_HEADER = struct.Struct("!I")
_F_SETPIPE_SZ = 1031  # Linux: a larger pipe lets the parent hand on batches while the child is busy
PIPE_BYTES = 1 << 20


class Frames:
    """Length-prefixed messages over one end of a pipe.

    Each syscall is a GIL hand-off for the parent's writer thread (it must wait for the caller's
    thread to give the interpreter lock back, up to the 5 ms switch interval), so a message goes out in
    one ``writev`` and a read takes every message that has arrived in one ``read``.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()
        self.ended = False
        self._out: collections.deque[memoryview] = collections.deque()
        self.unsent = 0  # bytes posted and not yet written

    def post(self, payload: bytes) -> None:
        """Queue one message for `push`."""
        self._out.append(memoryview(_HEADER.pack(len(payload))))
        self._out.append(memoryview(payload))
        self.unsent += _HEADER.size + len(payload)

    def push(self, wait: bool) -> bool:
        """Write what is queued: all of it (waiting while the pipe is full) or, without *wait*, what
        fits now (the end of the pipe being non-blocking). True once nothing is left.

        Raises:
            OSError: the reader is gone (EPIPE).
        """
        out = self._out
        while out:
            try:
                done = os.writev(self.fd, list(itertools.islice(out, 0, 64)))
            except BlockingIOError:
                if not wait:
                    return False
                select.select([], [self.fd], [], POLL_S)
                continue
            self.unsent -= done
            while done:
                head = out[0]
                if len(head) > done:
                    out[0] = head[done:]
                    break
                done -= len(head)
                out.popleft()
        return True

    def send(self, payload: bytes) -> None:
        """Write one message now (waiting while the pipe is full)."""
        self.post(payload)
        self.push(wait=True)

    def receive(self, timeout: float | None) -> list[bytes]:
        """The whole messages that have arrived, waiting up to *timeout* seconds for data (None: for
        ever); empty when none arrived whole in time. Raises EOFError once the writer is gone and
        every message has been taken."""
        frames = self._take()
        if frames:
            return frames
        if self.ended:
            raise EOFError
        if timeout != 0 and not select.select([self.fd], [], [], timeout)[0]:
            return []
        try:
            data = os.read(self.fd, PIPE_BYTES)
        except BlockingIOError:
            return []
        if not data:
            self.ended = True
            raise EOFError
        self._buffer += data
        return self._take()  # a message cut in two by the read waits here for the next one

    def _take(self) -> list[bytes]:
        frames: list[bytes] = []
        buffer, at = self._buffer, 0
        while len(buffer) - at >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, at)
            if len(buffer) - at - _HEADER.size < size:
                break
            frames.append(bytes(buffer[at + _HEADER.size : at + _HEADER.size + size]))
            at += _HEADER.size + size
        del buffer[:at]
        return frames

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        import fcntl  # noqa: PLC0415 - POSIX only

        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, PIPE_BYTES)
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    return read_fd, write_fd


# -- the parent's side -------------------------------------------------------------------------


class ProcessWriter(Writer):
    """A `Writer` whose records are built and stored by a child process (see the module docstring).

    *storage* is the parent's own handle (reads, ``replay_spool``, and the writing after a fallback);
    the child opens *storage_url* itself. ``batch_size`` is the child's batch; the parent hands
    captures on *ship_size* at a time.
    """

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
        super().__init__(storage, spool, **options)

    def _init_state(self) -> None:
        # also after fork(): a forked child of the application leaves the parent's writer process
        # to the parent and starts its own on its first batch. It closes its copies of the pipes,
        # or the parent's child would never see the end of its input when the parent closes.
        for inherited in (getattr(self, "_outbox", None), getattr(self, "_inbox", None)):
            if inherited is not None:
                inherited.close()
        super()._init_state()
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
        self._child_counts = dict.fromkeys(_COUNTERS, 0)
        self._broken: str | None = None  # the caller's thread found the child gone
        self._deferred: collections.deque[Pending] = collections.deque()  # left to the writer thread
        self.fallback_reason: str | None = None  # set once the parent writes by itself
        self._ship_at = self.ship_size  # captures per hand-on, fewer when they are large (`_ship`)
        self._hand_ons = 0  # batches the caller's thread handed on (`_caller_keeps_up`)
        self._hand_ons_seen = 0

    # -- the caller's thread ---------------------------------------------------------------------

    def submit(self, item: Pending) -> None:
        """Queue *item*; every `ship_size` captures, hand them to the child from here.

        The writer thread would have to win the interpreter lock from a busy caller to do it, which
        can take tens of milliseconds (a thread waiting for the GIL is starved while the holder
        keeps releasing and retaking it), so captures piled up until ``flush()`` and the child then
        did the whole block's work while the caller waited. Handing on costs the caller a pickle of
        the captures' bytes (no parsing) and one non-blocking pipe write per `ship_size` calls; when
        the pipe is full or the writer thread is sending, the captures stay queued for a later call
        (or for the writer thread, once the calls stop). A batch larger than the pipe goes out over
        the following calls, each writing what the child has made room for.
        """
        super().submit(item)
        outbox = self._outbox
        if (
            outbox is not None
            and (outbox.unsent or len(self._queue) >= self._ship_at)
            and self._send_lock.acquire(blocking=False)
        ):
            try:
                self._hand_on(outbox)
            except Exception as exc:  # noqa: BLE001 - the captures are queued or in flight either way
                report("process writer hand-off", exc)
            finally:
                self._send_lock.release()

    def _hand_on(self, outbox: Frames) -> None:
        if outbox.unsent >= PIPE_BYTES or len(self._queue) < self._ship_at:
            try:
                outbox.push(wait=False)  # the rest of a batch larger than what the pipe took
            except OSError as exc:
                self._gone(f"the writer process is gone ({type(exc).__name__})")
            self._hand_ons += 1
            return
        queue, batch = self._queue, list[Pending]()
        while queue and len(batch) < self._ship_at:
            head = queue[0]
            if isinstance(head, _Marker):
                break  # a flush waits there: the writer thread sends what is before it
            batch.append(head)
            queue.popleft()
        if batch:
            self._ship(batch, wait=False)
            self._hand_ons += 1

    # -- what the writer thread does differently ----------------------------------------------

    def _run(self) -> None:
        self._start_child()  # at once, so that the caller's thread can hand on from the start
        super()._run()

    def _drain(self, limit: int | None = None) -> None:
        """Send what the caller's thread left: deferred captures, those before a flush marker, and
        a trickle too small to ship, and no more than is queued now.

        Otherwise this thread stays out of the way: while the caller's thread is busy, this one can
        wait 100-200 ms for the interpreter lock (measured with several auditors in one process),
        and if it held the send lock meanwhile, the caller could not hand on and every capture of
        that stretch waited for it: a flush took 15-25 ms instead of 2-3. What arrives while it
        sends, the caller hands on; a flush sets the wake-up again, so its marker is not left
        behind."""
        if self._caller_keeps_up():
            return
        with self._send_lock:
            if self._broken is not None and self.fallback_reason is None:
                self._fall_back(self._broken)
            deferred = self._deferred
            if deferred:
                self._store_batch([deferred.popleft() for _ in range(len(deferred))])
            super()._drain(None if self._stopping else len(self._queue))

    def _caller_keeps_up(self) -> bool:
        """True when this thread has nothing to do that the caller's thread will not do: no flush
        marker, nothing deferred, no child gone, not stopping, and either the caller handed on since
        this thread last looked (what is left then goes with the caller's next batch, or at this
        thread's next round if the caller has gone quiet) or nothing is waiting to be sent."""
        seen, self._hand_ons_seen = self._hand_ons_seen, self._hand_ons
        if self._stopping or self._deferred or self._broken is not None or self.fallback_reason is not None:
            return False
        queued = list(self._queue)  # one C call: another thread's append cannot interleave
        if any(type(item) is _Marker for item in queued):
            return False
        if seen != self._hand_ons:
            return True
        return not queued and not (self._outbox is not None and self._outbox.unsent)

    def _store_batch(self, items: list[Pending]) -> None:
        if not items:
            return
        if self.fallback_reason is None and (self._child is not None or self._start_child()):
            self._ship(items, wait=True)
        else:
            super()._store_batch(items)

    def _settle(self) -> None:
        outbox = self._outbox
        if outbox is not None and self.fallback_reason is None:
            try:
                outbox.push(wait=True)
            except OSError as exc:
                self._fall_back(f"the writer process is gone ({type(exc).__name__})")
        while self.fallback_reason is None and self._acked < self._seq:
            if not self._read_answers(POLL_S) and self._child is not None and self._child.poll() is not None:
                self._fall_back(f"the writer process exited with status {self._child.returncode}")

    def _maybe_replay(self) -> None:
        if self.fallback_reason is not None or self.mode == "sync":
            super()._maybe_replay()

    def _maintain(self) -> None:
        if self.fallback_reason is not None:
            super()._maintain()

    def stats(self) -> WriterStats:
        own = super().stats()
        with self._count_lock:
            child = dict(self._child_counts)
        with self._ship_lock:
            waiting = sum(len(items) for _, items in self._unacked) + len(self._deferred)
        fields = {name: getattr(own, name) + child[name] for name in _COUNTERS}
        return WriterStats(
            **fields,
            queue_depth=own.queue_depth + waiting,
            spool_files=own.spool_files,
            unmatched=own.unmatched,  # counted on the caller's side, never in the child
        )

    def close(self, timeout: float | None = None) -> None:
        super().close(timeout)  # flushes through the child, stops the writer thread
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
        if not sys.executable:
            raise RuntimeError("sys.executable is not known")
        to_child_r, to_child_w = _pipe()
        from_child_r, from_child_w = _pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            child = subprocess.Popen(  # noqa: S603 - our own interpreter, our own module
                [
                    sys.executable,
                    "-c",
                    "import sys; from llmaudit.pipeline.process_runner import child_main; "
                    "sys.exit(child_main(int(sys.argv[1]), int(sys.argv[2])))",
                    str(to_child_r),
                    str(from_child_w),
                ],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except BaseException:
            os.close(to_child_w)
            os.close(from_child_r)
            raise
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        outbox, inbox = Frames(to_child_w), Frames(from_child_r)
        try:
            config = {
                "storage_url": self.storage_url,
                "spool_dir": str(self.spool.directory),
                "batch_size": self.batch_size,
                "processors": self.processors,
                "retry_delays_s": self.retry_delays_s,
                "probe_interval_s": self.probe_interval_s,
                "chain_key": self.chain_key,
            }
            outbox.send(pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL))
            _await_ready(child, inbox)
        except BaseException:
            outbox.close()
            inbox.close()
            with contextlib.suppress(OSError):
                child.kill()
            child.wait()
            raise
        self._child, self._outbox, self._inbox = child, outbox, inbox
        self._table = _dispatch_table()

    def _ship(self, items: list[Pending], *, wait: bool) -> None:
        """Send *items* as one batch; without *wait* (the caller's thread), what does not fit in
        the pipe now is left for the writer thread to write."""
        outbox, table = self._outbox, self._table
        if outbox is None or table is None or self.fallback_reason is not None:
            self._defer(items) if not wait else super()._store_batch(items)
            return
        try:
            blob = _dumps(items, table)
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
        self._wake.set()

    def _shippable(self, items: list[Pending]) -> tuple[list[Pending], bytes]:
        """The items that pickle (a capture that does not is built here and its record sent
        instead); one that cannot be sent at all is stored by this process at once."""
        kept: list[Pending] = []
        here: list[Pending] = []
        for item in items:
            if self._pickles(item):
                kept.append(item)
                continue
            try:
                record = item if isinstance(item, AuditRecord) else item.to_record()
            except Exception:  # noqa: BLE001 - building it here again reports the failure
                here.append(item)
                continue
            if record is None:
                self._count("submitted")
                self._count("dropped")
            elif self._pickles(record):
                kept.append(record)
            else:
                here.append(record)
        if here:
            super()._store_batch(here)
        return kept, (_dumps(kept, self._table) if kept and self._table is not None else b"")

    def _pickles(self, item: object) -> bool:
        assert self._table is not None
        try:
            _dumps(item, self._table)
        except Exception:  # noqa: BLE001 - whatever pickle raises, the item goes another way
            return False
        return True

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
                    with self._count_lock:
                        self._child_counts = detail
        except (OSError, EOFError) as exc:
            if not at_end:
                self._gone(f"the writer process is gone ({type(exc).__name__})")
            return True
        return bool(answers)

    def _gone(self, reason: str) -> None:
        """The child is gone: fall back now on the writer thread; on the caller's thread, leave
        that (building and storing what the child had not confirmed) to the writer thread."""
        if threading.current_thread() is self._thread:
            self._fall_back(reason)
        else:
            self._broken = reason
            self._wake.set()

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
        with self._count_lock:
            for name in _COUNTERS:  # what the child confirmed stays counted
                self._counts[name] += self._child_counts[name]
            self._child_counts = dict.fromkeys(_COUNTERS, 0)
        for items in batches:
            super()._store_batch(items)

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
            self._store_now(items, durable=True, spill_only=True)
        self.spool.release()

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


def _await_ready(child: subprocess.Popen[bytes], inbox: Frames) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    answers: list[bytes] = []
    while not answers:
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"it exited with status {child.poll()} before it was ready")
        answers = inbox.receive(POLL_S)
    kind, _, detail = pickle.loads(answers[0])  # noqa: S301 - our own child
    if kind != "ready":
        raise RuntimeError(detail)


# -- the child's side --------------------------------------------------------------------------


def child_main(inbox_fd: int, outbox_fd: int) -> int:
    """The writer process: build and store each batch, answer with the counters, exit at EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.set_blocking(outbox_fd, True)
    inbox, outbox = Frames(inbox_fd), Frames(outbox_fd)

    def answer(kind: str, seq: int, detail: object) -> None:
        outbox.send(pickle.dumps((kind, seq, detail), protocol=pickle.HIGHEST_PROTOCOL))

    try:
        frames: list[bytes] = []
        while not frames:
            frames = inbox.receive(None)
        config = pickle.loads(frames[0])  # noqa: S301 - our own parent
        from ..storage import open_storage  # noqa: PLC0415 - the child's imports, not the parent's

        storage = open_storage(config["storage_url"])
        writer = Writer(
            storage,
            Spool(config["spool_dir"]),
            batch_size=config["batch_size"],
            processors=config["processors"],
            retry_delays_s=config["retry_delays_s"],
            probe_interval_s=config["probe_interval_s"],
            chain_key=config["chain_key"],
        )
    except Exception as exc:  # noqa: BLE001 - told to the parent, which writes by itself
        with contextlib.suppress(OSError):
            answer("failed", 0, f"{type(exc).__name__}: {exc}")
        return 1
    answer("ready", 0, None)
    try:
        _serve(writer, inbox, answer)
    finally:
        writer.spool.release()
        storage.close()
    return 0


def _serve(writer: Writer, inbox: Frames, answer: Callable[[str, int, object], None]) -> None:
    seq = 0
    while True:
        try:
            frames = inbox.receive(POLL_S)
        except EOFError:  # the parent closed the pipe (or died): everything it sent is stored
            return
        if not frames:  # idle: replay a spool, checkpoint
            writer._maybe_replay()
            writer._maintain()
            continue
        items: list[Pending] = []
        for frame in frames:
            items.extend(pickle.loads(frame))  # noqa: S301 - our own parent
        seq += len(frames)
        for start in range(0, len(items), writer.batch_size):
            _store(writer, items[start : start + writer.batch_size])
        writer._maybe_replay()
        with contextlib.suppress(OSError):  # a parent gone: the next read says so
            answer("ack", seq, _counts(writer))


def _counts(writer: Writer) -> dict[str, int]:
    with writer._count_lock:
        return dict(writer._counts)


def _store(writer: Writer, items: list[Pending]) -> None:
    if items:
        try:
            writer._store_now(items, durable=False)
        except Exception as exc:  # noqa: BLE001 - _store_now counts its own failures; never die here
            report("writer process", exc)
