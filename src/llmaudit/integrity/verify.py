"""Verifying a log: each writer's records checked against their hash chain, heads, checkpoints,
the registry and the erasures' MACs (`verify_chain`; what it finds is a `report.VerifyReport`,
re-exported here).

Runs on the read side (``llmaudit verify``, `Reader.verify`); it only reads the records, heads and
registry that storage hands it: no I/O, no writes, and nothing above the integrity stage. The hashing
it checks, and the meaning of every chain field, live in `chain`.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import orjson

from ..record.model import AuditRecord
from .chain import (
    GENESIS,
    TOMBSTONE_FIELDS,
    ChainState,
    RegistryEntry,
    compute_hash,
    erased_fields,
    erasure_mac,
    hash_version,
    state_mac,
)
from .report import ERASURE_STATUSES, Erasure, VerifyReport, WriterReport

__all__ = [
    "ERASURE_STATUSES",
    "Erasure",
    "VerifyReport",
    "WriterReport",
    "verify_chain",
]


class _Link(NamedTuple):
    id: str
    seq: int
    prev_hash: str
    hash: str
    self_ok: bool
    erasure: Erasure | None
    record: AuditRecord | None  # kept only when its hash fails, to test other positions


def verify_chain(
    records: Iterable[AuditRecord],
    states: Mapping[str, ChainState],
    key: bytes | None = None,
    registry: Sequence[RegistryEntry] | None = None,
    *,
    require_macs: bool = False,
    settled: int | None = None,
) -> VerifyReport:
    """Check every record against its writer's chain, each head and checkpoint against its MAC, and
    the writers and prunes against the *registry* (None: the store keeps none); see the module
    docstring for the verdicts. A head or checkpoint without a MAC (written before they had one) is
    a warning, or with *require_macs* a failure: someone who strips the MACs and the registry makes
    a store look as if written before them, which only the operator knowing better can refuse.

    *settled* is the number of the last registry entry that existed before *states* were read (the
    registry is read before and after them): later entries were appended while verify was reading,
    so a writer registered or pruned then is not blamed for a head or checkpoint not seen yet.

    Holds one small tuple per record (not the payloads' text twice), so a few million records fit.
    """
    report = VerifyReport(keyed=key is not None)
    by_writer: dict[str, list[_Link]] = defaultdict(list)
    for record in records:
        if record.writer_id is None or record.seq is None or record.hash is None or record.prev_hash is None:
            report.unchained.append(record.id)
            continue
        erasure = _erasure(record, key)
        ok = hmac.compare_digest(compute_hash(record, key), record.hash)
        by_writer[record.writer_id].append(
            _Link(record.id, record.seq, record.prev_hash, record.hash, ok, erasure, None if ok else record)
        )
    for writer_id in sorted(set(by_writer) | set(states)):
        report.writers[writer_id] = _verify_writer(writer_id, by_writer.get(writer_id, []), states, key)
    for writer_id, state in states.items():
        _check_state(report.writers[writer_id], state, key)
    if registry is not None:
        _check_registry(report, registry, states, key, settled)
    if require_macs:
        for out in report.writers.values():
            out.problems.extend(out.warnings)
            out.warnings.clear()
    return report


def _check_state(out: WriterReport, state: ChainState, key: bytes | None) -> None:
    """The head's and the checkpoint's MACs (a missing MAC is judged with the registry)."""
    writer = out.writer_id
    if state.head_mac is None:
        out.warnings.append("unauthenticated head (written before heads carried a MAC)")
    elif not hmac.compare_digest(
        state_mac("head", writer, state.head_seq, state.head_hash, key), state.head_mac
    ):
        out.problems.append(f"head (seq {state.head_seq}) does not match its MAC: rewound or forged")
    if state.base_seq is None or state.base_hash is None:
        return
    if state.base_mac is None:
        out.warnings.append("unauthenticated prune checkpoint (written before checkpoints carried a MAC)")
    elif not hmac.compare_digest(
        state_mac("checkpoint", writer, state.base_seq, state.base_hash, key), state.base_mac
    ):
        out.problems.append(f"prune checkpoint (seq {state.base_seq}) does not match its MAC: forged")


def _check_registry(
    report: VerifyReport,
    registry: Sequence[RegistryEntry],
    states: Mapping[str, ChainState],
    key: bytes | None,
    settled: int | None,
) -> None:
    """The registry's own links, then every writer against it."""
    report.registry_checked = True
    limit = settled if settled is not None else max((e.n for e in registry), default=0)
    registered: dict[str, int] = {}  # writer: the number of its entry
    prunes: dict[str, list[RegistryEntry]] = defaultdict(list)
    expected_n, prev = 1, GENESIS
    for entry in sorted(registry, key=lambda e: e.n):
        if entry.n != expected_n or entry.prev != prev:
            report.registry_errors.append(f"entry {entry.n}: entries before it are missing or moved")
        if not hmac.compare_digest(entry.expected_mac(key), entry.mac):
            report.registry_errors.append(
                f"entry {entry.n} ({entry.kind} {entry.writer_id}): MAC does not match"
            )
        expected_n, prev = entry.n + 1, entry.mac
        if entry.kind in ("writer", "seal-legacy"):
            registered.setdefault(entry.writer_id, entry.n)
        if entry.kind == "prune":
            prunes[entry.writer_id].append(entry)
        elif entry.kind == "seal-legacy":
            detail = orjson.loads(entry.detail) if entry.detail else {}
            report.seals.append(
                {"writer_id": entry.writer_id, "at": entry.at, "records": entry.seq, **detail}
            )
    for writer_id, out in report.writers.items():
        n = registered.get(writer_id)
        _check_registered(out, states.get(writer_id), n, limit, prunes.get(writer_id, []))
    report.vanished = sorted(w for w, n in registered.items() if n <= limit and w not in report.writers)


def _check_registered(
    out: WriterReport, state: ChainState | None, n: int | None, limit: int, prunes: list[RegistryEntry]
) -> None:
    """One writer against the registry (*n*: its entry's number; *limit*: the last settled entry)."""
    if n is None:
        if state is not None and state.head_mac is not None:
            out.problems.append("authenticated head but no registry entry: the registry was cut")
        elif state is None:
            out.warnings.append("no head and no registry entry: its newest records could be cut unseen")
        return
    if state is None:
        if n <= limit:  # else registered while verify read the heads: its head was not there yet
            out.problems.append("registered writer whose head was deleted")
        return
    if state.head_mac is None:
        out.problems.append("registered writer whose head has no MAC")
    # the checkpoint is the latest prune's, or the latest settled one's when a prune ran meanwhile
    settled = [p for p in prunes if p.n <= limit]
    allowed = {(p.seq, p.hash) for p in prunes[-1:] + settled[-1:]}
    if state.base_seq is None:
        if settled:
            out.problems.append(f"the prune to seq {prunes[-1].seq} has no checkpoint: it was removed")
        return
    if state.base_mac is None:
        out.problems.append("registered writer whose prune checkpoint has no MAC")
    if (state.base_seq, state.base_hash) not in allowed:
        out.problems.append(f"prune checkpoint (seq {state.base_seq}) was not made by prune")


def _erasure(record: AuditRecord, key: bytes | None) -> Erasure | None:
    """What *record* says of its erasure, its tombstones' MACs checked with *key*; None if not erased."""
    names = erased_fields(record)
    if not names:
        return None
    stones = [(name, getattr(record, name)) for name in names if name in TOMBSTONE_FIELDS]
    times = [str(stone["at"]) for _, stone in stones]
    if key is None:
        status = "unchecked"
    elif not stones:  # markers alone: their digests are keyed, the chain hash checks them
        status = "authenticated"
    elif any("mac" not in stone for _, stone in stones):
        status = "legacy" if hash_version(record) == 1 else "unauthenticated"
    elif all(  # as bytes: compare_digest refuses a str that is not ASCII, and the MAC is stored text
        hmac.compare_digest(
            str(stone["mac"]).encode(),
            erasure_mac(key, record.id, name, stone["sha256"], str(stone["at"])).encode(),
        )
        for name, stone in stones
    ):
        status = "authenticated"
    else:
        status = "forged"
    return Erasure(record.id, max(times) if times else None, names, status)


def _verify_writer(
    writer_id: str, links: list[_Link], states: Mapping[str, ChainState], key: bytes | None
) -> WriterReport:
    state = states.get(writer_id)
    out = WriterReport(writer_id, head_seq=state.head_seq if state else None)
    base_seq, base_hash = 0, GENESIS
    if state is not None and state.base_seq is not None and state.base_hash is not None:
        base_seq, base_hash = state.base_seq, state.base_hash
        out.base_seq = base_seq
    by_hash = {link.hash: link for link in links if not link.self_ok}
    by_hash.update((link.hash, link) for link in links if link.self_ok)  # a valid record wins
    true_seq: dict[str, int | None] = {}

    def position(link: _Link) -> int | None:
        """Where *link* really sits: one after the record whose hash it links to. Walks back
        iteratively and remembers every answer, so each record is visited once overall."""
        trail: list[_Link] = []
        seen: set[str] = set()
        found: int | None = None
        current: _Link | None = link
        while current is not None and current.id not in seen:  # seen again: forged links in a loop
            if current.id in true_seq:
                found = true_seq[current.id]
                break
            trail.append(current)
            seen.add(current.id)
            if current.prev_hash == base_hash:
                found = base_seq
                break
            current = by_hash.get(current.prev_hash)
        for step in reversed(trail):
            found = None if found is None else found + 1
            true_seq[step.id] = found
        return true_seq[link.id]

    accepted: dict[int, _Link] = {}
    for link in sorted(links, key=lambda lk: (lk.seq, not lk.self_ok)):
        if link.self_ok:
            where = position(link)
            # where is None: its predecessor is gone (reported as missing); it stands where it says
            if where in (link.seq, None) and link.seq not in accepted and link.seq > base_seq:
                accepted[link.seq] = link
                out.verified += 1
                if link.erasure is not None:
                    out.erased += 1
                    out.erasures.append(link.erasure)
            else:
                out.inserted.append(link.id)  # a valid hash at a position it does not link to
            continue
        where = position(link)
        if (
            where is not None
            and where != link.seq
            and link.record is not None
            and hmac.compare_digest(compute_hash(link.record, key, seq=where), link.hash)
        ):
            out.reordered.append(link.id)
            accepted.setdefault(where, link)
        elif link.seq in accepted:
            out.inserted.append(link.id)  # a second record claiming a taken position
        else:
            out.modified.append(link.id)
            accepted.setdefault(link.seq, link)
    _find_gaps(out, accepted, base_seq, state)
    return out


def _plus_one(value: int | None) -> int | None:
    return None if value is None else value + 1


def _find_gaps(
    out: WriterReport, accepted: Mapping[int, _Link], base_seq: int, state: ChainState | None
) -> None:
    last = max([base_seq, *accepted], default=base_seq)
    if state is not None and state.head_seq > last:
        last = state.head_seq
    start = None
    for seq in range(base_seq + 1, last + 1):
        if seq not in accepted:
            start = seq if start is None else start
        elif start is not None:
            out.missing.append((start, seq - 1))
            start = None
    if start is not None:
        out.missing.append((start, last))
