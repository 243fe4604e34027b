"""Signed checkpoints: a writer's Merkle tree head, signed with Ed25519, each linked to the one before.

A `Checkpoint` says: writer ``writer_id``'s records ``seq`` 1 to ``tree_size`` have the RFC 9162
tree ``root_hash`` (leaves: their chain hashes, see `merkle`), the last of them has the chain hash
``chain_head``, and this is the writer's checkpoint number ``n``, made at ``timestamp``, after the
one whose `Checkpoint.digest` is ``prev`` (`GENESIS` for the first). ``chain_keyed`` says whether
the chain hashes are HMACs (then only a holder of the chain key can recompute one from a record's
content); ``final`` marks the checkpoint a writer makes when it closes, after which it seals nothing.
The signature covers `Checkpoint.signed_bytes`: the canonical JSON of every other field under a
version tag.

`CheckpointEmitter` is what a writer holds: it is told each chain hash it seals (`add`, or
`add_many` per batch), in ``seq`` order, and makes a checkpoint every *every_records* records, at
the first `tick` (after each batch, and when the writer is idle) once the oldest record not covered
yet has waited *every_s* seconds (by its *clock*: tests inject one), and at `close`. This module
signs and verifies through the small `Signer` and `Verifier` protocols, so it imports no
cryptography: `keys` provides the Ed25519 implementations. No I/O: a checkpoint goes where the
emitter's *publish* callback sends it (storage, a `witness`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from ..record.codec import dumps, format_timestamp
from .chain import GENESIS
from .merkle import MerkleTree

__all__ = [
    "DEFAULT_CHECKPOINT_INTERVAL_S",
    "DEFAULT_CHECKPOINT_RECORDS",
    "Checkpoint",
    "CheckpointEmitter",
    "Signer",
    "Verifier",
    "checkpoint_problem",
]

#: A checkpoint at least every this many sealed records...
DEFAULT_CHECKPOINT_RECORDS = 1000
#: ...and once the oldest record not covered yet is this old.
DEFAULT_CHECKPOINT_INTERVAL_S = 60.0
_VERSION = "llmaudit.checkpoint.v1"
_HEX64 = frozenset("0123456789abcdef")


class Signer(Protocol):
    """What signs checkpoints (`keys.SigningKey`)."""

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    """What verifies them (`keys.VerifyKey`)."""

    @property
    def key_id(self) -> str: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed tree head of one writer (see the module docstring for each field)."""

    writer_id: str
    n: int
    tree_size: int
    root_hash: str  # hex
    chain_head: str
    chain_keyed: bool
    timestamp: str
    prev: str
    key_id: str
    final: bool = False
    signature: str = ""  # base64 of the Ed25519 signature of `signed_bytes`

    def signed_bytes(self) -> bytes:
        """The canonical bytes the signature covers: every field but the signature."""
        return dumps(
            [
                _VERSION,
                self.writer_id,
                self.n,
                self.tree_size,
                self.root_hash,
                self.chain_head,
                self.chain_keyed,
                self.timestamp,
                self.prev,
                self.key_id,
                self.final,
            ]
        )

    def digest(self) -> str:
        """What the next checkpoint's ``prev`` holds: SHA-256 of `signed_bytes`, hex."""
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    @property
    def root(self) -> bytes:
        return bytes.fromhex(self.root_hash)

    def signed(self, signer: Signer) -> Checkpoint:
        """This checkpoint under *signer*'s key id, with its signature."""
        unsigned = replace(self, key_id=signer.key_id, signature="")
        signature = base64.b64encode(signer.sign(unsigned.signed_bytes())).decode()
        return replace(unsigned, signature=signature)

    def to_json(self) -> dict[str, Any]:
        return {"format": _VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """A checkpoint from its `to_json` form (a signature is not checked here: `checkpoint_problem`).

        Raises:
            ValueError: not a checkpoint: a field missing, of the wrong type, or malformed.
        """
        if not isinstance(data, dict) or data.get("format") != _VERSION:
            raise ValueError(f"not a checkpoint (format {_VERSION})")
        if data.keys() != _KEYS:  # nothing unsigned rides along, and nothing signed is left out
            raise ValueError(f"checkpoint: expected exactly the fields {sorted(_KEYS)}")
        values: dict[str, Any] = {}
        for name, kind in _FIELD_TYPES.items():
            value = data[name]
            if type(value) is not kind:  # bool is not an int here, nor an int a bool
                raise ValueError(f"checkpoint field {name!r}: expected {kind.__name__}")
            values[name] = value
        checkpoint = cls(**values)
        if checkpoint.n < 1 or checkpoint.tree_size < 0:
            raise ValueError("checkpoint: n must be at least 1 and tree_size not negative")
        for name in ("root_hash", "prev", "key_id"):
            text = values[name]
            if len(text) != 64 or not _HEX64.issuperset(text):
                raise ValueError(f"checkpoint field {name!r}: expected 64 hex digits")
        return checkpoint


_FIELD_TYPES: dict[str, type] = {
    "writer_id": str,
    "n": int,
    "tree_size": int,
    "root_hash": str,
    "chain_head": str,
    "chain_keyed": bool,
    "timestamp": str,
    "prev": str,
    "key_id": str,
    "final": bool,
    "signature": str,
}

_KEYS = frozenset({"format", *_FIELD_TYPES})


def checkpoint_problem(checkpoint: Checkpoint, keys: Mapping[str, Verifier]) -> str | None:
    """What is wrong with *checkpoint*'s signature (None: it verifies with the key it names)."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return f"checkpoint {checkpoint.n}: signed by an unknown key {checkpoint.key_id[:16]}"
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except (binascii.Error, ValueError):
        return f"checkpoint {checkpoint.n}: the signature is not base64"
    if base64.b64encode(signature).decode() != checkpoint.signature:  # unused bits set: not canonical
        return f"checkpoint {checkpoint.n}: the signature is not in canonical base64"
    if not key.verify(checkpoint.signed_bytes(), signature):
        return f"checkpoint {checkpoint.n}: the signature does not verify"
    return None


def same_checkpoint(a: Checkpoint, b: Checkpoint) -> bool:
    """Whether two copies are the same checkpoint (fields and signature)."""
    return hmac.compare_digest(a.signed_bytes(), b.signed_bytes()) and a.signature == b.signature


class CheckpointEmitter:
    """One writer's tree and checkpoints (see the module docstring). Not thread-safe: the writer's
    sealing thread owns it, as it owns the chain.

    *publish* receives every checkpoint made; what it raises reaches the caller of `add`, `tick`,
    `rotate` or `close` (the writer guards it). To resume a writer's tree (a restarted process
    keeping its writer id), pass its *tree*, the *last* checkpoint made and the chain *head*.
    """

    def __init__(
        self,
        writer_id: str,
        signer: Signer,
        *,
        chain_keyed: bool,
        every_records: int = DEFAULT_CHECKPOINT_RECORDS,
        every_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        publish: Callable[[Checkpoint], None] | None = None,
        tree: MerkleTree | None = None,
        last: Checkpoint | None = None,
        head: str | None = None,
    ) -> None:
        if every_records < 1 or every_s <= 0:
            raise ValueError("checkpoints need every_records >= 1 and every_s > 0")
        self.writer_id = writer_id
        self.signer = signer
        self.chain_keyed = chain_keyed
        self.every_records = every_records
        self.every_s = every_s
        self._clock = clock
        self._publish = publish
        self.tree = tree if tree is not None else MerkleTree()
        self.last = last
        # the chain hash of the tree's last leaf: *head*, else the last checkpoint's (a tree resumed
        # past its last checkpoint needs its *head*)
        self.head = head if head is not None else last.chain_head if last is not None else GENESIS
        self._pending = self.tree.size - (last.tree_size if last is not None else 0)
        self._due = clock() + every_s if self._pending else 0.0
        self.closed = False

    def add(self, chain_hash: str) -> Checkpoint | None:
        """Take the next sealed record's chain hash; the checkpoint made now if *every_records*
        records are waiting. Time is looked at by `tick` (and `add_many`), not per record."""
        self.tree.add_chain_hash(chain_hash)
        self.head = chain_hash
        pending = self._pending = self._pending + 1
        if pending >= self.every_records:
            return self.emit()
        if pending == 1:  # the oldest record not covered yet: the interval starts with it
            self._due = self._clock() + self.every_s
        return None

    def add_many(self, chain_hashes: Iterable[str]) -> list[Checkpoint]:
        """`add` for a batch, then `tick`: the checkpoints made on the way (what a writer calls
        per sealed batch)."""
        made = [c for c in map(self.add, chain_hashes) if c is not None]
        late = self.tick()
        return made if late is None else [*made, late]

    def tick(self) -> Checkpoint | None:
        """The checkpoint due by time alone (the writer calls this when idle), if one is."""
        if self._pending and self._clock() >= self._due:
            return self.emit()
        return None

    def emit(self, *, final: bool = False) -> Checkpoint:
        """Make, sign and publish a checkpoint of the tree as it is now."""
        previous = self.last
        checkpoint = Checkpoint(
            writer_id=self.writer_id,
            n=previous.n + 1 if previous is not None else 1,
            tree_size=self.tree.size,
            root_hash=self.tree.root().hex(),
            chain_head=self.head,
            chain_keyed=self.chain_keyed,
            timestamp=format_timestamp(datetime.fromtimestamp(self._clock(), timezone.utc)),
            prev=previous.digest() if previous is not None else GENESIS,
            key_id=self.signer.key_id,
            final=final,
        ).signed(self.signer)
        self.last, self._pending = checkpoint, 0
        if self._publish is not None:
            self._publish(checkpoint)
        return checkpoint

    def rotate(self, signer: Signer) -> Checkpoint | None:
        """Sign with *signer* from the next checkpoint on; what the old key has not covered yet is
        covered by it first (the checkpoint returned), so each key signs a contiguous run."""
        made = self.emit() if self._pending else None
        self.signer = signer
        return made

    def close(self) -> Checkpoint | None:
        """The writer's final checkpoint (none for a writer that sealed nothing); idempotent."""
        if self.closed:
            return None
        self.closed = True
        return self.emit(final=True) if self.tree.size else None
