"""The rows a summary answers with: one session (`SessionSummary`), one group of the read side's
``stats`` (`StatsRow`), and the two rules every backend applies so that all of them give identical
answers: the nearest-rank percentile and cost rounding.

They live with the storage contract because a backend that pushes summaries down into its database
(``SummaryStore``) returns them; the read side's Python fallback (``read.summary.Tally``) builds the
same rows. Plain data and pure functions: this module must not read or write a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from ..record.codec import format_timestamp

__all__ = ["SessionSummary", "StatsRow", "fields_json", "nearest_rank", "round_cost"]


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


def nearest_rank(sorted_values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile: the value at rank ceil(fraction * n) (1-based)."""
    if not sorted_values:
        return None
    rank = -(-round(fraction * 100) * len(sorted_values) // 100)  # exact ceil, no float rounding
    return sorted_values[max(rank, 1) - 1]


def round_cost(value: float | None) -> float | None:
    """Costs summed in different orders differ in the last bits: every backend rounds to 1e-9 $."""
    return None if value is None else round(value, 9)
