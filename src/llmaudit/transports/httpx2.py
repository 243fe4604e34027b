"""The ``httpx2`` binding: tee streams that are real ``httpx2`` byte streams, and typed transports."""

from __future__ import annotations

from typing import Any

try:
    import httpx2
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("llmaudit.transports.httpx2 needs the 'httpx2' package: pip install httpx2") from exc

from .._streams import AsyncTeeMixin, SyncTeeMixin
from .._transport import AsyncAuditTransport as _AsyncCore
from .._transport import AuditTransport as _SyncCore

__all__ = ["AsyncAuditTransport", "AuditTransport"]


class SyncTee(SyncTeeMixin, httpx2.SyncByteStream):
    """A httpx2.SyncByteStream that tees into the capture."""


class AsyncTee(AsyncTeeMixin, httpx2.AsyncByteStream):
    """A httpx2.AsyncByteStream that tees into the capture."""


class _Binding:
    name = "httpx2"
    SyncTee = SyncTee
    AsyncTee = AsyncTee

    def default_transport(self) -> Any:
        return httpx2.HTTPTransport()

    def default_async_transport(self) -> Any:
        return httpx2.AsyncHTTPTransport()


BRANCH = _Binding()


class AuditTransport(_SyncCore, httpx2.BaseTransport):
    """`llmaudit.AuditTransport` typed as a ``httpx2.BaseTransport``."""

    _default_branch = "httpx2"

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response: httpx2.Response = super().handle_request(request)
        return response


class AsyncAuditTransport(_AsyncCore, httpx2.AsyncBaseTransport):
    """`llmaudit.AsyncAuditTransport` typed as a ``httpx2.AsyncBaseTransport``."""

    _default_branch = "httpx2"

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response: httpx2.Response = await super().handle_async_request(request)
        return response
