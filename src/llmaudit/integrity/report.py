"""What verifying a log found: `VerifyReport`, one `WriterReport` per writer, and each erased
record's `Erasure` with its status. Made by `verify.verify_chain`; read by `Reader.verify` and
``llmaudit verify`` (text and JSON).

Plain frozen values and their JSON form: no checking (that is `verify`), no I/O, and nothing from the
stages above the integrity stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ERASURE_STATUSES", "Erasure", "VerifyReport", "WriterReport"]


#: What verify can say of an erasure: its tombstones' MACs check with the key ("authenticated"); no
#: key was given, so nothing tells it from a hand-made one ("unchecked"); a key was given and a MAC is
#: wrong ("forged") or absent ("unauthenticated": made without the key, or by hand); a record sealed
#: with hashing version 1 whose tombstones have no MAC, as every erasure before MACs ("legacy": not
#: authenticated, and not counted as forged, or every erasure made before would fail verify).
ERASURE_STATUSES = ("authenticated", "unchecked", "forged", "unauthenticated", "legacy")


@dataclass(frozen=True, slots=True)
class Erasure:
    """One erased record as verify found it: which fields, when (the latest tombstone time, as
    stored: untrusted text unless *status* is "authenticated"), and whether that is proven."""

    id: str
    at: str | None
    fields: tuple[str, ...]
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "fields": list(self.fields), "status": self.status}


@dataclass(slots=True)
class WriterReport:
    """The verdict on one writer's chain (ids of the records at fault, at most a few of each kind)."""

    writer_id: str
    verified: int = 0
    erased: int = 0
    modified: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    inserted: list[str] = field(default_factory=list)
    missing: list[tuple[int, int]] = field(default_factory=list)  # inclusive seq ranges
    head_seq: int | None = None
    base_seq: int | None = None
    #: What is wrong with the writer's head, checkpoint or registry entry (each fails verify).
    problems: list[str] = field(default_factory=list)
    #: What could not be checked and why (a head written before heads had MACs): reported, not failed.
    warnings: list[str] = field(default_factory=list)
    #: Every erased record among the verified ones, in ``seq`` order.
    erasures: list[Erasure] = field(default_factory=list)

    @property
    def missing_count(self) -> int:
        return sum(end - start + 1 for start, end in self.missing)

    @property
    def forged_erasures(self) -> list[str]:
        """Records whose erasure a keyed verify could not authenticate (forged or without a MAC)."""
        return [e.id for e in self.erasures if e.status in ("forged", "unauthenticated")]

    @property
    def ok(self) -> bool:
        return not (
            self.modified
            or self.reordered
            or self.inserted
            or self.missing
            or self.problems
            or self.forged_erasures
        )


@dataclass(slots=True)
class VerifyReport:
    """The verdict on a whole log: one `WriterReport` per writer, plus records with no chain."""

    writers: dict[str, WriterReport] = field(default_factory=dict)
    unchained: list[str] = field(default_factory=list)
    #: Writers the registry lists that left neither records nor a head behind.
    vanished: list[str] = field(default_factory=list)
    #: Breaks in the registry itself (an entry changed, removed from the middle, or out of order).
    registry_errors: list[str] = field(default_factory=list)
    #: Each explicit sealing of legacy records (`Reader.seal_legacy`), as the registry recorded it.
    seals: list[dict[str, Any]] = field(default_factory=list)
    #: False when the store keeps no registry (a third-party backend): writers could vanish unseen.
    registry_checked: bool = False
    #: Whether a chain key was given: without one, nothing proves who erased what, or when.
    keyed: bool = False

    @property
    def erasures(self) -> list[Erasure]:
        """Every erased record of every writer."""
        return [e for _, w in sorted(self.writers.items()) for e in w.erasures]

    @property
    def ok(self) -> bool:
        return (
            not self.unchained
            and not self.vanished
            and not self.registry_errors
            and all(w.ok for w in self.writers.values())
        )

    def totals(self) -> dict[str, int]:
        reports = self.writers.values()
        return {
            "writers": len(self.writers),
            "verified": sum(w.verified for w in reports),
            "erased": sum(w.erased for w in reports),
            "modified": sum(len(w.modified) for w in reports),
            "reordered": sum(len(w.reordered) for w in reports),
            "inserted": sum(len(w.inserted) for w in reports) + len(self.unchained),
            "missing": sum(w.missing_count for w in reports),
            "forged_erasures": sum(len(w.forged_erasures) for w in reports),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            **self.totals(),
            "unchained": self.unchained,
            "vanished": self.vanished,
            "registry_errors": self.registry_errors,
            "registry_checked": self.registry_checked,
            "seals": self.seals,
            "keyed": self.keyed,
            "erasures": [e.to_json() for e in self.erasures],
            "by_writer": {
                wid: {
                    "ok": w.ok,
                    "verified": w.verified,
                    "erased": w.erased,
                    "modified": w.modified,
                    "reordered": w.reordered,
                    "inserted": w.inserted,
                    "missing": [list(r) for r in w.missing],
                    "head_seq": w.head_seq,
                    "base_seq": w.base_seq,
                    "problems": w.problems,
                    "warnings": w.warnings,
                    "forged_erasures": w.forged_erasures,
                }
                for wid, w in sorted(self.writers.items())
            },
        }
