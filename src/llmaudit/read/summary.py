"""The read side's summaries: one session, one group of `Reader.stats`, what kind of record each record
is, and the rules (kinds, percentile, cost rounding) that make every backend give identical answers.

Counts are honest: ``calls``, tokens, cost, latency and errors count LLM calls, each once. A record is
one of three kinds (`record_kind`): an aggregation (``is_aggregation``, or ``source="aggregate"``), a
function record (``@audited``, ``source="decorator"``), or else an LLM call, whatever its source label
(the transport's, or a record submitted by hand). Function and aggregation records are counted as
``functions`` and ``aggregations``, never as calls. The SQL backend computes the same rule in SQL
(``storage/sql/summaries.py``); this module is the reference.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from ..record.codec import format_timestamp
from ..record.model import KINDS, AuditRecord, Kind, record_kind
from ..storage._base import is_error

__all__ = ["SessionSummary", "StatsRow", "Tally", "fields_json", "nearest_rank", "round_cost"]


def _json_value(value: Any) -> Any:
    return format_timestamp(value) if isinstance(value, datetime) else value


def fields_json(summary: Any) -> dict[str, Any]:
    """A summary dataclass as JSON: every field under its Python name (timestamps formatted), so
    that ``--json`` output and the Python API name each value the same way."""
    return {f.name: _json_value(getattr(summary, f.name)) for f in fields(summary)}


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session: its key, a user (the smallest, when several), its time span and totals.

    ``calls`` counts the session's LLM calls; ``input_tokens``, ``output_tokens``, ``cost_usd`` and
    ``errors`` (an exception, or an HTTP status of 400 or more) are theirs. ``functions`` counts its
    ``@audited`` function records and ``aggregations`` its aggregation records, neither of which is a
    call. ``first`` and ``last`` span its calls and function records (its aggregation records when
    it has nothing else)."""

    session_key: str
    user: str | None
    first: datetime
    last: datetime
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    errors: int
    functions: int = 0
    aggregations: int = 0

    @property
    def key(self) -> str:
        """The session key (the name this field had before it took `AuditRecord`'s name)."""
        return self.session_key

    def to_json(self) -> dict[str, Any]:
        """Every field under its own name (``session_key``, ``first``, …, ``errors``)."""
        return fields_json(self)


@dataclass(frozen=True, slots=True)
class StatsRow:
    """Totals of one group of the records `Reader.stats` summarised: of LLM calls by default, then
    ``calls`` counts them and ``functions`` is 0; of function records with ``kind="function"``, then
    ``functions`` counts them and ``calls`` is 0. ``aggregations`` counts the aggregation records
    summed in (only when asked for). Tokens, cost, latency and errors are those of the row's
    records. Latency percentiles are nearest-rank over the records with a duration.

    ``group`` maps each ``by=`` name to this group's value (``{"client": "bot", "model": "gpt-4o"}``).
    """

    group: dict[str, Any]
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    p50_ms: float | None
    p95_ms: float | None
    errors: int
    functions: int = 0
    aggregations: int = 0

    @property
    def error_rate(self) -> float:
        """Failed records per call (per function record in a row of function records)."""
        measured = self.calls + self.functions
        return self.errors / measured if measured else 0.0

    @property
    def records(self) -> int:
        """Every record the row counts, whatever its kind."""
        return self.calls + self.functions + self.aggregations

    def to_json(self) -> dict[str, Any]:
        """Every field under its own name (``group`` as an object), plus ``error_rate``."""
        return {**fields_json(self), "group": dict(self.group), "error_rate": round(self.error_rate, 6)}


_CALLS: tuple[Kind, ...] = ("call",)


class Tally:
    """The running totals of a group of records: what sessions, stats and aggregation add up.

    Each record is counted by its kind; only records of the *measured* kinds add their tokens, cost,
    duration, errors and model (by default LLM calls alone)."""

    __slots__ = (
        "_cost",
        "_measured",
        "counts",
        "durations",
        "errors",
        "first",
        "input_tokens",
        "last",
        "models",
        "output_tokens",
        "spans",
        "users",
    )

    def __init__(self, measured: Collection[Kind] = _CALLS) -> None:
        self._measured = frozenset(measured)
        self.counts: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        self.errors = self.input_tokens = self.output_tokens = 0
        self._cost: float | None = None
        self.durations: list[float] = []
        self.models: set[str] = set()
        self.users: set[str] = set()
        # (first, last) of the calls and functions, and of the aggregation records
        self.spans: dict[bool, tuple[datetime, datetime]] = {}
        self.first: datetime | None = None
        self.last: datetime | None = None

    def add(self, r: AuditRecord) -> None:
        kind = record_kind(r)
        self.counts[kind] += 1
        if r.user is not None:
            self.users.add(r.user)
        self._span(kind == "aggregation", r.created_at)
        if kind not in self._measured:
            return
        self.errors += is_error(r)
        self.input_tokens += r.input_tokens or 0
        self.output_tokens += r.output_tokens or 0
        if r.cost_usd is not None:
            self._cost = (self._cost or 0.0) + r.cost_usd
        if r.duration_ms is not None:
            self.durations.append(r.duration_ms)
        if r.model:
            self.models.add(r.model)

    def _span(self, aggregation: bool, at: datetime) -> None:
        known = self.spans.get(aggregation)
        self.spans[aggregation] = (at, at) if known is None else (min(known[0], at), max(known[1], at))
        self.first, self.last = self.spans.get(False) or self.spans[True]

    @property
    def calls(self) -> int:
        return self.counts["call"]

    @property
    def functions(self) -> int:
        return self.counts["function"]

    @property
    def aggregations(self) -> int:
        return self.counts["aggregation"]

    @property
    def cost(self) -> float | None:
        return round_cost(self._cost)

    @property
    def user(self) -> str | None:
        """The smallest user (what SQL's MIN gives), so every backend names the same one."""
        return min(self.users) if self.users else None

    @property
    def only_user(self) -> str | None:
        return next(iter(self.users)) if len(self.users) == 1 else None


def nearest_rank(sorted_values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile: the value at rank ceil(fraction * n) (1-based)."""
    if not sorted_values:
        return None
    rank = -(-round(fraction * 100) * len(sorted_values) // 100)  # exact ceil, no float rounding
    return sorted_values[max(rank, 1) - 1]


def round_cost(value: float | None) -> float | None:
    """Costs summed in different orders differ in the last bits: every backend rounds to 1e-9 $."""
    return None if value is None else round(value, 9)
