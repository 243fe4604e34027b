"""The writer process itself: ``python -c "...child_main(...)"`` started by `process_runner`.

It opens the storage from its URL, builds a `Writer` of its own (its own hash chain, the same spool
directory; its thread is never started: each batch is built, sealed and stored as it arrives), and
answers each batch with its counters. It ignores SIGINT and SIGTERM (the parent's exit flush goes
through it) and exits when its input pipe ends (the parent closed it, or died).

Never raises out of `child_main` (a failure to start is told to the parent, which then writes by
itself) and never writes anywhere but the configured storage and spool.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable

from .._guard import report
from .frames import POLL_S, Frames
from .pipeline import Pending
from .spool import Spool
from .writer import Writer

__all__ = ["child_main"]


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
            writer.sink.maybe_replay()
            writer.sink.maintain()
            continue
        items: list[Pending] = []
        for frame in frames:
            items.extend(pickle.loads(frame))  # noqa: S301 - our own parent
        seq += len(frames)
        for start in range(0, len(items), writer.batch_size):
            _store(writer, items[start : start + writer.batch_size])
        writer.sink.maybe_replay()
        with contextlib.suppress(OSError):  # a parent gone: the next read says so
            answer("ack", seq, _counts(writer))


def _counts(writer: Writer) -> dict[str, int]:
    return writer.counts.snapshot()


def _store(writer: Writer, items: list[Pending]) -> None:
    if items:
        try:
            writer._store_now(items, durable=False)
        except Exception as exc:  # noqa: BLE001 - _store_now counts its own failures; never die here
            report("writer process", exc)
