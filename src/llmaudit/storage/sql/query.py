"""The records table's ``WHERE`` clauses: a `Query` as SQL, and `record_kind` and `is_error` as SQL
conditions, shared by the reads (``store``) and the summaries (``summaries``).

Pure statement building over the table: nothing here connects or executes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...record.model import AGGREGATE_SOURCE, FUNCTION_SOURCE
from .._base import Query

__all__ = ["count", "is_error", "kinds", "select_records", "where"]


def where(t: sa.Table, query: Query) -> list[Any]:
    """The conditions of every filter of *query* (limit and order aside)."""
    conditions = []
    for name in ("session_key", "user", "client", "provider", "model", "source"):
        value = getattr(query, name)
        if value is not None:
            conditions.append(t.c[name] == value)
    if query.ids is not None:
        conditions.append(t.c.id.in_(query.ids))
    if query.since is not None:
        conditions.append(t.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(t.c.created_at < query.until)
    if query.errors_only:
        conditions.append(is_error(t))
    if query.is_aggregation is not None:
        conditions.append(t.c.is_aggregation == query.is_aggregation)
    if query.kind is not None:
        by_kind = kinds(t)
        conditions.append(sa.or_(sa.false(), *(by_kind[k] for k in dict.fromkeys(query.kind))))
    return conditions


def select_records(t: sa.Table, query: Query) -> Any:
    """The whole rows matching *query*, ordered by ``(created_at, id)`` and limited as it says."""
    stmt = sa.select(t).where(*where(t, query))
    order = (t.c.created_at, t.c.id) if query.order == "asc" else (t.c.created_at.desc(), t.c.id.desc())
    stmt = stmt.order_by(*order)
    return stmt if query.limit is None else stmt.limit(query.limit)


def is_error(t: sa.Table) -> Any:
    """`is_error` in SQL: an exception was recorded, or the HTTP status is 400 or above."""
    return sa.or_(t.c.error.is_not(None), t.c.status_code >= 400)


def kinds(t: sa.Table) -> dict[str, Any]:
    """`record_kind` in SQL: one condition per kind, true for exactly one of them on every row."""
    source = sa.func.coalesce(t.c.source, "")
    aggregation = sa.or_(t.c.is_aggregation == sa.true(), source == AGGREGATE_SOURCE)
    function = sa.and_(~aggregation, source == FUNCTION_SOURCE)
    call = sa.and_(~aggregation, source != FUNCTION_SOURCE)
    return {"call": call, "function": function, "aggregation": aggregation}


def count(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))
