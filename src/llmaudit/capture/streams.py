"""Tee streams: forward each response chunk to the caller at once, keep a capped copy, finalise once.

The logic lives in `TeeState` and two mixins; each httpx branch binds them to its own
``SyncByteStream``/``AsyncByteStream`` (``transports/httpx.py``, ``transports/httpx2.py``) because the
clients check the stream's type. Finalisation happens exactly once, on whichever comes first:
exhaustion (complete), ``close()`` before exhaustion (incomplete), an error or cancellation while
reading (incomplete, re-raised unchanged), or garbage collection of a stream nobody closed
(``weakref.finalize``, incomplete). Runs on the caller's thread: only appends and counters here.

In strict mode a record that can be neither stored nor spilled raises `AuditError` from the
finalisation the caller is in: from the iterator's end when the stream is exhausted, or from
``close()``/``aclose()`` when the caller closes it early. It takes the place of an `Exception` in
flight there (a read error, or the caller's own error leaving a ``with`` block; chained to it), but
never of a cancellation or an interrupt; a stream finalised by garbage collection has nobody to
raise to (the loss is logged and counted by the writer).
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .._errors import AuditError
from .._guard import report
from .raw import MAX_CAPTURE_BYTES

__all__ = ["AsyncTeeMixin", "Finish", "SyncTeeMixin", "TeeState", "UsageChunkFilter"]

#: Called once with (chunks, truncated, incomplete, error, first_chunk_perf_counter).
Finish = Callable[[tuple[bytes, ...], bool, bool, BaseException | None, float | None], None]


class UsageChunkFilter:
    """For ``stream_usage=True``: removes the usage-only SSE event that llmaudit asked for.

    The caller did not request ``stream_options.include_usage``, so it must not see the extra final
    chunk (``"choices": []`` with ``usage``). Events pass through whole as soon as their blank line
    arrives; only an event's unfinished tail is held until its next chunk (opt-in: it changes the
    chunking, which is why it is off by default).
    """

    __slots__ = ("_pending", "_tail")

    def __init__(self) -> None:
        # The unfinished event in pieces, joined once when it ends (re-joining it for every chunk was
        # quadratic in its length), and its last 3 bytes, where a separator split by a chunk starts.
        self._pending: list[bytes] = []
        self._tail = b""

    def feed(self, chunk: bytes) -> bytes:
        window = self._tail + chunk  # the held bytes hold no separator: only here can one end
        cut = max(window.rfind(b"\n\n"), window.rfind(b"\r\n\r\n"))
        if cut < 0:
            self._pending.append(chunk)
            self._tail = window[-3:]
            return b""
        data = b"".join([*self._pending, chunk])
        cut += len(data) - len(window)
        end = cut + (4 if data.startswith(b"\r\n\r\n", cut) else 2)
        rest = data[end:]
        self._pending, self._tail = ([rest] if rest else []), rest[-3:]
        return self._drop_usage_events(data[:end])

    def end(self) -> bytes:
        tail = b"".join(self._pending)
        self._pending, self._tail = [], b""
        return self._drop_usage_events(tail) if tail else b""

    @staticmethod
    def _drop_usage_events(block: bytes) -> bytes:
        if b'"choices":[]' not in block.replace(b" ", b""):
            return block
        events = block.replace(b"\r\n", b"\n").split(b"\n\n")
        kept = [e for e in events if not _is_usage_only(e)]
        return b"\n\n".join(kept)


def _is_usage_only(event: bytes) -> bool:
    # an event after three line ends starts with the third: blank lines before a field are no part of it
    compact = event.lstrip(b"\r\n").replace(b" ", b"")
    return compact.startswith(b"data:{") and b'"choices":[]' in compact and b'"usage":{' in compact


class TeeState:
    """The copy of the body and the once-only finalisation, shared by the sync and async tees."""

    __slots__ = (
        "__weakref__",
        "chunks",
        "done",
        "failure",
        "filter",
        "finish",
        "first_chunk_at",
        "iterated",
        "size",
        "truncated",
    )

    def __init__(self, finish: Finish, usage_filter: UsageChunkFilter | None = None) -> None:
        self.finish = finish
        self.filter = usage_filter
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False
        self.done = False
        self.first_chunk_at: float | None = None
        self.iterated = False  # a second iteration (a client retrying a consumed stream) passes through
        self.failure: AuditError | None = None  # strict mode: raised where the caller can receive it

    def keep(self, chunk: bytes) -> None:
        if self.first_chunk_at is None:
            self.first_chunk_at = time.perf_counter()
        if self.size + len(chunk) <= MAX_CAPTURE_BYTES:
            self.chunks.append(chunk)
            self.size += len(chunk)
        else:
            self.truncated = True

    def end(self, *, incomplete: bool, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.finish(tuple(self.chunks), self.truncated, incomplete, error, self.first_chunk_at)
        except AuditError as exc:
            self.failure = exc  # strict mode: see `raise_failure`
        except Exception as exc:  # noqa: BLE001 - never into the caller: logged and counted
            report("stream finalisation", exc)

    def raise_failure(self, instead_of: BaseException | None = None, *, closing: bool = False) -> None:
        """Raise the strict-mode `AuditError` of `end`, once, in place of *instead_of* (the exception
        in flight) when that is an `Exception`. While the iterator is being closed (``GeneratorExit``)
        it waits for ``close()``, which the clients call next and which raises it then (*closing*).
        Over a cancellation or an interrupt it is dropped (the writer logged and counted the loss),
        so that those always propagate unchanged."""
        failure = self.failure
        if failure is None or (isinstance(instead_of, GeneratorExit) and not closing):
            return
        self.failure = None
        if instead_of is None or isinstance(instead_of, (Exception, GeneratorExit)):
            raise failure


def _collected(state: TeeState) -> None:
    state.end(incomplete=True)


class SyncTeeMixin:
    """``__iter__``/``close`` for a branch's SyncByteStream subclass."""

    def __init__(self, inner: Any, finish: Finish, usage_filter: UsageChunkFilter | None = None) -> None:
        self._inner = inner
        self._state = TeeState(finish, usage_filter)
        weakref.finalize(self, _collected, self._state)

    def __iter__(self) -> Iterator[bytes]:
        state = self._state
        if state.iterated:
            yield from self._inner
            return
        state.iterated = True
        try:
            for chunk in self._inner:
                state.keep(chunk)
                if state.filter is None:
                    yield chunk
                elif out := state.filter.feed(chunk):
                    yield out
            if state.filter is not None and (tail := state.filter.end()):
                yield tail
        except BaseException as exc:  # record and re-raise unchanged, cancellation included
            state.end(incomplete=True, error=None if isinstance(exc, GeneratorExit) else exc)
            state.raise_failure(instead_of=exc)
            raise
        state.end(incomplete=False)
        state.raise_failure()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._state.end(incomplete=True)
        self._state.raise_failure(instead_of=sys.exc_info()[1], closing=True)


class AsyncTeeMixin:
    """``__aiter__``/``aclose`` for a branch's AsyncByteStream subclass."""

    def __init__(self, inner: Any, finish: Finish, usage_filter: UsageChunkFilter | None = None) -> None:
        self._inner = inner
        self._state = TeeState(finish, usage_filter)
        weakref.finalize(self, _collected, self._state)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        state = self._state
        if state.iterated:
            async for chunk in self._inner:
                yield chunk
            return
        state.iterated = True
        try:
            async for chunk in self._inner:
                state.keep(chunk)
                if state.filter is None:
                    yield chunk
                elif out := state.filter.feed(chunk):
                    yield out
            if state.filter is not None and (tail := state.filter.end()):
                yield tail
        except BaseException as exc:  # CancelledError included: record it as incomplete, re-raise
            state.end(incomplete=True, error=None if isinstance(exc, GeneratorExit) else exc)
            state.raise_failure(instead_of=exc)
            raise
        state.end(incomplete=False)
        state.raise_failure()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._state.end(incomplete=True)
        self._state.raise_failure(instead_of=sys.exc_info()[1], closing=True)
