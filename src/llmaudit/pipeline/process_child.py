"""The writer process: starting it (`spawn`, from the application) and its main (`child_main`).

`spawn` starts ``sys.executable -c "...child_main(...)"`` (never ``fork``: the application's threads
and locks stay where they are) with a pair of pipes, sends it its configuration and waits until it is
ready; `check_processors` refuses, at configure time, processors that could not travel to it.

The writer process opens the storage from its URL, builds a `Writer` of its own (its own hash chain,
the same spool directory; its thread is never started: each batch is built, sealed and stored as it
arrives), and answers each batch with its counters. It ignores SIGINT and SIGTERM (the parent's exit
flush goes through it) and exits when its input pipe ends (the parent closed it, or died).

Never raises out of `child_main` (a failure to start is told to the parent, which then writes by
itself) and never writes anywhere but the configured storage and spool.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import ConfigurationError
from .._guard import report
from .frames import POLL_S, Frames, make_pipe
from .pipeline import Pending, Processor
from .spool import Spool
from .writer import Writer

__all__ = ["check_processors", "child_main", "spawn"]

#: How long the writer thread waits for the child to start (python, llmaudit and the storage driver).
START_TIMEOUT_S = 60.0


# -- the application's side ----------------------------------------------------------------------


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


def spawn(config: dict[str, Any]) -> tuple[subprocess.Popen[bytes], Frames, Frames]:
    """Start the writer process with *config*; returns it, the pipe to it and the pipe from it.

    Raises:
        Exception: it could not start, or exited (or said it failed) before it was ready.
    """
    if not sys.executable:
        raise RuntimeError("sys.executable is not known")
    to_child_r, to_child_w = make_pipe()
    from_child_r, from_child_w = make_pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter, our own module
            [
                sys.executable,
                "-c",
                "import sys; from llmaudit.pipeline.process_child import child_main; "
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
        outbox.send(pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL))
        _await_ready(child, inbox)
    except BaseException:
        outbox.close()
        inbox.close()
        with contextlib.suppress(OSError):
            child.kill()
        child.wait()
        raise
    return child, outbox, inbox


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


# -- the writer process ------------------------------------------------------------------------


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
            checkpointing=config.get("checkpointing"),
        )
    except Exception as exc:  # noqa: BLE001 - told to the parent, which writes by itself
        with contextlib.suppress(OSError):
            answer("failed", 0, f"{type(exc).__name__}: {exc}")
        return 1
    answer("ready", 0, None)
    try:
        _serve(writer, inbox, answer)
    finally:
        writer.close_checkpoints()
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
            writer.tick_checkpoints()
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
