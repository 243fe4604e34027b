"""The audit context: who and what the current code is working for, in ContextVars.

Values are immutable (`AuditContext` is frozen); nesting builds a new value and resets with a token,
so the context follows asyncio tasks and never leaks between them. Runs on the caller's hot path:
`snapshot` is one ``ContextVar.get``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AuditContext", "capturing", "current", "snapshot"]


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What every record made inside a session or an audited function inherits."""

    session_key: str | None = None
    parent_session_key: str | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    client: str | None = None
    parent_id: str | None = None


current: ContextVar[AuditContext | None] = ContextVar("llmaudit_context", default=None)

#: True while an AuditTransport is inside its inner transport: instrumentation must not record again.
capturing: ContextVar[bool] = ContextVar("llmaudit_capturing", default=False)


def snapshot() -> AuditContext | None:
    """The context in force right now (None outside every session)."""
    return current.get()
