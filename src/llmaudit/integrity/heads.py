"""The chain's heads, checkpoints and registry: what a backend keeps beside the records so that a cut
tail, a rewound head or a made-up checkpoint is detected.

Backends keep, beside the records, each writer's *head* (highest ``seq`` and its hash, updated in the
same write as the records, so cutting the tail is detected) and, once old records are pruned, a
*base* checkpoint (the last pruned ``seq`` and hash) where verification starts instead of genesis.
Each head and checkpoint carries a MAC (`state_mac`: HMAC with the chain key, SHA-256 without one)
over what kind of entry it is, the writer, the ``seq`` and the hash, so a rewound head or a made-up
checkpoint does not verify. Beside them an append-only *registry* (`RegistryEntry`), itself a chain
of MACs, records each writer when it is first stored, each prune and each explicit sealing of legacy
records: a writer that vanished, a checkpoint no prune made, or an entry cut from the registry's
middle is reported. What this cannot see without an anchor outside the store (a whole store rolled
back, the newest writer dropped with the registry's tail entry, a head replayed from an earlier copy)
is written down in SECURITY.md.

Pure values and MACs: no I/O (storage keeps them), no state, and nothing from the stages above the
record stage; sealing is `integrity.chain`, checking `integrity.verify`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from hashlib import sha256
from typing import Any, NamedTuple

from ..record.codec import dumps, format_timestamp

__all__ = [
    "GENESIS",
    "REGISTRY_KINDS",
    "ChainState",
    "RegistryEntry",
    "new_state",
    "registry_entry",
    "state_mac",
]

#: The ``prev_hash`` of a writer's first record.
GENESIS = "0" * 64


class ChainState(NamedTuple):
    """What a backend keeps per writer beside the records: the head, and the prune checkpoint, each
    with its MAC (`state_mac`; None in a store written before heads were authenticated)."""

    head_seq: int
    head_hash: str
    base_seq: int | None = None
    base_hash: str | None = None
    head_mac: str | None = None
    base_mac: str | None = None

    def raised(self, writer_id: str, seq: int, digest: str, key: bytes | None) -> ChainState:
        """This state with its head moved to ``(seq, digest)`` and authenticated."""
        return self._replace(
            head_seq=seq, head_hash=digest, head_mac=state_mac("head", writer_id, seq, digest, key)
        )

    def cut(self, writer_id: str, seq: int, digest: str, key: bytes | None) -> ChainState:
        """This state with its prune checkpoint at ``(seq, digest)``, authenticated."""
        mac = state_mac("checkpoint", writer_id, seq, digest, key)
        return self._replace(base_seq=seq, base_hash=digest, base_mac=mac)


def new_state(writer_id: str, seq: int, digest: str, key: bytes | None) -> ChainState:
    """The first head of a writer."""
    return ChainState(seq, digest, head_mac=state_mac("head", writer_id, seq, digest, key))


def state_mac(kind: str, writer_id: str, seq: int, digest: str, key: bytes | None) -> str:
    """The MAC of a head (*kind* ``"head"``) or a prune checkpoint (``"checkpoint"``): HMAC-SHA256
    with the chain key over the kind, the writer, the position and the hash (SHA-256 unkeyed, which
    catches accidents only). The kind is inside, so a head's MAC never passes as a checkpoint's."""
    return _digest(dumps(["llmaudit.state.v1", kind, writer_id, seq, digest]), key)


#: What the registry records: a writer first stored, a prune checkpoint set, legacy records sealed.
REGISTRY_KINDS = ("writer", "prune", "seal-legacy")


class RegistryEntry(NamedTuple):
    """One entry of a store's append-only registry. ``n`` counts from 1; ``prev`` is the previous
    entry's ``mac`` (`GENESIS` for the first), and ``mac`` covers every other field, so an entry
    removed from the middle, changed or moved breaks the links after it."""

    n: int
    kind: str
    writer_id: str
    seq: int
    hash: str
    at: str
    detail: str  # canonical JSON of a small object (what a sealing covered), "{}" otherwise
    prev: str
    mac: str

    def expected_mac(self, key: bytes | None) -> str:
        fields = [self.n, self.kind, self.writer_id, self.seq, self.hash, self.at, self.detail, self.prev]
        return _digest(dumps(["llmaudit.registry.v1", *fields]), key)


def registry_entry(
    previous: RegistryEntry | None,
    kind: str,
    writer_id: str,
    seq: int,
    digest: str,
    *,
    key: bytes | None,
    at: datetime,
    detail: Mapping[str, Any] | None = None,
) -> RegistryEntry:
    """The entry to append after *previous* (None: the registry is empty)."""
    n, prev = (1, GENESIS) if previous is None else (previous.n + 1, previous.mac)
    text = dumps(dict(detail or {})).decode()
    entry = RegistryEntry(n, kind, writer_id, seq, digest, format_timestamp(at), text, prev, "")
    return entry._replace(mac=entry.expected_mac(key))


def _digest(message: bytes, key: bytes | None) -> str:
    if key is None:
        return sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
