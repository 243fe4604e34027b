"""The ``httpx2`` binding: typed transports (the tee streams come from `bind_branch`)."""

from __future__ import annotations

try:
    import httpx2
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("llmaudit.transports.httpx2 needs the 'httpx2' package: pip install httpx2") from exc

from ..capture.branches import bind_branch
from ..capture.transport import AsyncAuditTransport as _AsyncCore
from ..capture.transport import AuditTransport as _SyncCore

__all__ = ["AsyncAuditTransport", "AuditTransport"]

BRANCH = bind_branch(httpx2)


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
