"""The writer process's wire: length-prefixed pickles over a pair of non-blocking pipes.

`Frames` sends and receives whole messages over one end of a pipe (a message goes out in one
``writev``; a read takes every message that has arrived); `dumps` pickles captures with a dispatch
table that keeps them small (a URL by its text, a session's read-only metadata as a dict). Used by
both ends (`process_runner` in the application, `process_child` in the writer process).

`sort_shippable` sorts a batch that did not pickle. Knows nothing of storage or the writer (of a
capture, only that it has ``to_record``); never pickles anything it was not handed, and only ever
unpickles what our own parent or child sent.
"""

from __future__ import annotations

import collections
import contextlib
import copyreg
import io
import itertools
import os
import pickle
import select
import struct
import sys
import types
from typing import Any

__all__ = ["PIPE_BYTES", "POLL_S", "Frames", "dispatch_table", "dumps", "make_pipe", "sort_shippable"]

#: How often a waiting parent checks that the child is alive, and an idle child replays its spool.
POLL_S = 0.5

# -- pickling ------------------------------------------------------------------------------------


def _proxy(mapping: dict[str, Any]) -> types.MappingProxyType[str, Any]:
    return types.MappingProxyType(mapping)


def _reduce_proxy(mapping: types.MappingProxyType[str, Any]) -> tuple[Any, ...]:
    return (_proxy, (dict(mapping),))


def dispatch_table() -> dict[Any, Any]:
    table: dict[Any, Any] = dict(copyreg.dispatch_table)
    table[types.MappingProxyType] = _reduce_proxy  # a session's metadata
    for name in ("httpx", "httpx2"):
        module = sys.modules.get(name)
        url_type = getattr(module, "URL", None)
        if url_type is not None:  # by its text: pickling the parsed parts costs 3x as much
            table[url_type] = lambda url, _t=url_type: (_t, (str(url),))
    return table


def dumps(value: object, table: dict[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = table
    pickler.dump(value)
    return buffer.getvalue()


def _pickles(item: object, table: dict[Any, Any]) -> bool:
    try:
        dumps(item, table)
    except Exception:  # noqa: BLE001 - whatever pickle raises, the item goes another way
        return False
    return True


def sort_shippable(items: list[Any], table: dict[Any, Any]) -> tuple[list[Any], list[Any], int]:
    """*items* sorted for a batch that did not pickle: those that pickle (a capture that does not is
    built here and its record taken instead), those that cannot travel at all (the capture, or its
    record), and how many built to no record (a processor-less ``to_record`` returning None).
    Never raises: a capture that fails to build is among those that cannot travel."""
    kept: list[Any] = []
    here: list[Any] = []
    dropped = 0
    for item in items:
        if _pickles(item, table):
            kept.append(item)
            continue
        try:
            record = item.to_record() if hasattr(item, "to_record") else item
        except Exception:  # noqa: BLE001 - building it again where it is stored reports the failure
            here.append(item)
            continue
        if record is None:
            dropped += 1
        elif _pickles(record, table):
            kept.append(record)
        else:
            here.append(record)
    return kept, here, dropped


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


def make_pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        import fcntl  # noqa: PLC0415 - POSIX only

        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, PIPE_BYTES)
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    return read_fd, write_fd
