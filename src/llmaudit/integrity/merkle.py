"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0) over a writer's sealed records.

Leaf ``i`` of a writer's tree is the chain hash of its record ``seq = i + 1`` (its text, as ASCII:
``"v2:" + hex`` or bare hex), which covers the payloads as digests only, so ``forget`` leaves the
tree unchanged. Hashing is the RFC's (section 2.1.1): a leaf hashes to ``SHA-256(0x00 || leaf)``, an
inner node to ``SHA-256(0x01 || left || right)``, and the empty tree to ``SHA-256("")``.

`MerkleTree` is the writer's side: appending is O(1) amortised and the state O(log n) (the roots of
the perfect subtrees the tree splits into, one per bit of its size), so the root is always at hand.
The proofs (section 2.1.3 inclusion, 2.1.4 consistency) are generated from the full list of leaf
hashes, which the read side rebuilds from the store, and verified from the proof alone. Pure
functions over bytes: no I/O, nothing above the integrity stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hash_of",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

#: The root of the empty tree (RFC 9162 section 2.1.1).
EMPTY_ROOT = sha256(b"").digest()
_LEAF, _NODE = b"\x00", b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return sha256(_LEAF + leaf).digest()


def leaf_hash_of(chain_hash: str) -> bytes:
    """The leaf hash of a record whose chain hash is *chain_hash*."""
    return sha256(_LEAF + chain_hash.encode("ascii")).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return sha256(_NODE + left + right).digest()


class MerkleTree:
    """A tree that grows one leaf at a time, keeping only the roots of its perfect subtrees.

    Those are the subtrees the size's binary digits name, largest (leftmost) first: a tree of 6
    leaves keeps the roots of leaves 0-3 and 4-5. Appending a leaf pushes its hash and merges the
    two rightmost roots while they cover the same number of leaves, as adding one to a binary
    counter carries; the root folds the kept roots from the right, which is the RFC's split at the
    largest power of two below the size. Not thread-safe: one writer thread owns it.
    """

    __slots__ = ("_roots", "size")

    def __init__(self, size: int = 0, roots: Sequence[bytes] = ()) -> None:
        """A tree of *size* leaves from its `frontier` (the empty tree by default).

        Raises:
            ValueError: *roots* is not the frontier of a tree of *size* leaves.
        """
        if size < 0 or len(roots) != bin(size).count("1") or any(len(r) != 32 for r in roots):
            raise ValueError(f"not the frontier of a tree of {size} leaves")
        self.size = size
        self._roots = list(roots)

    def append(self, leaf: bytes) -> None:
        """Add a leaf (its data, not its hash)."""
        self.append_hash(sha256(_LEAF + leaf).digest())

    def append_hash(self, hashed: bytes) -> None:
        """Add a leaf by its leaf hash."""
        roots, size = self._roots, self.size
        while size & 1:  # each trailing 1 of the old size is a subtree of equal size to merge
            hashed = sha256(_NODE + roots.pop() + hashed).digest()
            size >>= 1
        roots.append(hashed)
        self.size += 1

    def add_chain_hash(self, chain_hash: str) -> None:
        """Add the leaf of a record with this chain hash (what a writer calls per sealed record)."""
        hashed = sha256(_LEAF + chain_hash.encode("ascii")).digest()
        roots, size = self._roots, self.size
        while size & 1:  # `append_hash`, inlined: the writer calls this once per record
            hashed = sha256(_NODE + roots.pop() + hashed).digest()
            size >>= 1
        roots.append(hashed)
        self.size += 1

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """The roots of the perfect subtrees, left to right: with `size`, the whole state."""
        return tuple(self._roots)

    def root(self) -> bytes:
        """The tree head: MTH of every leaf so far."""
        if not self._roots:
            return EMPTY_ROOT
        result = self._roots[-1]
        for left in reversed(self._roots[:-1]):
            result = sha256(_NODE + left + result).digest()
        return result


def _split(n: int) -> int:
    """The largest power of two smaller than *n* (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaves given by their leaf hashes (RFC 9162 section 2.1.1), in O(n)."""
    tree = MerkleTree()
    for hashed in hashes:
        tree.append_hash(hashed)
    return tree.root()


def _subtree(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH of ``hashes[start:end]`` without copying the list."""
    n = end - start
    if n == 1:
        return hashes[start]
    if (n & (n - 1)) == 0:  # a perfect subtree: iterative, no recursion
        level = [node_hash(hashes[i], hashes[i + 1]) for i in range(start, end, 2)]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]
    k = _split(n)
    return node_hash(_subtree(hashes, start, start + k), _subtree(hashes, start + k, end))


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf *index* in the tree of the leaf hashes *hashes* (RFC 9162 section
    2.1.3.1, ``PATH(m, D[n])``), nearest the leaf first.

    Raises:
        ValueError: *index* is not a leaf of the tree.
    """
    n = len(hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} is not in a tree of {n} leaves")
    path: list[bytes] = []
    start, end = 0, n
    while end - start > 1:  # walk down from the root, collecting the sibling subtree at each split
        k = _split(end - start)
        if index < start + k:
            path.append(_subtree(hashes, start + k, end))
            end = start + k
        else:
            path.append(_subtree(hashes, start, start + k))
            start += k
    path.reverse()
    return path


def verify_inclusion(index: int, size: int, hashed: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """Whether *path* proves that the leaf hash *hashed* is leaf *index* of the tree of *size*
    leaves with this *root* (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, hashed
    for p in path:
        if sn == 0 or len(p) != 32:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(first: int, hashes: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree of the first *first* leaves is a prefix of the tree of all *hashes*
    (RFC 9162 section 2.1.4.1, ``PROOF(m, D[n])``). Empty when the sizes are equal.

    Raises:
        ValueError: *first* is not between 1 and the size of the tree.
    """
    n = len(hashes)
    if not 0 < first <= n:
        raise ValueError(f"no consistency proof from {first} leaves to {n}")
    return _subproof(first, hashes, 0, n, True)


def _subproof(m: int, hashes: Sequence[bytes], start: int, end: int, whole: bool) -> list[bytes]:
    """``SUBPROOF(m, D[start:end], b)`` of RFC 9162, iteratively down the right edge."""
    proof: list[bytes] = []
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(_subtree(hashes, start, end))
            break
        k = _split(n)
        if m <= k:  # the old tree sits in the left subtree: the right one is new
            proof.append(_subtree(hashes, start + k, end))
            end = start + k
        else:  # the left subtree is whole in both trees: prove the right
            proof.append(_subtree(hashes, start, start + k))
            start, m, whole = start + k, m - k, False
    proof.reverse()
    return proof


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether *proof* shows that the tree of *second* leaves with *second_root* extends the tree
    of *first* leaves with *first_root* (RFC 9162 section 2.1.4.2)."""
    if not 0 < first <= second or any(len(p) != 32 for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
