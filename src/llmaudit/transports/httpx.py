"""The ``httpx`` binding: tee streams that are real ``httpx`` byte streams, and typed transports."""

from __future__ import annotations

from typing import Any

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("llmaudit.transports.httpx needs the 'httpx' package: pip install httpx") from exc

from .._streams import AsyncTeeMixin, SyncTeeMixin
from .._transport import AsyncAuditTransport as _AsyncCore
from .._transport import AuditTransport as _SyncCore

__all__ = ["AsyncAuditTransport", "AuditTransport"]


class SyncTee(SyncTeeMixin, httpx.SyncByteStream):
    """A httpx.SyncByteStream that tees into the capture."""


class AsyncTee(AsyncTeeMixin, httpx.AsyncByteStream):
    """A httpx.AsyncByteStream that tees into the capture."""


class _Binding:
    name = "httpx"
    SyncTee = SyncTee
    AsyncTee = AsyncTee

    def default_transport(self) -> Any:
        return httpx.HTTPTransport()

    def default_async_transport(self) -> Any:
        return httpx.AsyncHTTPTransport()


BRANCH = _Binding()


class AuditTransport(_SyncCore, httpx.BaseTransport):
    """`llmaudit.AuditTransport` typed as a ``httpx.BaseTransport``."""

    _default_branch = "httpx"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = super().handle_request(request)
        return response


class AsyncAuditTransport(_AsyncCore, httpx.AsyncBaseTransport):
    """`llmaudit.AsyncAuditTransport` typed as a ``httpx.AsyncBaseTransport``."""

    _default_branch = "httpx"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await super().handle_async_request(request)
        return response
