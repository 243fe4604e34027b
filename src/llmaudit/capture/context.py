"""The audit context: who and what the current code is working for, in ContextVars.

Values are immutable (`AuditContext`, a NamedTuple defined in `record.raw` beside the capture that
carries it, and re-exported here); nesting builds a new value and resets with a token, so the context
follows asyncio tasks and never leaks between them. Runs on the caller's hot path: `snapshot` is one
``ContextVar.get``; it must not do I/O or hold mutable values.
"""

from __future__ import annotations

from contextvars import ContextVar

from ..record.raw import EMPTY, AuditContext

__all__ = ["EMPTY", "AuditContext", "capturing", "current", "snapshot"]


current: ContextVar[AuditContext | None] = ContextVar("llmaudit_context", default=None)

#: True while an AuditTransport is inside its inner transport: instrumentation must not record again.
capturing: ContextVar[bool] = ContextVar("llmaudit_capturing", default=False)


def snapshot() -> AuditContext | None:
    """The context in force right now (None outside every session)."""
    return current.get()
