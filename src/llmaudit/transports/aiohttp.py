"""The aiohttp way in: a client middleware that records the LLM calls of an ``aiohttp.ClientSession``.

aiohttp has no transport seam like httpx's; its client middleware (aiohttp >= 3.12) is the nearest: it
sees every request the session sends (each redirect hop and retry), with its final headers and body,
and the response once its headers have arrived. ``TraceConfig`` signals are not enough: they carry the
response body only when it is read whole with ``read()``, never a stream. The middleware drives the
transport core (`llmaudit.capture.transport`) through a `Shell`, so the decision, the failure handling and
the capture are the httpx transport's:

- the request is kept as a `FlatRequest` (method, URL, packed headers, the body aiohttp holds as bytes)
  or an `UnreadRequest` (a body streamed from a file or an iterator: metadata only);
- the response's ``content`` (the ``StreamReader`` every aiohttp read goes through: ``read()``,
  ``json()``, ``iter_chunked()``, ``async for line in content``...) becomes a tee that forwards each
  read unchanged and keeps a capped copy of what the caller read; the response is an instance of a
  subclass of the session's response class that finalises the record on ``release()``/``close()``.

Finalisation happens once (`llmaudit.capture.streams.TeeState`): when a read leaves the body at its end
(complete), when the response is released or closed first (incomplete, unless everything that arrived
was read and the body had ended), when a read raises, cancellation included (incomplete, re-raised
unchanged), or when an unclosed response is garbage collected (incomplete). It runs on the caller's
event loop: references, appends and counters only; parsing is the writer's.

In strict mode the `AuditError` of an unrecordable call reaches the caller from the read that returns
the body's end (``b""``, after every chunk was delivered), from ``read()`` of the whole body (and so
``json()``, ``text()``) instead of the body, or from ``release()``/``close()`` (the end of the
``async with`` block) of a response closed early, after aiohttp has released the connection.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

try:
    import aiohttp
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError(
        "llmaudit.transports.aiohttp needs the 'aiohttp' package: pip install 'llmaudit-sdk[aiohttp]'"
    ) from exc

from .._guard import report
from ..capture.raw import FlatRequest, UnreadRequest, pack_headers
from ..capture.streams import Finish, TeeState
from ..capture.transport import CaptureMode, _Call, _TransportCore
from ..pipeline.auditor import Auditor, NullAuditor

__all__ = ["AuditMiddleware"]

_T = TypeVar("_T")


def _supports_middlewares() -> bool:
    """Whether the installed aiohttp has client middlewares (3.12 and later)."""
    return hasattr(aiohttp, "ClientMiddlewareType")


class AuditMiddleware:
    """An aiohttp client middleware that records LLM calls, like `llmaudit.AsyncAuditTransport`.

    ``aiohttp.ClientSession(middlewares=[AuditMiddleware()])`` records the calls of that session;
    `llmaudit.instrument` adds one to every session created after it. What the caller receives (status,
    headers, body bytes, their timing, exceptions) is unchanged. A request body aiohttp streams (a file,
    an async iterator, multipart) is never read: the record holds its metadata. Unlike the transport's,
    there is no ``stream_usage``: requests are sent exactly as the caller built them.

    Args:
        auditor: where records go (default: the process-wide default auditor).
        client: the application's name for this LLM client (default: the provider's name).
        capture: ``"llm"`` records known LLM endpoints and passes everything else through;
            ``"all"`` records every request, raw.
    """

    def __init__(
        self,
        *,
        auditor: Auditor | NullAuditor | None = None,
        client: str | None = None,
        capture: CaptureMode = "llm",
    ) -> None:
        core = _TransportCore(auditor=auditor, client=client, capture=capture)
        core._reports_unmatched = True  # attached by the user: what it passes through is counted
        self._core: _TransportCore | None = core

    def _recorder(self) -> _TransportCore | None:
        return self._core

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        """Send *request* with the next *handler*, recording the exchange when it is an LLM call.

        Args:
            request: the request aiohttp is about to send (its final URL, headers and body).
            handler: the rest of the chain (the next middleware, or aiohttp's connection and send).

        Returns:
            aiohttp's response, whose body the caller reads as usual.
        """
        core = self._recorder()
        if core is None:
            return await handler(request)
        shell = _Shell(await _body_of(request))
        response: aiohttp.ClientResponse = await core.record_async(
            lambda view: handler(view.request), _View(request), shell
        )
        return response


class _InstrumentMiddleware(AuditMiddleware):
    """The middleware `llmaudit.instrument` adds to new sessions: it records with whatever
    instrument() set up, and passes through once uninstrument() has run."""

    def __init__(self, recorder: Callable[[], _TransportCore | None]) -> None:
        super().__init__()
        self._core = None
        self._current = recorder

    def _recorder(self) -> _TransportCore | None:
        return self._current()


async def _body_of(request: aiohttp.ClientRequest) -> bytes | None:
    """The request body when aiohttp holds it as bytes (json=, data=bytes/str/form); None when it is
    streamed (a file, an iterator, multipart), which llmaudit never reads."""
    body = request.body
    if isinstance(body, bytes):
        return body
    if not isinstance(body, aiohttp.BytesPayload):
        return None
    try:
        return await body.as_bytes()  # the payload's own bytes, not a copy
    except Exception as exc:  # noqa: BLE001 - never into the caller: recorded without the body
        report("aiohttp request capture", exc)
        return None


class _URL:
    """What the core and record building read from a URL (``host``, ``path``, ``query`` as raw bytes,
    ``str()``), over aiohttp's ``yarl.URL`` without re-parsing it."""

    __slots__ = ("_url",)

    def __init__(self, url: Any) -> None:
        self._url = url

    @property
    def host(self) -> str | None:
        host: str | None = self._url.host
        return host

    @property
    def path(self) -> str:
        return str(self._url.path)

    @property
    def port(self) -> int | None:
        """The port when the URL names one (None for the scheme's default), as httpx's ``url.port``."""
        port: int | None = self._url.explicit_port
        return port

    @property
    def query(self) -> bytes:
        return str(self._url.raw_query_string).encode("ascii", "replace")

    def __str__(self) -> str:
        return str(self._url)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_URL, (self._url,))


class _View:
    """An aiohttp request as the core's decision reads a request (``url`` with ``host``, ``path`` and
    ``port``, ``headers``, ``method``, ``stream``), the way an httpx request reads; ``request`` is
    aiohttp's own, which is what is sent."""

    __slots__ = ("headers", "method", "request", "url")
    stream = None  # the request body is the shell's business (`_Shell.snapshot`)

    def __init__(self, request: aiohttp.ClientRequest) -> None:
        self.request = request
        self.url = _URL(request.url)
        self.headers = request.headers
        self.method = request.method


def _header_pairs(headers: Any) -> list[tuple[bytes, bytes]]:
    # aiohttp writes header names and values as UTF-8
    return [
        (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
        for k, v in headers.items()
    ]


class _Shell:
    """One recorded exchange's aiohttp side, for the core (`llmaudit.capture.transport.Shell`)."""

    __slots__ = ("_body",)

    def __init__(self, body: bytes | None) -> None:
        self._body = body

    def snapshot(self, view: _View) -> FlatRequest | UnreadRequest:
        request = view.request
        # the response aiohttp builds for this request finalises the record when released or closed
        request.response_class = _audited(request.response_class)
        headers = pack_headers(_header_pairs(request.headers))
        if self._body is None:
            return UnreadRequest(request.method, view.url, headers)
        return FlatRequest(request.method, view.url, headers, self._body)

    def tee(self, call: _Call, response: aiohttp.ClientResponse) -> None:
        inner = response.content
        call.status_code = response.status
        call.headers = pack_headers(response.raw_headers)
        # aiohttp decompresses into the reader when it auto-decompresses (the caller reads decoded
        # bytes): the record must not decode them again
        call.decoded = getattr(inner, "total_compressed_bytes", None) is not None
        response.content = _TeeReader(inner, call.finish)


class _TeeReader(aiohttp.StreamReader):
    """The response's ``content`` while a call is recorded: each read goes to aiohttp's own reader and
    its result reaches the caller unchanged; what was read is kept (`TeeState`).

    A subclass, so ``isinstance(response.content, aiohttp.StreamReader)`` still holds, but it holds no
    stream state of its own: the base ``__init__`` is not run, every public method is forwarded to the
    inner reader, and any other attribute is read from and written to it (``__getattr__`` is reached
    for the base's unset slots), so code that reaches into the reader sees aiohttp's."""

    __slots__ = ("__weakref__", "_llmaudit_inner", "_llmaudit_state")

    _llmaudit_inner: aiohttp.StreamReader
    _llmaudit_state: TeeState

    def __init__(self, inner: aiohttp.StreamReader, finish: Finish) -> None:
        state = TeeState(finish)
        object.__setattr__(self, "_llmaudit_inner", inner)
        object.__setattr__(self, "_llmaudit_state", state)
        weakref.finalize(self, state.end, incomplete=True)  # an unclosed response nobody reads

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_llmaudit_"):  # not set yet (a copy made without __init__): no recursion
            raise AttributeError(name)
        return getattr(self._llmaudit_inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._llmaudit_inner, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._llmaudit_inner, name)

    def __repr__(self) -> str:
        return repr(self._llmaudit_inner)

    async def _pull(self, pending: Awaitable[_T], data: Callable[[_T], bytes], whole: bool = False) -> _T:
        state = self._llmaudit_state
        if state.failure is not None:  # strict: the read after the last chunk ends the body
            if hasattr(pending, "close"):
                pending.close()
            state.raise_failure()
        try:
            result = await pending
        except BaseException as exc:  # CancelledError included: record it as incomplete, re-raise
            state.end(incomplete=True, error=exc)
            state.raise_failure(instead_of=exc)
            raise
        self._took(data(result), whole)
        return result

    def _took(self, chunk: bytes, whole: bool) -> None:
        state = self._llmaudit_state
        if state.done:
            return
        if chunk:
            state.keep(chunk)
        if self._llmaudit_inner.at_eof():
            state.end(incomplete=False)
            if whole or not chunk:  # raise in place of the body's end, never of a chunk
                state.raise_failure()

    def _closed(self) -> None:
        """The response was released or closed: the end of the exchange if it had not ended."""
        state = self._llmaudit_state
        state.end(incomplete=not self._llmaudit_inner.at_eof())
        state.raise_failure(instead_of=sys.exc_info()[1], closing=True)

    async def read(self, n: int = -1) -> bytes:
        return await self._pull(self._llmaudit_inner.read(n), _same, whole=n < 0)

    async def readany(self) -> bytes:
        return await self._pull(self._llmaudit_inner.readany(), _same)

    async def readchunk(self) -> tuple[bytes, bool]:
        return await self._pull(self._llmaudit_inner.readchunk(), _first)

    async def readexactly(self, n: int) -> bytes:
        return await self._pull(self._llmaudit_inner.readexactly(n), _same)

    async def readline(self, **options: Any) -> bytes:
        return await self._pull(self._llmaudit_inner.readline(**options), _same)

    async def readuntil(self, separator: bytes = b"\n", **options: Any) -> bytes:
        return await self._pull(self._llmaudit_inner.readuntil(separator, **options), _same)

    def read_nowait(self, n: int = -1) -> bytes:
        state = self._llmaudit_state
        if state.failure is not None:
            state.raise_failure()
        try:
            chunk = self._llmaudit_inner.read_nowait(n)
        except BaseException as exc:
            state.end(incomplete=True, error=exc)
            state.raise_failure(instead_of=exc)
            raise
        self._took(chunk, whole=False)
        return chunk


def _same(chunk: bytes) -> bytes:
    return chunk


def _first(result: tuple[bytes, bool]) -> bytes:
    return result[0]


def _forward(name: str) -> Any:
    def forwarded(self: _TeeReader, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._llmaudit_inner, name)(*args, **kwargs)

    forwarded.__name__ = forwarded.__qualname__ = name
    return forwarded


# The reader's other public methods act on aiohttp's reader (its subclasses, such as the empty reader
# of a HEAD response, override them). The iterators (``async for``, ``iter_chunked``, ``iter_any``,
# ``iter_chunks``) are the base class's: they call the reads above.
for _name in (
    "exception",
    "set_exception",
    "on_eof",
    "feed_eof",
    "feed_data",
    "is_eof",
    "at_eof",
    "wait_eof",
    "unread_data",
    "get_read_buffer_limits",
    "set_read_chunk_size",
    "begin_http_chunk_receiving",
    "end_http_chunk_receiving",
):
    if hasattr(aiohttp.StreamReader, _name):
        setattr(_TeeReader, _name, _forward(_name))


class _AuditedResponse(aiohttp.ClientResponse):
    """Mixed into the session's response class for a recorded call: releasing or closing the
    response finalises its record (after aiohttp's own release, which must not be cut short)."""

    def release(self) -> Any:
        result = super().release()
        _response_closed(self)
        return result

    def close(self) -> None:
        super().close()
        _response_closed(self)


def _response_closed(response: aiohttp.ClientResponse) -> None:
    tee = response.content
    if type(tee) is _TeeReader:
        tee._closed()


_audited_classes: dict[type[aiohttp.ClientResponse], type[aiohttp.ClientResponse]] = {}


def _audited(base: type[aiohttp.ClientResponse]) -> type[aiohttp.ClientResponse]:
    """The session's response class with `_AuditedResponse` mixed in (made once per class)."""
    if issubclass(base, _AuditedResponse):
        return base
    if base is aiohttp.ClientResponse:
        return _AuditedResponse
    made = _audited_classes.get(base)
    if made is None:
        made = type(f"Audited{base.__name__}", (_AuditedResponse, base), {"__module__": __name__})
        _audited_classes[base] = made
    return made
