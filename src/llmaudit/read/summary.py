"""The read side's summaries: one session, one group of `Reader.stats`, what kind of record each record
is, and the rules (kinds, percentile, cost rounding) that make every backend give identical answers.

Counts are honest: ``calls``, tokens, cost, latency and errors count LLM calls, each once. A record is
one of three kinds (`record_kind`): an aggregation (``is_aggregation``, or ``source="aggregate"``), a
function record (``@audited``, ``source="decorator"``), or else an LLM call, whatever its source label
(the transport's, or a record submitted by hand). Function and aggregation records are counted as
``functions`` and ``aggregations``, never as calls. The SQL backend computes the same rule in SQL
(``storage/sql/summaries.py``); this module is the reference. The row types and the percentile and
rounding rules are the storage contract's (``storage._summary``), re-exported here. It must not read
or write a store: the reader hands it records.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from ..record.model import KINDS, AuditRecord, Kind, record_kind
from ..storage._base import is_error
from ..storage._summary import SessionSummary, StatsRow, fields_json, nearest_rank, round_cost

__all__ = ["SessionSummary", "StatsRow", "Tally", "fields_json", "nearest_rank", "round_cost"]


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
