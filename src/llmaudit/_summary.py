"""The read side's summaries: one session, one group of `Reader.stats`, and the rules (percentile,
cost rounding) that make every backend give identical answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._codec import format_timestamp

__all__ = ["SessionSummary", "StatsRow", "nearest_rank", "round_cost"]


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session: its key, a user (the smallest, when several), its time span and totals.

    ``calls`` counts every record of the session except aggregation records (decorator records
    included); ``errors`` those with an exception or an HTTP status of 400 or more."""

    key: str
    user: str | None
    first: datetime
    last: datetime
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    errors: int

    def to_json(self) -> dict[str, Any]:
        return {
            "session_key": self.key,
            "user": self.user,
            "first": format_timestamp(self.first),
            "last": format_timestamp(self.last),
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "errors": self.errors,
        }


@dataclass(frozen=True, slots=True)
class StatsRow:
    """Totals of one group. Latency percentiles are nearest-rank over the records with a duration."""

    group: dict[str, Any]
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    p50_ms: float | None
    p95_ms: float | None
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **self.group,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "error_rate": round(self.error_rate, 6),
        }


def nearest_rank(sorted_values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile: the value at rank ceil(fraction * n) (1-based)."""
    if not sorted_values:
        return None
    rank = -(-round(fraction * 100) * len(sorted_values) // 100)  # exact ceil, no float rounding
    return sorted_values[max(rank, 1) - 1]


def round_cost(value: float | None) -> float | None:
    """Costs summed in different orders differ in the last bits: every backend rounds to 1e-9 $."""
    return None if value is None else round(value, 9)
