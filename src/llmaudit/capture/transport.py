"""The transport core, shared by both httpx branches and by the sync and async shells.

`AuditTransport` wraps any transport of the httpx family. On the caller's hot path it decides whether
the endpoint is an LLM call (a cheap host/path match, see `llmaudit.providers.match`), forwards the
request unchanged, and wraps the response stream in a tee; when the stream finishes it hands a
`RawCapture` to the auditor. It never parses, redacts or touches the disk, and nothing it does can
change what the caller receives: every failure of its own is guarded, and the inner transport's
exceptions are re-raised unchanged.

A transport the user attached (`AuditTransport`, `AsyncAuditTransport`; not `instrument()`, which
sees all of the process's traffic) counts the requests it passes through unrecorded
(``stats().unmatched``) and logs one warning per host naming the settings that would record them.

The branch (``httpx`` or ``httpx2``) is taken from the inner transport, or from the first request when
no inner transport is given; ``transports/httpx.py`` and ``transports/httpx2.py`` bind the branch's
stream classes and give typed subclasses. A way in that is not an httpx transport (aiohttp's client
middleware, ``transports/aiohttp.py``) drives the same core through a `Shell`: it says how its request
is kept and how its response is teed; the decision, the failure handling and the capture are shared.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

import orjson

from .. import providers
from .._errors import AuditError, ConfigurationError
from .._guard import report
from ..pipeline.auditor import Auditor, NullAuditor, get_auditor
from ..record.codec import exact
from ..record.model import STRING_LIMITS
from .branches import Branch, _branch_named, _check_inner, bind_branch, branch_of
from .context import capturing, snapshot
from .coverage import active_routes, unmatched
from .raw import RawCapture, flat_headers, flat_request
from .session import _check_auditor
from .streams import UsageChunkFilter

__all__ = ["AsyncAuditTransport", "AuditTransport", "Branch", "Shell", "bind_branch"]

CaptureMode = Literal["llm", "all"]
_T = TypeVar("_T", bound="AuditTransport")
_AT = TypeVar("_AT", bound="AsyncAuditTransport")


class Shell(Protocol):
    """A way in other than an httpx transport (``transports/aiohttp.py``), driven by the same core."""

    def snapshot(self, request: Any) -> Any:
        """What the record keeps of *request* (a `FlatRequest` or `UnreadRequest`), taken on the hot
        path once the core has decided to record it: references and packing only, no parsing."""

    def tee(self, call: _Call, response: Any) -> None:
        """Wrap *response*'s body so that ``call.finish`` runs once when it ends (see `streams`)."""


@dataclass(slots=True)
class _Call:
    """One exchange in flight: everything the finish callback needs to build a RawCapture."""

    transport: _TransportCore
    request: Any
    started_at: float
    started: float
    status_code: int | None = None
    headers: Any = None
    usage_filter: UsageChunkFilter | None = None
    notes: tuple[str, ...] = ()
    decoded: bool = False
    request_stream: Any = None
    matched: tuple[str, str | None] | None = None

    def finish(
        self,
        chunks: tuple[bytes, ...],
        truncated: bool,
        incomplete: bool,
        error: BaseException | None,
        first_chunk_at: float | None,
    ) -> None:
        now = time.perf_counter()
        ttft = None if first_chunk_at is None else (first_chunk_at - self.started) * 1000
        self.transport._submit(
            RawCapture(
                request=flat_request(self.request),
                started_at=self.started_at,
                status_code=self.status_code,
                response_headers=None if self.headers is None else flat_headers(self.headers),
                chunks=chunks,
                truncated=truncated,
                incomplete=incomplete,
                error=_describe(error),
                duration_ms=(now - self.started) * 1000,
                ttft_ms=ttft,
                context=snapshot(),
                client=self.transport.client,
                capture=self.transport.capture,
                notes=self.notes,
                decoded=self.decoded,
                request_stream=self.request_stream,
                matched=self.matched,
            )
        )


def _ask_for_stream_usage(call: _Call) -> None:
    """stream_usage=True: add ``stream_options.include_usage`` to a streamed chat request that lacks it,
    and filter the extra usage-only chunk out of what the caller receives (opt-in: parses on the hot path)."""
    request = call.request
    body = orjson.loads(request.content)
    if not isinstance(body, dict) or body.get("stream") is not True:
        return
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or options.get("include_usage") is not None:
        return
    body["stream_options"] = {**options, "include_usage": True}
    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
    call.request = type(request)(
        request.method,
        request.url,
        headers=headers,
        content=exact(orjson.dumps(body)),  # kept until the record is written: not orjson's buffer
        extensions=request.extensions,
    )
    call.usage_filter = UsageChunkFilter()
    call.notes = ("stream_options.include_usage added by llmaudit (stream_usage=True)",)


def _already_read(call: _Call, response: Any) -> tuple[bytes, ...]:
    """The raw bytes of a response its transport already read: its in-memory byte stream replays
    them still encoded; failing that, the decoded content (and the record is told so)."""
    try:
        return tuple(response.stream)
    except Exception:  # noqa: BLE001 - a one-shot stream: fall back to what the client decoded
        call.decoded = True
        return (response.content,)


def _describe(error: BaseException | None) -> str | None:
    if error is None:
        return None
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class _TransportCore:
    """Decisions shared by every shell: whether to record, and how to wrap a response."""

    _default_branch: str | None = None
    #: The method an inner transport must have (None: the core has no inner, as in instrument()).
    _inner_method: str | None = None
    #: whether requests passed through unrecorded are counted and warned about: for the transports
    #: a user attaches, not for instrument()'s, which sees every request of the process
    _reports_unmatched = False

    def __init__(
        self,
        inner: Any = None,
        *,
        transport: Any = None,
        auditor: Auditor | NullAuditor | None = None,
        client: str | None = None,
        capture: CaptureMode = "llm",
        stream_usage: bool = False,
    ) -> None:
        if transport is not None:
            if inner is not None:
                raise ConfigurationError("give the transport to wrap once: inner= or transport=, not both")
            inner = transport
        _check_options(auditor, client, capture, stream_usage)
        self._inner = inner
        self._branch: Branch | None = None
        if isinstance(inner, _TransportCore):  # wrapping another audit transport: same branch
            self._branch = inner._branch
        elif inner is not None:
            self._branch = branch_of(inner)
        elif self._default_branch is not None:
            self._branch = _branch_named(self._default_branch)
        if inner is not None and self._inner_method is not None:
            _check_inner(inner, self._inner_method, type(self).__name__)
        self._auditor = auditor
        self.client = client
        self.capture: CaptureMode = capture
        self.stream_usage = stream_usage

    def _bind(self, request: Any) -> Branch:
        if self._branch is None:
            self._branch = branch_of(request)
        return self._branch

    def _begin(self, request: Any, shell: Shell | None = None) -> _Call | None:
        """The hot-path decision: None means "pass through unrecorded"."""
        if capturing.get():
            return None  # an outer AuditTransport (or instrument()) already records this call
        url = request.url
        routes = active_routes(self._auditor)
        matched = providers.match(
            url.host,
            url.path,
            request.headers,
            method=request.method,
            routes=routes,
            port=url.port if routes else None,
        )
        if matched is None and self.capture == "llm":
            if self._reports_unmatched:
                unmatched(self._auditor if self._auditor is not None else get_auditor(), url)
            return None
        decided = None if matched is None else (matched[0].name, matched[1])
        if shell is not None:  # stream_usage rewrites an httpx request: the shells send theirs as is
            started_at, started = time.time(), time.perf_counter()
            return _Call(self, shell.snapshot(request), started_at, started, matched=decided)
        call = _Call(self, request, time.time(), time.perf_counter(), request_stream=request.stream)
        call.matched = decided
        if self.stream_usage and decided is not None and decided[1] == "chat.completions":
            _ask_for_stream_usage(call)
        return call

    def _submit(self, raw: RawCapture) -> None:
        auditor = self._auditor if self._auditor is not None else get_auditor()
        auditor.submit(raw)

    def _failed(self, call: _Call, exc: BaseException) -> None:
        """Record a call the inner transport failed. In strict mode an unrecordable failure raises
        `AuditError` instead (chained to *exc*), except over a cancellation or an interrupt, which
        always propagate unchanged (the loss is logged by the writer)."""
        try:
            call.finish((), False, True, exc, None)
        except AuditError:
            if isinstance(exc, Exception):
                raise
        except Exception as internal:  # noqa: BLE001 - never into the caller: logged and counted
            report("transport error capture", internal)

    def _tee(self, call: _Call, request: Any, response: Any, *, is_async: bool) -> None:
        try:
            call.status_code, call.headers = response.status_code, response.headers
            if response.is_closed:  # an in-memory transport (MockTransport, ASGI…) already read it
                call.finish(_already_read(call, response), False, False, None, None)
                return
            branch = self._bind(request)
            tee = branch.AsyncTee if is_async else branch.SyncTee
            response.stream = tee(response.stream, call.finish, call.usage_filter)
        except AuditError:
            raise  # strict mode: the record of this response can be neither stored nor spilled
        except Exception as exc:  # noqa: BLE001 - never into the caller: logged and counted
            report("transport response capture", exc)

    def record_sync(self, send: Callable[[Any], Any], request: Any) -> Any:
        """Send *request* with *send*, recording the exchange when it is an LLM call."""
        call = _start(self, request)
        if call is None:
            return send(request)
        token = capturing.set(True)
        try:
            response = send(call.request)
        except BaseException as exc:
            self._failed(call, exc)
            raise
        finally:
            capturing.reset(token)
        self._tee(call, request, response, is_async=False)
        return response

    async def record_async(
        self, send: Callable[[Any], Awaitable[Any]], request: Any, shell: Shell | None = None
    ) -> Any:
        """The async twin of `record_sync`: only the awaits differ. With a *shell*, *request* is that
        way in's own (sent unchanged) and the shell keeps it and tees the response."""
        call = _start(self, request, shell)
        if call is None:
            return await send(request)
        token = capturing.set(True)
        try:
            response = await send(call.request if shell is None else request)
        except BaseException as exc:
            self._failed(call, exc)
            raise
        finally:
            capturing.reset(token)
        if shell is None:
            self._tee(call, request, response, is_async=True)
        else:
            self._tee_shell(shell, call, response)
        return response

    def _tee_shell(self, shell: Shell, call: _Call, response: Any) -> None:
        try:
            shell.tee(call, response)
        except AuditError:
            raise  # strict mode, as in `_tee`
        except Exception as exc:  # noqa: BLE001 - never into the caller: logged and counted
            report("transport response capture", exc)


def _start(transport: _TransportCore, request: Any, shell: Shell | None = None) -> _Call | None:
    try:
        return transport._begin(request, shell)
    except Exception as exc:  # logged and counted; the call goes on unrecorded...
        report("transport request capture", exc)
        if (transport._auditor or get_auditor()).settings.strict:  # ...unless it must not
            raise AuditError(
                f"llmaudit strict mode stopped this call: recording could not start ({_describe(exc)})"
            ) from exc
    return None


def _check_options(auditor: object, client: object, capture: object, stream_usage: object) -> None:
    """The keywords shared by the transports and `instrument`, checked when they are given."""
    _check_auditor(auditor)
    if client is not None and not isinstance(client, str):
        raise ConfigurationError(f"invalid client={client!r}: expected the client's name as a str, or None")
    if isinstance(client, str) and len(client) > STRING_LIMITS["client"]:
        raise ConfigurationError(f"client= is longer than {STRING_LIMITS['client']} characters")
    if capture not in ("llm", "all"):
        raise ConfigurationError(f"invalid capture={capture!r}: expected 'llm' or 'all'")
    if not isinstance(stream_usage, bool):
        raise ConfigurationError(f"invalid stream_usage={stream_usage!r}: expected True or False")


class AuditTransport(_TransportCore):
    """A sync transport that records LLM calls; wraps *inner* (default: the branch's HTTPTransport).

    Works with either httpx branch; for type checkers use ``llmaudit.transports.httpx.AuditTransport``
    or ``llmaudit.transports.httpx2.AuditTransport``.

    Args:
        inner: the transport to wrap (any transport of httpx or httpx2).
        transport: the same as *inner*, under the name httpx-style wrapping transports use
            (``hishel.CacheTransport(transport=...)``, ``httpx_retries.RetryTransport(transport=...)``).
        auditor: where records go (default: the process-wide default auditor).
        client: the application's name for this LLM client (default: the provider's name).
        capture: ``"llm"`` records known LLM endpoints and passes everything else through;
            ``"all"`` records every request, raw.
        stream_usage: for OpenAI-style streamed chat requests that did not ask for usage, add
            ``stream_options.include_usage`` and hide the extra usage-only chunk from the caller, so
            streamed records carry token counts. Off by default: it changes the bytes on the wire.

    A request it does not record (no provider matched, ``capture="llm"``) is counted in
    ``llmaudit.stats().unmatched`` and the first one to each host logs a warning on logger
    ``llmaudit``; ``configure(providers=...)`` maps a host to its provider.
    """

    _inner_method = "handle_request"
    _reports_unmatched = True

    def _inner_for(self, request: Any) -> Any:
        if self._inner is None:
            self._inner = self._bind(request).default_transport()
        return self._inner

    def handle_request(self, request: Any) -> Any:
        return self.record_sync(self._inner_for(request).handle_request, request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()

    def __enter__(self: _T) -> _T:
        if self._inner is not None:
            self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        if self._inner is not None:
            self._inner.__exit__(exc_type, exc, tb)


class AsyncAuditTransport(_TransportCore):
    """The async twin of `AuditTransport` (default inner: the branch's AsyncHTTPTransport); the same
    arguments, ``inner=`` or ``transport=`` being an async transport."""

    _inner_method = "handle_async_request"

    _reports_unmatched = True

    def _inner_for(self, request: Any) -> Any:
        if self._inner is None:
            self._inner = self._bind(request).default_async_transport()
        return self._inner

    async def handle_async_request(self, request: Any) -> Any:
        return await self.record_async(self._inner_for(request).handle_async_request, request)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    async def __aenter__(self: _AT) -> _AT:
        if self._inner is not None:
            await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        if self._inner is not None:
            await self._inner.__aexit__(exc_type, exc, tb)
