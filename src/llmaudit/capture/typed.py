"""What type checkers see as ``llmaudit.AuditTransport`` and ``llmaudit.AsyncAuditTransport``.

At run time the transports (`capture.transport`) work with whichever httpx branch a request comes
from and derive from neither branch's base class. A type checker needs to see them as transports of
both, so that ``httpx.Client(transport=llmaudit.AuditTransport())`` and ``httpx2.Client(...)`` both
type-check: ``llmaudit/__init__.py`` imports these classes under ``TYPE_CHECKING`` only. This module is
never imported at run time and must hold no behaviour (the classes add nothing but their bases).
"""

from __future__ import annotations

import httpx
import httpx2

from .transport import AsyncAuditTransport as _AsyncCore
from .transport import AuditTransport as _SyncCore

__all__ = ["AsyncAuditTransport", "AuditTransport"]


class AuditTransport(_SyncCore, httpx.BaseTransport, httpx2.BaseTransport):
    """`capture.transport.AuditTransport`, typed as a transport of both httpx branches."""


class AsyncAuditTransport(_AsyncCore, httpx.AsyncBaseTransport, httpx2.AsyncBaseTransport):
    """`capture.transport.AsyncAuditTransport`, typed as an async transport of both httpx branches."""
