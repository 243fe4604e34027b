"""The RFC 9162 Merkle tree against a reference written here straight from the RFC's recursive
definitions (MTH, PATH, PROOF): roots, audit paths for every leaf, consistency for every pair of
sizes, and one flipped bit anywhere in a proof fails it."""

from __future__ import annotations

from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hash_of,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# -- the reference: RFC 9162 section 2.1, as written there --------------------------------------


def ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [f"v2:{i:064x}".encode() for i in range(n)]


def _flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


N = 40


def test_hashing_is_the_rfcs() -> None:
    """Leaf and node hashing with the RFC's domain bytes; the empty tree hashes to SHA-256("")."""
    assert leaf_hash(b"abc") == sha256(b"\x00abc").digest()
    assert leaf_hash_of("v2:ab") == sha256(b"\x00v2:ab").digest()
    assert MerkleTree().root() == EMPTY_ROOT == sha256(b"").digest()


def test_incremental_roots_match_the_reference_at_every_size() -> None:
    leaves = _leaves(N * 2)
    tree = MerkleTree()
    for n, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        assert tree.size == n
        assert tree.root() == ref_mth(leaves[:n]), n
        assert len(tree.frontier) == bin(n).count("1")  # O(log n) state
        assert root_of([leaf_hash(x) for x in leaves[:n]]) == tree.root()


def test_a_tree_resumes_from_its_frontier() -> None:
    """The state a writer would persist (size and frontier) is enough to go on appending."""
    leaves = _leaves(23)
    tree = MerkleTree()
    for leaf in leaves[:13]:
        tree.append(leaf)
    resumed = MerkleTree(tree.size, tree.frontier)
    for leaf in leaves[13:]:
        resumed.append(leaf)
    assert resumed.root() == ref_mth(leaves)
    with pytest.raises(ValueError, match="frontier"):
        MerkleTree(5, tree.frontier[:1])


def test_audit_paths_for_every_leaf_of_every_tree_up_to_n() -> None:
    for n in range(1, N + 1):
        leaves = _leaves(n)
        hashes = [leaf_hash(x) for x in leaves]
        root = ref_mth(leaves)
        for m in range(n):
            path = inclusion_proof(m, hashes)
            assert path == ref_path(m, leaves), (m, n)
            assert verify_inclusion(m, n, hashes[m], path, root), (m, n)
            assert not verify_inclusion(m, n + 1, hashes[m], path, ref_mth(_leaves(n + 1)))
            if n > 1:
                other = (m + 1) % n
                assert not verify_inclusion(other, n, hashes[m], path, root), (m, n)


def test_consistency_for_every_pair_of_sizes_up_to_n() -> None:
    leaves = _leaves(N)
    hashes = [leaf_hash(x) for x in leaves]
    for n in range(1, N + 1):
        second = ref_mth(leaves[:n])
        for m in range(1, n + 1):
            proof = consistency_proof(m, hashes[:n])
            assert proof == ref_subproof(m, leaves[:n], True), (m, n)
            first = ref_mth(leaves[:m])
            assert verify_consistency(m, n, first, second, proof), (m, n)
            if m < n:
                assert not verify_consistency(m, n, second, second, proof), (m, n)
                assert not verify_consistency(m, n, first, first, proof), (m, n)


def test_a_tree_that_does_not_extend_the_old_one_fails() -> None:
    leaves = _leaves(12)
    changed = [*leaves[:3], b"forged", *leaves[4:]]
    proof = consistency_proof(5, [leaf_hash(x) for x in changed])
    assert not verify_consistency(5, 12, ref_mth(leaves[:5]), ref_mth(changed), proof)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70), st.data())
def test_one_flipped_bit_anywhere_in_an_inclusion_proof_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    hashes = [leaf_hash(x) for x in leaves]
    m = data.draw(st.integers(0, n - 1))
    path, root = inclusion_proof(m, hashes), ref_mth(leaves)
    assert verify_inclusion(m, n, hashes[m], path, root)
    parts = [hashes[m], root, *path]
    which = data.draw(st.integers(0, len(parts) - 1))
    parts[which] = _flip(parts[which], data.draw(st.integers(0, 255)))
    assert not verify_inclusion(m, n, parts[0], parts[2:], parts[1])


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 70), st.data())
def test_one_flipped_bit_anywhere_in_a_consistency_proof_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    hashes = [leaf_hash(x) for x in leaves]
    m = data.draw(st.integers(1, n - 1))
    proof = consistency_proof(m, hashes)
    parts = [ref_mth(leaves[:m]), ref_mth(leaves), *proof]
    assert verify_consistency(m, n, parts[0], parts[1], parts[2:])
    which = data.draw(st.integers(0, len(parts) - 1))
    parts[which] = _flip(parts[which], data.draw(st.integers(0, 255)))
    assert not verify_consistency(m, n, parts[0], parts[1], parts[2:])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=60), st.data())
def test_any_leaves_any_index_against_the_reference(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    hashes = [leaf_hash(x) for x in leaves]
    m = data.draw(st.integers(0, n - 1))
    assert inclusion_proof(m, hashes) == ref_path(m, leaves)
    size = data.draw(st.integers(1, n))
    assert consistency_proof(size, hashes) == ref_subproof(size, leaves, True)


def test_bad_arguments() -> None:
    hashes = [leaf_hash(x) for x in _leaves(4)]
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(4, hashes)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(0, hashes)
    root = root_of(hashes)
    assert not verify_inclusion(-1, 4, hashes[0], [], root)
    assert not verify_consistency(4, 4, root, root, [root])
    assert verify_consistency(4, 4, root, root, [])
    assert not verify_consistency(2, 4, root, root, [])
    assert not verify_inclusion(0, 4, hashes[0], [b"short"], root)
