"""The writer's counters: `Counters` (the live, locked tallies) and `WriterStats` (a snapshot).

Every record ends in exactly one counter: written, spilled (then replayed), dropped by a processor,
rejected by the backend, or failed. Does no I/O and imports nothing of llmaudit's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["COUNTERS", "Counters", "WriterStats"]

#: The counters a writer process reports back (``unmatched`` is counted on the caller's side only).
COUNTERS = ("submitted", "written", "spilled", "replayed", "dropped", "rejected", "failed")


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since the writer started (per process: a forked child starts from zero)."""

    submitted: int
    written: int
    spilled: int
    replayed: int
    dropped: int
    rejected: int
    failed: int
    queue_depth: int
    spool_files: int
    #: requests an explicitly attached transport passed through unrecorded (no provider matched)
    unmatched: int = 0


class Counters:
    """The tallies behind `WriterStats`, safe to bump from any thread."""

    __slots__ = ("lock", "values")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values = dict.fromkeys((*COUNTERS, "unmatched"), 0)

    def add(self, key: str, n: int = 1) -> None:
        """Add *n* to counter *key* (nothing when *n* is 0)."""
        if n:
            with self.lock:
                self.values[key] += n

    def add_all(self, counts: dict[str, int]) -> None:
        """Add each of *counts* (a writer process's counters) to these."""
        with self.lock:
            for name, n in counts.items():
                self.values[name] += n

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter, taken at once."""
        with self.lock:
            return dict(self.values)
