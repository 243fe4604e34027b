"""The read side's summaries: one session, one group of `Reader.stats`, and the rules (percentile,
cost rounding) that make every backend give identical answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from ._codec import format_timestamp

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

    ``calls`` counts every record of the session except aggregation records (decorator records
    included); ``errors`` those with an exception or an HTTP status of 400 or more."""

    session_key: str
    user: str | None
    first: datetime
    last: datetime
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    errors: int

    @property
    def key(self) -> str:
        """The session key (the name this field had before it took `AuditRecord`'s name)."""
        return self.session_key

    def to_json(self) -> dict[str, Any]:
        """Every field under its own name (``session_key``, ``first``, …, ``errors``)."""
        return fields_json(self)


@dataclass(frozen=True, slots=True)
class StatsRow:
    """Totals of one group. Latency percentiles are nearest-rank over the records with a duration.

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

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

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
