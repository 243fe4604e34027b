"""`Reader.sessions` and `Reader.stats` pushed down into the database: one ``GROUP BY`` each, latency
percentiles included (nearest rank: PostgreSQL's ``percentile_disc``; on SQLite the
``llmaudit_percentiles`` aggregate of ``sqlite``; elsewhere window functions with integer ranks).

Each function runs on a connection it is given and yields the read side's summary rows exactly as the
reader's Python fallback would compute them. It must not write, and must not translate driver errors
(the store does, around the connection).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ...record.model import KINDS
from .._base import Query
from .._summary import SessionSummary, StatsRow, round_cost
from .query import count, is_error, kinds, where
from .schema import UTCDateTime
from .sqlite import split_percentiles

__all__ = ["session_summaries", "stats_rows"]


def session_summaries(
    conn: sa.Connection, t: sa.Table, query: Query, limit: int | None
) -> Iterator[SessionSummary]:
    """`Reader.sessions` in one GROUP BY: each kind counted apart, totals of the LLM calls."""
    by_kind = kinds(t)
    call, aggregation = by_kind["call"], by_kind["aggregation"]
    # the span of the calls and function records; of the aggregation records when that is all
    first = sa.func.coalesce(
        sa.func.min(sa.case((~aggregation, t.c.created_at))), sa.func.min(t.c.created_at)
    )
    last = sa.func.coalesce(sa.func.max(sa.case((~aggregation, t.c.created_at))), sa.func.max(t.c.created_at))
    stmt = (
        sa.select(
            t.c.session_key,
            sa.func.min(t.c.user),
            first,
            last,
            *(count(by_kind[k]) for k in KINDS),
            sa.func.sum(sa.case((call, t.c.input_tokens))),
            sa.func.sum(sa.case((call, t.c.output_tokens))),
            sa.func.sum(sa.case((call, t.c.cost_usd))),
            count(sa.and_(call, is_error(t))),
        )
        .where(t.c.session_key.is_not(None), *where(t, query))
        .group_by(t.c.session_key)
        .order_by(last.desc(), t.c.session_key.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    utc = UTCDateTime()
    for row in conn.execute(stmt):
        calls, functions, aggregations = (int(n or 0) for n in row[4:7])
        yield SessionSummary(
            row[0],
            row[1],
            _as_utc(utc, row[2], conn.dialect),
            _as_utc(utc, row[3], conn.dialect),
            calls,
            int(row[7] or 0),
            int(row[8] or 0),
            round_cost(None if row[9] is None else float(row[9])),
            int(row[10] or 0),
            functions=functions,
            aggregations=aggregations,
        )


def stats_rows(conn: sa.Connection, t: sa.Table, by: tuple[str, ...], query: Query) -> Iterator[StatsRow]:
    """`Reader.stats` in one GROUP BY computed by the database, latency percentiles included."""
    dialect = conn.dialect.name
    keys = [_group_column(t, name, dialect).label(f"g{i}") for i, name in enumerate(by)]
    conditions = where(t, query)
    extra: list[Any]
    if dialect == "postgresql":
        extra = [
            sa.func.percentile_disc(0.5).within_group(t.c.duration_ms),
            sa.func.percentile_disc(0.95).within_group(t.c.duration_ms),
        ]
    elif dialect == "sqlite":
        extra = [sa.func.llmaudit_percentiles(t.c.duration_ms)]
    else:
        extra = []
    by_kind = kinds(t)
    totals = sa.select(
        *keys,
        *(count(by_kind[k]) for k in KINDS),
        sa.func.sum(t.c.input_tokens),
        sa.func.sum(t.c.output_tokens),
        sa.func.sum(t.c.cost_usd),
        sa.func.sum(sa.case((is_error(t), 1), else_=0)),
        *extra,
    ).where(*conditions)
    if keys:
        totals = totals.group_by(*keys)
    windowed = _windowed_percentiles(conn, t, by, conditions) if not extra else {}
    for row in conn.execute(totals):
        key = tuple(row[: len(by)])
        calls, functions, aggregations, inp, out, cost, errors = row[len(by) : len(by) + 7]
        if dialect == "postgresql":
            p50, p95 = row[-2], row[-1]
        elif dialect == "sqlite":
            p50, p95 = split_percentiles(row[-1])
        else:
            p50, p95 = windowed.get(key, (None, None))
        yield StatsRow(
            dict(zip(by, key, strict=True)),
            int(calls or 0),
            int(inp or 0),
            int(out or 0),
            round_cost(None if cost is None else float(cost)),
            None if p50 is None else float(p50),
            None if p95 is None else float(p95),
            int(errors or 0),
            functions=int(functions or 0),
            aggregations=int(aggregations or 0),
        )


def _windowed_percentiles(
    conn: sa.Connection, t: sa.Table, by: tuple[str, ...], conditions: list[Any]
) -> dict[tuple[Any, ...], tuple[float | None, float | None]]:
    dialect = conn.dialect.name
    keys = [_group_column(t, name, dialect).label(f"g{i}") for i, name in enumerate(by)]
    parts = [_group_column(t, name, dialect) for name in by]
    ranked = (
        sa.select(
            *keys,
            t.c.duration_ms,
            sa.func.row_number().over(partition_by=parts, order_by=t.c.duration_ms).label("rn"),
            sa.func.count(t.c.duration_ms).over(partition_by=parts).label("n"),
        )
        .where(t.c.duration_ms.is_not(None), *conditions)
        .subquery()
    )
    rn, n = ranked.c.rn, ranked.c.n
    p50, p95 = (n + 1) // 2, (n * 95 + 99) // 100
    picks = sa.select(*[ranked.c[f"g{i}"] for i in range(len(by))], ranked.c.duration_ms, rn, p50, p95).where(
        sa.or_(rn == p50, rn == p95)
    )
    found: dict[tuple[Any, ...], list[float | None]] = defaultdict(lambda: [None, None])
    for row in conn.execute(picks):
        key = tuple(row[: len(by)])
        value, rank, at50, at95 = float(row[len(by)]), row[-3], row[-2], row[-1]
        if rank == at50:
            found[key][0] = value
        if rank == at95:
            found[key][1] = value
    return {key: (v[0], v[1]) for key, v in found.items()}


def _group_column(t: sa.Table, name: str, dialect: str) -> Any:
    if name != "day":
        return t.c[name]
    created = t.c.created_at
    if dialect == "sqlite":
        return sa.func.substr(created, 1, 10)
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", created), "YYYY-MM-DD")
    return sa.func.date_format(created, "%Y-%m-%d")


def _as_utc(kind: UTCDateTime, value: Any, dialect: sa.Dialect) -> datetime:
    """A timestamp from an aggregate: SQLite hands back text, the others a datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    result = kind.process_result_value(value, dialect)
    assert result is not None
    return result
