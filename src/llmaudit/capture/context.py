"""The audit context: who and what the current code is working for, in ContextVars.

Values are immutable (`AuditContext` is frozen); nesting builds a new value and resets with a token,
so the context follows asyncio tasks and never leaks between them. Runs on the caller's hot path:
`snapshot` is one ``ContextVar.get``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["EMPTY", "AuditContext", "capturing", "current", "snapshot"]


EMPTY: Mapping[str, Any] = MappingProxyType({})


class AuditContext(NamedTuple):
    """What every record made inside a session or an audited function inherits.

    A NamedTuple: immutable and cheap to build, since one is made per session entry and per audited
    call on the caller's hot path. ``metadata`` is never mutated; nesting builds a new mapping.
    """

    session_key: str | None = None
    parent_session_key: str | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = EMPTY
    client: str | None = None
    # The enclosing @audited call's record id: an int (its UUIDv7 value, formatted off the hot path by
    # the writer) when set by the decorator, a string when set by hand.
    parent_id: str | int | None = None


current: ContextVar[AuditContext | None] = ContextVar("llmaudit_context", default=None)

#: True while an AuditTransport is inside its inner transport: instrumentation must not record again.
capturing: ContextVar[bool] = ContextVar("llmaudit_capturing", default=False)


def snapshot() -> AuditContext | None:
    """The context in force right now (None outside every session)."""
    return current.get()
