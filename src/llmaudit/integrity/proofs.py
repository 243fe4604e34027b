"""Proofs anyone can check offline with the public key: one record's inclusion in a signed tree
(`prove`, `verify_proof`), and one signed tree extending another (`prove_consistency`,
`verify_consistency_proof`).

An inclusion proof is a JSON object holding the record as the store has it (after ``forget``, its
erased form: tombstones and markers, which keep the digests its hash covers), its leaf hash, the
RFC 9162 audit path to the root of a signed checkpoint, and that checkpoint with its signature.
Checking it needs nothing else: the record gives its chain hash again (unkeyed chains; a keyed one
needs the chain key for that step, and the result says whether it was done), the hash gives the
leaf, the path gives the root, the key gives the signature.

Making a proof takes the records and checkpoints the read side hands over; no I/O here.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .._errors import VerificationError
from ..record.codec import decode_record, encode_record
from ..record.model import AuditRecord
from .chain import chain_key as _chain_key
from .chain import compute_hash, erased_fields
from .checkpoints import Checkpoint, Verifier, checkpoint_problem
from .merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash_of,
    root_of,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "CONSISTENCY_FORMAT",
    "PROOF_FORMAT",
    "ProofResult",
    "check_proof",
    "prove",
    "prove_consistency",
    "verify_consistency_proof",
    "verify_proof",
    "writer_leaves",
]

PROOF_FORMAT = "llmaudit.inclusion-proof.v1"
CONSISTENCY_FORMAT = "llmaudit.consistency-proof.v1"


@dataclass(slots=True)
class ProofResult:
    """What `verify_proof` or `verify_consistency_proof` found."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    record_id: str | None = None
    writer_id: str | None = None
    seq: int | None = None
    tree_size: int | None = None
    key_id: str | None = None
    #: Whether the record's content was checked against its leaf (False: keyed chain, no key).
    content_checked: bool = False
    #: The record's erased fields (its proof still holds after ``forget``).
    erased: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "notes": self.notes,
            "record_id": self.record_id,
            "writer_id": self.writer_id,
            "seq": self.seq,
            "tree_size": self.tree_size,
            "key_id": self.key_id,
            "content_checked": self.content_checked,
            "erased": list(self.erased),
        }


def writer_leaves(records: Iterable[AuditRecord], writer_id: str) -> list[bytes]:
    """The leaf hashes of *writer_id*'s records, in ``seq`` order.

    Raises:
        VerificationError: a position is missing or held twice (the tree cannot be rebuilt).
    """
    return _leaves((r.writer_id, r.seq, r.hash) for r in records if r.writer_id == writer_id)


def _leaves(links: Iterable[tuple[str | None, int | None, str | None]]) -> list[bytes]:
    found = sorted((seq, digest, writer) for writer, seq, digest in links if seq and digest)
    for expected, (seq, _, writer) in enumerate(found, start=1):
        if seq != expected:
            raise VerificationError(
                f"writer {writer}: record seq {expected} is missing or held twice in the store"
            )
    return [leaf_hash_of(digest) for _, digest, _ in found]


def _choose(
    checkpoints: Iterable[Checkpoint], writer_id: str, leaves: list[bytes], least: int, number: int | None
) -> Checkpoint:
    """The checkpoint to prove against: number *number*, else the newest covering *least* leaves
    whose root the store's leaves still give."""
    mine = sorted((c for c in checkpoints if c.writer_id == writer_id), key=lambda c: c.n, reverse=True)
    if number is not None:
        mine = [c for c in mine if c.n == number]
    for checkpoint in mine:
        size = checkpoint.tree_size
        if least <= size <= len(leaves) and root_of(leaves[:size]) == checkpoint.root:
            return checkpoint
    which = f"checkpoint {number}" if number is not None else "no checkpoint"
    raise VerificationError(
        f"{which} of writer {writer_id} covers seq {least} with a root the store's records still give"
        + ("" if number is not None else " (not checkpointed yet, or the records were tampered with)")
    )


def prove(
    record_id: str,
    records: Iterable[AuditRecord],
    checkpoints: Iterable[Checkpoint],
    *,
    checkpoint: int | None = None,
) -> dict[str, Any]:
    """The inclusion proof of record *record_id* (see the module docstring), against the writer's
    checkpoint number *checkpoint*, else its newest one that covers the record.

    Raises:
        VerificationError: no such record, it has no chain, or no checkpoint covers it.
    """
    record: AuditRecord | None = None
    links: dict[str, list[tuple[str | None, int | None, str | None]]] = {}
    for r in records:  # one pass, keeping three fields per record (a store can be large)
        if r.id == record_id:
            record = r
        links.setdefault(r.writer_id or "", []).append((r.writer_id, r.seq, r.hash))
    if record is None:
        raise VerificationError(f"no record {record_id}")
    if record.writer_id is None or record.seq is None or record.hash is None:
        raise VerificationError(f"record {record_id} has no hash chain: no checkpoint can cover it")
    leaves = _leaves(links[record.writer_id])
    chosen = _choose(checkpoints, record.writer_id, leaves, record.seq, checkpoint)
    index = record.seq - 1
    return {
        "format": PROOF_FORMAT,
        "record": orjson.loads(encode_record(record)),
        "leaf_index": index,
        "leaf_hash": leaves[index].hex(),
        "audit_path": [h.hex() for h in inclusion_proof(index, leaves[: chosen.tree_size])],
        "checkpoint": chosen.to_json(),
    }


_HEX = frozenset("0123456789abcdef")
_INCLUSION_KEYS = frozenset({"format", "record", "leaf_index", "leaf_hash", "audit_path", "checkpoint"})
_CONSISTENCY_KEYS = frozenset({"format", "first", "second", "proof"})


def _hash(value: Any, name: str) -> bytes:
    """A SHA-256 as 64 lowercase hex digits (``bytes.fromhex`` alone would take upper case too, and
    a proof must not verify with one bit changed anywhere)."""
    if not isinstance(value, str) or len(value) != 64 or not _HEX.issuperset(value):
        raise ValueError(f"{name}: expected 64 lowercase hex digits")
    return bytes.fromhex(value)


def _hexes(value: Any, name: str) -> list[bytes]:
    if not isinstance(value, list):
        raise TypeError(f"{name}: expected a list of hashes")
    return [_hash(v, name) for v in value]


def _exactly(proof: Mapping[str, Any], keys: frozenset[str], what: str) -> None:
    if proof.keys() != keys:
        raise ValueError(f"{what}: expected exactly the fields {sorted(keys)}")


def _parse_inclusion(proof: Mapping[str, Any]) -> tuple[Checkpoint, AuditRecord, int, bytes, list[bytes]]:
    if proof.get("format") != PROOF_FORMAT:
        raise ValueError(f"not an inclusion proof (format {PROOF_FORMAT})")
    _exactly(proof, _INCLUSION_KEYS, "inclusion proof")
    checkpoint = Checkpoint.from_json(proof["checkpoint"])
    record = decode_record(orjson.dumps(proof["record"]))
    if orjson.loads(encode_record(record)) != proof["record"]:  # a field the record would not keep
        raise ValueError("the record is not in the canonical form its hash covers")
    index = proof["leaf_index"]
    if type(index) is not int:
        raise ValueError("leaf_index: expected an integer")
    return (
        checkpoint,
        record,
        index,
        _hash(proof["leaf_hash"], "leaf_hash"),
        _hexes(proof["audit_path"], "audit_path"),
    )


def verify_proof(
    proof: Mapping[str, Any], keys: Mapping[str, Verifier], *, chain_key: bytes | None = None
) -> ProofResult:
    """Check an inclusion proof with the public *keys* alone (and *chain_key* for the content of a
    keyed chain's record). Never raises on a bad proof: the result lists what is wrong."""
    result = ProofResult()
    try:
        checkpoint, record, index, claimed_leaf, path = _parse_inclusion(proof)
    except (ValueError, TypeError, AttributeError) as exc:  # AttributeError: not an object
        result.problems.append(f"malformed proof: {exc}")
        return result
    result.record_id, result.writer_id, result.seq = record.id, record.writer_id, record.seq
    result.tree_size, result.key_id = checkpoint.tree_size, checkpoint.key_id
    result.erased = erased_fields(record)
    problem = checkpoint_problem(checkpoint, keys)
    if problem is not None:
        result.problems.append(problem)
    if record.hash is None or record.seq is None or record.writer_id != checkpoint.writer_id:
        result.problems.append("the record is not one of the checkpoint's writer")
        return result
    if record.seq != index + 1:
        result.problems.append(f"the record's seq {record.seq} is not leaf {index}")
    leaf = leaf_hash_of(record.hash)
    if not hmac.compare_digest(leaf, claimed_leaf):
        result.problems.append("the leaf hash is not the record's")
    if not verify_inclusion(index, checkpoint.tree_size, leaf, path, checkpoint.root):
        result.problems.append("the audit path does not lead to the checkpoint's root")
    _check_record(result, record, checkpoint, chain_key)
    return result


def _check_record(
    result: ProofResult, record: AuditRecord, checkpoint: Checkpoint, key: bytes | None
) -> None:
    assert record.hash is not None
    if checkpoint.chain_keyed and key is None:
        result.notes.append(
            "the chain is keyed: the record's content was not checked against its hash (needs the chain "
            "key); the proof shows the hash is in the signed tree"
        )
        return
    result.content_checked = True
    if not hmac.compare_digest(compute_hash(record, key if checkpoint.chain_keyed else None), record.hash):
        result.problems.append("the record's content does not give its hash: it was changed")


def prove_consistency(
    first: Checkpoint, second: Checkpoint, records: Iterable[AuditRecord]
) -> dict[str, Any]:
    """The proof that *second*'s tree extends *first*'s (same writer), from the store's records.

    Raises:
        VerificationError: different writers, *first* is the larger tree, or the store's records
            no longer give the two roots.
    """
    if first.writer_id != second.writer_id:
        raise VerificationError("a consistency proof relates two checkpoints of the same writer")
    if not 0 < first.tree_size <= second.tree_size:
        raise VerificationError(
            "the first checkpoint must hold at least one record and not more than the second"
        )
    leaves = writer_leaves(records, first.writer_id)[: second.tree_size]
    if len(leaves) < second.tree_size or root_of(leaves) != second.root:
        raise VerificationError(f"the store's records no longer give checkpoint {second.n}'s root")
    return {
        "format": CONSISTENCY_FORMAT,
        "first": first.to_json(),
        "second": second.to_json(),
        "proof": [h.hex() for h in consistency_proof(first.tree_size, leaves)],
    }


def _parse_consistency(proof: Mapping[str, Any]) -> tuple[Checkpoint, Checkpoint, list[bytes]]:
    if proof.get("format") != CONSISTENCY_FORMAT:
        raise ValueError(f"not a consistency proof (format {CONSISTENCY_FORMAT})")
    _exactly(proof, _CONSISTENCY_KEYS, "consistency proof")
    first = Checkpoint.from_json(proof["first"])
    second = Checkpoint.from_json(proof["second"])
    return first, second, _hexes(proof["proof"], "proof")


def verify_consistency_proof(proof: Mapping[str, Any], keys: Mapping[str, Verifier]) -> ProofResult:
    """Check a consistency proof: both checkpoints signed, same writer, and the second tree extends
    the first. Never raises on a bad proof."""
    result = ProofResult()
    try:
        first, second, path = _parse_consistency(proof)
    except (ValueError, TypeError, AttributeError) as exc:  # AttributeError: not an object
        result.problems.append(f"malformed proof: {exc}")
        return result
    result.writer_id, result.tree_size, result.key_id = second.writer_id, second.tree_size, second.key_id
    for checkpoint in (first, second):
        problem = checkpoint_problem(checkpoint, keys)
        if problem is not None:
            result.problems.append(problem)
    if first.writer_id != second.writer_id:
        result.problems.append("the checkpoints are of different writers")
    if not verify_consistency(first.tree_size, second.tree_size, first.root, second.root, path):
        result.problems.append(
            f"checkpoint {second.n}'s tree does not extend checkpoint {first.n}'s (consistency fails)"
        )
    return result


def check_proof(
    proof: Mapping[str, Any] | str | os.PathLike[str],
    public_keys: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | Mapping[str, Verifier],
    *,
    chain_key: str | bytes | None = None,
) -> ProofResult:
    """Check a proof (an inclusion or a consistency proof: its JSON object, or the path of its file)
    offline, with the public key(s) alone (PEM files' paths, or keys by key id; several after a
    rotation); *chain_key* lets a keyed chain's record content be checked too. Public as
    ``llmaudit.verify_proof``. Never raises on a bad proof: ``result.ok`` and ``result.problems``.

    Raises:
        ConfigurationError: a public key cannot be read (or ``cryptography`` is missing).
        VerificationError: the proof file cannot be read or is not JSON.
    """
    if isinstance(proof, (str, os.PathLike)):
        path = Path(proof)
        try:
            proof = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise VerificationError(f"{path}: not a readable proof ({exc})") from exc
    if isinstance(public_keys, Mapping):
        keys: Mapping[str, Verifier] = public_keys
    else:
        from . import keys as _keys  # noqa: PLC0415 - needs cryptography, only here

        paths = [public_keys] if isinstance(public_keys, (str, os.PathLike)) else list(public_keys)
        keys = _keys.public_keys(paths)
    if not isinstance(proof, Mapping):
        return verify_proof({}, keys)
    if proof.get("format") == CONSISTENCY_FORMAT:
        return verify_consistency_proof(proof, keys)
    return verify_proof(proof, keys, chain_key=_chain_key(chain_key))
