"""Verifying a log with the public key alone: every record against its writer's signed checkpoints,
the store's checkpoints against the witness's copy (`verify_signed`, `SignedReport`).

For each writer, the checkpoints (the store's, merged with the witness's when one is given) must be
signed by a known key, numbered 1, 2, … without a gap, each linked to the one before (``prev``),
their trees never shrinking and each extending the one before; each copy the store keeps must be
the witness's. Then the writer's records, in ``seq`` order, are the leaves: under every signed root
the store's leaves must give that root exactly, so a record edited (with its hash recomputed, even
with the chain key), removed, inserted, moved or cut from the tail is found, and records after a
writer's final checkpoint are inserted ones. Where the chain is unkeyed (the checkpoint says so),
each record's content is also checked against its own hash; a keyed chain's content can be checked
only with the chain key (otherwise the report says it was not).

Read side, no I/O: it is handed records and checkpoints. Holds one small tuple per record.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..record.model import AuditRecord
from .chain import GENESIS, compute_hash
from .checkpoints import Checkpoint, Verifier, checkpoint_problem, same_checkpoint
from .merkle import MerkleTree, leaf_hash_of

__all__ = ["SignedReport", "SignedWriterReport", "verify_signed"]

_SHOWN = 5  # record ids listed per kind of fault in a problem's text


@dataclass(slots=True)
class SignedWriterReport:
    """The verdict on one writer's records against its signed checkpoints."""

    writer_id: str
    records: int = 0
    #: Records under the newest signed root that the store's records still give.
    covered: int = 0
    #: Records after the newest signed checkpoint: not covered by a signature yet.
    uncovered: int = 0
    checkpoints: int = 0  # signed ones (store and witness merged)
    tree_size: int = 0  # the newest signed checkpoint's
    key_ids: list[str] = field(default_factory=list)
    #: Whether each record's content was checked against its hash (False: keyed chain, no key given).
    content_checked: bool = False
    #: Records whose content no longer gives their hash.
    modified: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.problems or self.modified)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "covered": self.covered,
            "uncovered": self.uncovered,
            "checkpoints": self.checkpoints,
            "tree_size": self.tree_size,
            "key_ids": self.key_ids,
            "content_checked": self.content_checked,
            "modified": self.modified,
            "problems": self.problems,
            "warnings": self.warnings,
        }


@dataclass(slots=True)
class SignedReport:
    """The verdict on a whole log: one `SignedWriterReport` per writer."""

    writers: dict[str, SignedWriterReport] = field(default_factory=dict)
    #: Records with no chain fields: in no writer's tree, so covered by no signature.
    unchained: list[str] = field(default_factory=list)
    witness_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.unchained and all(w.ok for w in self.writers.values())

    def totals(self) -> dict[str, int]:
        reports = self.writers.values()
        return {
            "writers": len(self.writers),
            "records": sum(w.records for w in reports) + len(self.unchained),
            "covered": sum(w.covered for w in reports),
            "uncovered": sum(w.uncovered for w in reports),
            "checkpoints": sum(w.checkpoints for w in reports),
            "problems": sum(len(w.problems) + len(w.modified) for w in reports) + len(self.unchained),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            **self.totals(),
            "witness_checked": self.witness_checked,
            "unchained": self.unchained,
            "by_writer": {wid: w.to_json() for wid, w in sorted(self.writers.items())},
        }


class _Leaf(NamedTuple):
    seq: int
    id: str
    hash: str


def verify_signed(
    records: Iterable[AuditRecord],
    checkpoints: Iterable[Checkpoint],
    keys: Mapping[str, Verifier],
    *,
    witness: Iterable[Checkpoint] | None = None,
    chain_key: bytes | None = None,
    pruned: Mapping[str, MerkleTree] | None = None,
) -> SignedReport:
    """Check *records* against the signed *checkpoints* (the store's copy; with a *witness*, the
    witness's copy too) with the public *keys* (by key id); see the module docstring.
    *chain_key*, when given, lets the content of a keyed chain's records be checked too.

    *pruned* holds, per writer whose oldest records were pruned, the tree of those records (its
    size and `MerkleTree.frontier`, which prune keeps): the records after them are checked from
    there. It needs no trust: a wrong frontier gives no signed root."""
    report = SignedReport(witness_checked=witness is not None)
    stored = _by_writer(checkpoints)
    witnessed = _by_writer(witness) if witness is not None else {}
    merged: dict[str, list[Checkpoint]] = {}
    for writer_id in sorted(set(stored) | set(witnessed)):
        out = report.writers.setdefault(writer_id, SignedWriterReport(writer_id))
        merged[writer_id] = _merge(out, stored.get(writer_id, []), witnessed.get(writer_id), keys)
    leaves: dict[str, list[_Leaf]] = defaultdict(list)
    for record in records:
        if record.writer_id is None or record.seq is None or record.hash is None:
            report.unchained.append(record.id)
            continue
        leaves[record.writer_id].append(_Leaf(record.seq, record.id, record.hash))
        signed = merged.get(record.writer_id)
        if signed:
            _check_content(report.writers[record.writer_id], record, signed[-1].chain_keyed, chain_key)
    for writer_id, links in leaves.items():
        out = report.writers.setdefault(writer_id, SignedWriterReport(writer_id))
        out.records = len(links)
    for writer_id, out in report.writers.items():
        signed = merged.get(writer_id, [])
        out.content_checked = bool(signed) and (chain_key is not None or not signed[-1].chain_keyed)
        base = (pruned or {}).get(writer_id)
        _check_tree(out, sorted(leaves.get(writer_id, [])), signed, base)
    return report


def _by_writer(checkpoints: Iterable[Checkpoint]) -> dict[str, list[Checkpoint]]:
    grouped: dict[str, list[Checkpoint]] = defaultdict(list)
    for checkpoint in checkpoints:
        grouped[checkpoint.writer_id].append(checkpoint)
    return grouped


def _merge(
    out: SignedWriterReport,
    stored: list[Checkpoint],
    witnessed: list[Checkpoint] | None,
    keys: Mapping[str, Verifier],
) -> list[Checkpoint]:
    """The writer's signed checkpoints by number, each copy checked: signatures, the store against
    the witness, and the chain of checkpoints itself."""
    if witnessed is not None:
        _compare_copies(out, stored, witnessed)
    signed: dict[int, Checkpoint] = {}
    for checkpoint in [*(witnessed or []), *stored]:  # the witness's copy first
        problem = checkpoint_problem(checkpoint, keys)
        if problem is not None:
            if problem not in out.problems:
                out.problems.append(problem)
            continue
        known = signed.setdefault(checkpoint.n, checkpoint)
        if not same_checkpoint(known, checkpoint):
            out.problems.append(f"checkpoint {checkpoint.n}: two different copies, both signed")
    ordered = [signed[n] for n in sorted(signed)]
    _check_links(out, ordered)
    out.checkpoints = len(ordered)
    out.key_ids = sorted({c.key_id for c in ordered})
    if ordered:
        out.tree_size = ordered[-1].tree_size
    return ordered


def _compare_copies(out: SignedWriterReport, stored: list[Checkpoint], witnessed: list[Checkpoint]) -> None:
    in_store = {c.n: c for c in stored}
    in_witness = {c.n: c for c in witnessed}
    for n, copy in sorted(in_witness.items()):
        mine = in_store.get(n)
        if mine is None:
            out.problems.append(f"checkpoint {n}: missing from the store (the witness has it)")
        elif not same_checkpoint(mine, copy):
            out.problems.append(f"checkpoint {n}: rewritten in the store (the witness copy disagrees)")
    for n in sorted(set(in_store) - set(in_witness)):
        out.warnings.append(f"checkpoint {n}: not in the witness")


def _check_links(out: SignedWriterReport, ordered: Sequence[Checkpoint]) -> None:
    expected_n, prev, size = 1, GENESIS, 0
    for checkpoint in ordered:
        if checkpoint.n != expected_n:
            gap = f"{expected_n}" if checkpoint.n == expected_n + 1 else f"{expected_n}-{checkpoint.n - 1}"
            out.problems.append(f"checkpoint {gap}: missing (checkpoint {checkpoint.n} follows it)")
        elif not hmac.compare_digest(checkpoint.prev, prev):
            out.problems.append(f"checkpoint {checkpoint.n}: does not link to checkpoint {expected_n - 1}")
        if checkpoint.tree_size < size:
            out.problems.append(
                f"checkpoint {checkpoint.n}: its tree ({checkpoint.tree_size}) is smaller than the one "
                f"before ({size}): it does not extend it"
            )
        if checkpoint is not ordered[-1] and checkpoint.final:
            out.problems.append(f"checkpoint {checkpoint.n}: checkpoints after the writer's final one")
        expected_n, prev, size = checkpoint.n + 1, checkpoint.digest(), max(size, checkpoint.tree_size)


def _check_content(out: SignedWriterReport, record: AuditRecord, keyed: bool, key: bytes | None) -> None:
    if keyed and key is None:
        return
    assert record.hash is not None  # a chained record: checked by the caller
    if not hmac.compare_digest(compute_hash(record, key if keyed else None), record.hash):
        out.modified.append(record.id)


def _check_tree(
    out: SignedWriterReport, leaves: list[_Leaf], signed: list[Checkpoint], base: MerkleTree | None
) -> None:
    """The store's leaves under each signed root (from the pruned prefix's tree *base*), and which
    records that covers."""
    if not signed:
        out.uncovered = len(leaves)
        if leaves:
            out.warnings.append(f"no signed checkpoint: {len(leaves)} records not covered")
        return
    by_seq: dict[int, list[_Leaf]] = defaultdict(list)
    for leaf in leaves:
        by_seq[leaf.seq].append(leaf)
    last = signed[-1]
    extra = [leaf.id for leaf in leaves if leaf.seq > last.tree_size]
    out.uncovered = len(extra)
    if last.final and extra:
        out.problems.append(
            f"{len(extra)} records after the writer's final checkpoint {last.n}: inserted {extra[:_SHOWN]}"
        )
    floor = base.size if base is not None else 0
    checked = [c for c in signed if c.tree_size >= floor]
    for checkpoint in signed[: len(signed) - len(checked)]:
        out.warnings.append(f"checkpoint {checkpoint.n} covers pruned records only: not rechecked")
    matched = _matching(checked, by_seq, base)
    good = floor
    for previous, checkpoint in zip([None, *checked], checked, strict=False):
        if not matched[checkpoint.n]:
            out.problems.append(_mismatch(checkpoint, by_seq, floor))
            continue
        good = max(good, checkpoint.tree_size)
        if previous is not None and not matched[previous.n]:
            out.problems.append(
                f"checkpoint {checkpoint.n}'s tree does not extend checkpoint {previous.n}'s "
                "(consistency fails): the signer forked the tree"
            )
    out.covered = sum(1 for seq in by_seq if floor < seq <= good)


def _matching(
    checked: list[Checkpoint], by_seq: Mapping[int, list[_Leaf]], base: MerkleTree | None
) -> dict[int, bool]:
    """Per checkpoint (ascending), whether the store's leaves give its root and chain head: one
    pass over the leaves, stopping at the first position missing or held twice."""
    tree = MerkleTree(base.size, base.frontier) if base is not None else MerkleTree()
    floor, broken = tree.size, False
    matched: dict[int, bool] = {}
    for checkpoint in checked:
        while not broken and tree.size < checkpoint.tree_size:
            here = by_seq.get(tree.size + 1)
            if not here or len(here) > 1:
                broken = True
                break
            tree.append_hash(leaf_hash_of(here[0].hash))
        if broken and tree.size < checkpoint.tree_size:
            matched[checkpoint.n] = False
            continue
        at = by_seq.get(checkpoint.tree_size)
        head_ok = checkpoint.tree_size == floor or (at is not None and at[0].hash == checkpoint.chain_head)
        matched[checkpoint.n] = head_ok and hmac.compare_digest(tree.root(), checkpoint.root)
    return matched


def _mismatch(checkpoint: Checkpoint, by_seq: Mapping[int, list[_Leaf]], floor: int) -> str:
    """Why the store's records do not give *checkpoint*'s root: positions gone or taken twice, or
    (when every position holds one record) records changed, inserted or moved."""
    size = checkpoint.tree_size
    missing = [seq for seq in range(floor + 1, size + 1) if seq not in by_seq]
    doubled = [leaf.id for seq in range(floor + 1, size + 1) for leaf in by_seq.get(seq, [])[1:]]
    where = f"under the signed root of checkpoint {checkpoint.n} (tree size {size})"
    if missing:
        return f"records removed {where}: seq {_ranges(missing)}"
    if doubled:
        return f"records inserted {where}: {doubled[:_SHOWN]}"
    return f"records changed, inserted or reordered {where}: the store's records give another root"


def _ranges(seqs: list[int]) -> str:
    parts, start = [], seqs[0]
    for a, b in zip(seqs, [*seqs[1:], None], strict=True):
        if b != a + 1:
            parts.append(str(start) if start == a else f"{start}-{a}")
            if b is not None:
                start = b
        if len(parts) == _SHOWN:
            parts.append("…")
            break
    return ", ".join(parts)
