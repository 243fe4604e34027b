"""The ``httpx`` binding: typed transports (the tee streams come from `bind_branch`)."""

from __future__ import annotations

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("llmaudit.transports.httpx needs the 'httpx' package: pip install httpx") from exc

from ..capture.branches import bind_branch
from ..capture.transport import AsyncAuditTransport as _AsyncCore
from ..capture.transport import AuditTransport as _SyncCore

__all__ = ["AsyncAuditTransport", "AuditTransport"]

BRANCH = bind_branch(httpx)


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
