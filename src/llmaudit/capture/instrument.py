"""instrument() / uninstrument(): record LLM calls of every httpx, httpx2 and aiohttp client, no code change.

Patches, with wrapt and only on request, the public ``handle_request`` of ``HTTPTransport`` and
``handle_async_request`` of ``AsyncHTTPTransport`` in each installed branch: every client that sends
over the network goes through them. When aiohttp (3.12 or later) is installed, ``ClientSession.__init__``
is wrapped too, as OpenTelemetry's aiohttp instrumentation does, so that every session created
afterwards gets the audit middleware (`llmaudit.transports.aiohttp`); the clients that send through
aiohttp from inside an httpx client (litellm's async path, the openai and anthropic SDKs' aiohttp
backends) are recorded there, once. Idempotent (a second call only updates the options), fully
reversible (a session created meanwhile keeps a middleware that passes through), and never records a
call twice: inside an `AuditTransport` or an explicit middleware the patched layer sees the
``capturing`` flag and passes through.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

import wrapt

from ..pipeline.auditor import Auditor, NullAuditor
from .transport import CaptureMode, _TransportCore

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_TARGETS = (("HTTPTransport", "handle_request", False), ("AsyncHTTPTransport", "handle_async_request", True))
_originals: dict[tuple[type, str], Any] = {}
_recorder: _TransportCore | None = None
_lock = threading.Lock()
logger = logging.getLogger("llmaudit")


def _split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    if args:
        return args[0], args[1:], kwargs
    rest = dict(kwargs)
    return rest.pop("request"), (), rest


def _sync_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    recorder = _recorder
    if recorder is None:
        return wrapped(*args, **kwargs)
    request, rest, options = _split(args, kwargs)
    return recorder.record_sync(lambda sent: wrapped(sent, *rest, **options), request)


async def _async_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    recorder = _recorder
    if recorder is None:
        return await wrapped(*args, **kwargs)
    request, rest, options = _split(args, kwargs)
    return await recorder.record_async(lambda sent: wrapped(sent, *rest, **options), request)


def _aiohttp_way() -> Any:
    """``llmaudit.transports.aiohttp`` when aiohttp is installed and has client middlewares."""
    try:
        way = importlib.import_module("llmaudit.transports.aiohttp")
    except ImportError:
        return None
    if not way._supports_middlewares():
        logger.warning(
            "llmaudit.instrument(): aiohttp %s has no client middlewares (3.12+): "
            "its sessions are not recorded",
            getattr(way.aiohttp, "__version__", "?"),
        )
        return None
    return way


def _session_init_wrapper(middleware: Any) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # innermost, like the httpx transport: it sees what the session's own middlewares send
        kwargs["middlewares"] = (*(kwargs.get("middlewares") or ()), middleware)
        return wrapped(*args, **kwargs)

    return wrapper


def _installed_branches() -> list[Any]:
    modules = []
    for name in ("httpx", "httpx2"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return modules


def instrument(
    *,
    auditor: Auditor | NullAuditor | None = None,
    client: str | None = None,
    capture: CaptureMode = "llm",
    stream_usage: bool = False,
) -> None:
    """Record LLM calls made by every httpx/httpx2 client, and every aiohttp session created from now
    on, in this process.

    Args:
        auditor: where records go (default: the process-wide default auditor).
        client: the client name to put on records (default: the provider's name).
        capture: ``"llm"`` records known LLM endpoints only; ``"all"`` records every request.
        stream_usage: ask OpenAI-style streams for usage (see `AuditTransport`); off by default.
            httpx clients only: aiohttp requests are sent as the caller built them.
    """
    global _recorder  # noqa: PLW0603 - instrumentation is process-wide by nature
    with _lock:
        _recorder = _TransportCore(auditor=auditor, client=client, capture=capture, stream_usage=stream_usage)
        for module in _installed_branches():
            for class_name, method, is_async in _TARGETS:
                cls = getattr(module, class_name)
                if (cls, method) in _originals:
                    continue
                _originals[(cls, method)] = cls.__dict__[method]
                wrapper = _async_wrapper if is_async else _sync_wrapper
                wrapt.wrap_function_wrapper(cls, method, wrapper)
        way = _aiohttp_way()
        session = None if way is None else way.aiohttp.ClientSession
        if session is not None and (session, "__init__") not in _originals:
            _originals[(session, "__init__")] = session.__dict__["__init__"]
            middleware = way._InstrumentMiddleware(lambda: _recorder)
            wrapt.wrap_function_wrapper(session, "__init__", _session_init_wrapper(middleware))


def uninstrument() -> None:
    """Undo `instrument`: the patched methods are restored exactly."""
    global _recorder  # noqa: PLW0603
    with _lock:
        for (cls, method), original in _originals.items():
            setattr(cls, method, original)
        _originals.clear()
        _recorder = None


def is_instrumented() -> bool:
    """Whether `instrument` is in effect."""
    return _recorder is not None
