"""Signed checkpoints over real stores (JSONL, SQLite, PostgreSQL, MariaDB): an attacker who can write
the store, holds the chain's HMAC key and can rewrite the checkpoints kept beside the records, but
not the signing key, edits, deletes, inserts, reorders and truncates records (recomputing the chain
so the HMAC verify passes) and every case is found by the public key and the witness; proofs of one
record hold before and after `forget`, and fail with one bit changed anywhere.

The writer does not emit checkpoints yet: they are made here as it will make them, by running the
emitter over each writer's chain hashes in the order it sealed them (``seq``), publishing to the
store's checkpoints file and to a witness file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.test_chain import Tamper, _records

import llmaudit
from llmaudit import AuditRecord

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import GENESIS, Chain
from llmaudit.integrity.checkpoints import Checkpoint, CheckpointEmitter
from llmaudit.integrity.keys import SigningKey
from llmaudit.integrity.merkle import MerkleTree
from llmaudit.integrity.proofs import prove, prove_consistency, verify_consistency_proof, verify_proof
from llmaudit.integrity.signed import SignedReport, verify_signed
from llmaudit.integrity.witness import FileWitness, read_checkpoints

CHAIN_KEY = "test-chain-key-not-a-secret"
EVERY = 4  # a checkpoint every 4 records


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture(
    params=[
        "jsonl",
        "sqlite",
        pytest.param("pg", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Tamper]:
    kind = request.param
    if kind == "jsonl":
        url, root = f"jsonl://{tmp_path / 'log'}", tmp_path / "log"
    elif kind == "sqlite":
        url, root = f"sqlite:///{tmp_path / 'audit.db'}", None
    elif kind == "pg":
        url, root = request.getfixturevalue("pg_url"), None
    else:
        url, root = request.getfixturevalue("mariadb_url"), None
    return url, Tamper("jsonl" if kind == "jsonl" else "sql", url, root)


class Log:
    """A store written through real Auditors (one writer each), with its checkpoints made as the
    writer will make them: the store's copy in *stored*, the witness's in *witness*."""

    def __init__(self, url: str, tamper: Tamper, tmp_path: Path, *, keyed: bool = True) -> None:
        self.url, self.tamper, self.tmp = url, tamper, tmp_path
        self.chain_key = CHAIN_KEY if keyed else None
        self.key = SigningKey.generate()
        self.keys = {self.key.key_id: self.key.public}
        self.stored = FileWitness(tmp_path / "store-checkpoints.jsonl")
        self.witness = FileWitness(tmp_path / "witness" / "checkpoints.jsonl")

    def write(self, n: int, session: str = "s1", *, close: bool = True) -> list[AuditRecord]:
        """*n* records by a new writer, checkpointed every `EVERY` and (with *close*) at its end."""
        options: dict[str, Any] = {"chain_key": self.chain_key} if self.chain_key else {}
        with llmaudit.Auditor(self.url, spool_dir=str(self.tmp / "spool"), **options) as auditor:
            for record in _records(n, session=session):
                auditor.submit(record)
        writer = sorted((r for r in self.records() if r.session_key == session), key=lambda r: r.seq or 0)
        self.checkpoint(writer, close=close)
        return writer

    def checkpoint(self, sealed: Sequence[AuditRecord], *, close: bool = True, signer: Any = None) -> None:
        def publish(checkpoint: Checkpoint) -> None:
            self.stored.publish(checkpoint)
            self.witness.publish(checkpoint)

        assert sealed[0].writer_id is not None
        emitter = CheckpointEmitter(
            sealed[0].writer_id,
            signer or self.key,
            chain_keyed=self.chain_key is not None,
            every_records=EVERY,
            clock=Clock(),
            publish=publish,
        )
        for record in sealed:
            assert record.hash is not None
            emitter.add(record.hash)
        if close:
            emitter.close()

    def records(self) -> list[AuditRecord]:
        with llmaudit.open(self.url) as reader:
            return list(reader.records())

    def verify(self, *, witness: bool = True, chain_key: bool = False) -> SignedReport:
        key = self.chain_key.encode() if chain_key and self.chain_key else None
        return verify_signed(
            self.records(),
            self.stored.checkpoints(),
            self.keys,
            witness=self.witness.checkpoints() if witness else None,
            chain_key=key,
        )

    def hmac_verify_ok(self) -> bool:
        with llmaudit.open(self.url) as reader:
            report = reader.verify(self.chain_key)
        (writer,) = report.writers.values()
        return not (writer.modified or writer.reordered or writer.inserted)

    # -- the attacker -------------------------------------------------------------------------

    def rechain(self, old: Sequence[AuditRecord], new: list[AuditRecord]) -> list[AuditRecord]:
        """Replace a writer's records by *new*, sealed again with the chain key under the same
        writer id (seq 1, 2, …, fresh hashes and links): the HMAC chain is whole again."""
        assert old[0].writer_id is not None
        key = self.chain_key.encode() if self.chain_key else None
        resealed = Chain(key, writer_id=old[0].writer_id).seal(new)
        self.tamper.delete(*[r.id for r in old])
        for record in resealed:
            self.tamper.insert(record)
        return resealed

    def rewrite_stored_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        self.stored.path.write_bytes(b"")
        for checkpoint in checkpoints:
            self.stored.publish(checkpoint)


def _problems(report: SignedReport) -> str:
    return " | ".join(p for w in report.writers.values() for p in w.problems)


def test_an_untouched_log_is_covered_by_its_signatures(store: tuple[str, Tamper], tmp_path: Path) -> None:
    log = Log(*store, tmp_path)
    log.write(10)
    report = log.verify()
    assert report.ok, report.to_json()
    (writer,) = report.writers.values()
    assert (writer.records, writer.covered, writer.uncovered, writer.checkpoints) == (10, 10, 0, 3)
    assert not writer.content_checked  # keyed chain, no chain key given: said so
    assert log.verify(chain_key=True).writers[writer.writer_id].content_checked
    assert log.verify(witness=False).ok


def test_records_after_the_last_checkpoint_are_reported_uncovered_not_failed(
    store: tuple[str, Tamper], tmp_path: Path
) -> None:
    log = Log(*store, tmp_path)
    log.write(10, close=False)  # still running: its last checkpoint covers 8
    report = log.verify()
    (writer,) = report.writers.values()
    assert report.ok and writer.covered == 8 and writer.uncovered == 2


@pytest.mark.parametrize("attack", ["edit", "delete", "insert", "reorder"])
def test_a_rechained_log_fails_under_the_signed_roots(
    store: tuple[str, Tamper], tmp_path: Path, attack: str
) -> None:
    """Recomputing the chain with the HMAC key fools the HMAC verify, never the signatures."""
    log = Log(*store, tmp_path)
    old = log.write(10)
    new = [dataclasses.replace(r) for r in old]
    if attack == "edit":
        new[5] = dataclasses.replace(new[5], response={"choices": [{"message": {"content": "forged"}}]})
    elif attack == "delete":
        del new[5]
    elif attack == "insert":
        new.insert(5, AuditRecord(session_key="s1", model="gpt-4o-mini", request={"forged": True}))
    else:
        new[5], new[6] = new[6], new[5]
    log.rechain(old, new)
    assert log.hmac_verify_ok()  # the HMAC chain alone sees nothing
    report = log.verify()
    assert not report.ok
    assert "under the signed root of checkpoint 2" in _problems(report)
    assert not log.verify(witness=False).ok  # the stored checkpoints alone are enough here


def test_an_edit_that_leaves_the_hash_is_caught_by_the_content_check(
    store: tuple[str, Tamper], tmp_path: Path
) -> None:
    log = Log(*store, tmp_path, keyed=False)
    old = log.write(6)
    log.tamper.update(old[2].id, model="gpt-4o")
    report = log.verify()
    (writer,) = report.writers.values()
    assert writer.modified == [old[2].id] and not report.ok


def test_an_inserted_record_after_the_final_checkpoint_is_reported(
    store: tuple[str, Tamper], tmp_path: Path
) -> None:
    log = Log(*store, tmp_path)
    old = log.write(5)
    key = CHAIN_KEY.encode()
    chain = Chain(key, writer_id=old[0].writer_id)
    sealed = chain.seal([*[dataclasses.replace(r) for r in old], AuditRecord(session_key="s1", model="m")])
    log.tamper.insert(sealed[-1])
    report = log.verify()
    assert "after the writer's final checkpoint" in _problems(report)


def test_a_cut_tail_with_its_checkpoints_removed_is_caught_by_the_witness(
    store: tuple[str, Tamper], tmp_path: Path
) -> None:
    log = Log(*store, tmp_path)
    old = log.write(10)
    log.tamper.delete(*[r.id for r in old[6:]])
    kept = [c for c in log.stored.checkpoints() if c.tree_size <= 6]
    log.rewrite_stored_checkpoints(kept)
    without = log.verify(witness=False)
    assert without.ok and without.writers[old[0].writer_id].covered == 4  # looks like a shorter log
    report = log.verify()
    assert not report.ok
    problems = _problems(report)
    assert "checkpoint 2: missing from the store" in problems
    assert "records removed under the signed root of checkpoint 2 (tree size 8): seq 7-8" in problems


def test_checkpoints_rewritten_by_the_attacker_are_caught(store: tuple[str, Tamper], tmp_path: Path) -> None:
    """The attacker rechains an edit and signs new checkpoints with a key of their own."""
    log = Log(*store, tmp_path)
    old = log.write(8)
    new = [dataclasses.replace(r) for r in old]
    new[1] = dataclasses.replace(new[1], model="cheaper-model")
    resealed = log.rechain(old, new)
    theirs = SigningKey.generate()
    forged: list[Checkpoint] = []
    emitter = CheckpointEmitter(
        resealed[0].writer_id or "",
        theirs,
        chain_keyed=True,
        every_records=EVERY,
        clock=Clock(),
        publish=forged.append,
    )
    for record in resealed:
        emitter.add(record.hash or "")
    emitter.close()
    log.rewrite_stored_checkpoints(forged)
    report = log.verify()
    problems = _problems(report)
    assert "signed by an unknown key" in problems and "rewritten in the store" in problems
    assert "under the signed root of checkpoint 1" in problems
    # the same forged checkpoints with the real key id but no valid signature
    relabelled = [dataclasses.replace(c, key_id=log.key.key_id) for c in forged]
    log.rewrite_stored_checkpoints(relabelled)
    assert "the signature does not verify" in _problems(log.verify(witness=False))


def test_a_checkpoint_removed_from_the_middle_of_the_stores_copy_is_seen(
    store: tuple[str, Tamper], tmp_path: Path
) -> None:
    log = Log(*store, tmp_path)
    log.write(12)
    checkpoints = log.stored.checkpoints()
    log.rewrite_stored_checkpoints([c for c in checkpoints if c.n != 2])
    assert "checkpoint 2: missing (checkpoint 3 follows it)" in _problems(log.verify(witness=False))


def test_several_writers_each_have_their_own_tree(store: tuple[str, Tamper], tmp_path: Path) -> None:
    log = Log(*store, tmp_path)
    a = log.write(6, session="a")
    b = log.write(9, session="b")
    assert a[0].writer_id != b[0].writer_id
    report = log.verify()
    assert report.ok, report.to_json()
    assert {w: r.covered for w, r in report.writers.items()} == {a[0].writer_id: 6, b[0].writer_id: 9}
    log.tamper.delete(b[3].id)
    report = log.verify()
    assert report.writers[a[0].writer_id].ok and not report.writers[b[0].writer_id].ok


def test_key_rotation_keeps_old_checkpoints_verifiable(store: tuple[str, Tamper], tmp_path: Path) -> None:
    log = Log(*store, tmp_path)
    old = log.write(6, close=False)
    log.stored.path.write_bytes(b"")
    log.witness.path.write_bytes(b"")
    new_key = SigningKey.generate()
    made: list[Checkpoint] = []
    emitter = CheckpointEmitter(
        old[0].writer_id or "",
        log.key,
        chain_keyed=True,
        every_records=EVERY,
        clock=Clock(),
        publish=made.append,
    )
    for i, record in enumerate(old):
        if i == 5:
            emitter.rotate(new_key)
        emitter.add(record.hash or "")
    emitter.close()
    assert [c.key_id == new_key.key_id for c in made] == [False, False, True]
    log.rewrite_stored_checkpoints(made)
    both = {log.key.key_id: log.key.public, new_key.key_id: new_key.public}
    report = verify_signed(log.records(), made, both)
    assert report.ok and report.writers[old[0].writer_id].key_ids == sorted(both)
    assert not verify_signed(log.records(), made, log.keys).ok  # the new key is needed too


# -- proofs --------------------------------------------------------------------------------------


def _flips(document: dict[str, Any]) -> list[bytes]:
    """The proof's bytes with one bit flipped: every bit of every byte."""
    data = orjson.dumps(document)
    out = []
    for position in range(len(data)):
        for bit in range(8):
            changed = bytearray(data)
            changed[position] ^= 1 << bit
            out.append(bytes(changed))
    return out


def _verified(data: bytes, keys: Any, chain_key: bytes | None = None) -> bool:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and verify_proof(document, keys, chain_key=chain_key).ok


@pytest.mark.parametrize("keyed", [False, True])
def test_a_proof_verifies_offline_before_and_after_forget(
    store: tuple[str, Tamper], tmp_path: Path, keyed: bool
) -> None:
    log = Log(*store, tmp_path, keyed=keyed)
    log.write(5, session="other")
    target = log.write(7, session="dispute")[4]
    chain_key = CHAIN_KEY.encode() if keyed else None
    before = prove(target.id, log.records(), log.witness.checkpoints())
    result = verify_proof(before, log.keys, chain_key=chain_key)
    assert result.ok and result.content_checked and result.seq == 5 and result.tree_size == 7, result
    if keyed:
        bare = verify_proof(before, log.keys)
        assert bare.ok and not bare.content_checked and bare.notes
    assert "my-private-diagnosis" in orjson.dumps(before).decode()
    with llmaudit.open(log.url) as reader:
        reader.forget(session="dispute", key=log.chain_key)
    after = prove(target.id, log.records(), log.witness.checkpoints())
    assert "my-private-diagnosis" not in orjson.dumps(after).decode()
    assert after["leaf_hash"] == before["leaf_hash"] and after["audit_path"] == before["audit_path"]
    result = verify_proof(after, log.keys, chain_key=chain_key)
    assert result.ok and "request" in result.erased and "session_key" in result.erased
    assert verify_signed(log.records(), log.stored.checkpoints(), log.keys).ok  # forget breaks nothing
    assert verify_proof(before, log.keys, chain_key=chain_key).ok  # the old proof still holds


def test_a_proof_with_one_bit_changed_anywhere_fails(tmp_path: Path) -> None:
    """Every single-bit change of the proof's bytes (unused base64 bits, hex case, a field's name
    included) fails it. One backend: the proof is the same on every one."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = Log(url, Tamper("sql", url, None), tmp_path, keyed=False)
    target = log.write(6)[2]
    proof = prove(target.id, log.records(), log.witness.checkpoints())
    assert _verified(orjson.dumps(proof), log.keys)
    failed = [flip for flip in _flips(proof) if _verified(flip, log.keys)]
    assert failed == []


def test_a_proof_needs_a_checkpoint_covering_the_record(store: tuple[str, Tamper], tmp_path: Path) -> None:
    log = Log(*store, tmp_path)
    records = log.write(6, close=False)  # checkpoint 1 covers seq 1-4 only
    proof = prove(records[1].id, log.records(), log.witness.checkpoints())
    assert verify_proof(proof, log.keys).tree_size == 4
    # private: VerificationError is not re-exported by llmaudit yet (only by llmaudit._errors)
    with pytest.raises(llmaudit._errors.VerificationError, match="covers seq 6"):
        prove(records[5].id, log.records(), log.witness.checkpoints())


def test_consistency_between_the_checkpoints_of_a_long_run(tmp_path: Path) -> None:
    log = Log(
        f"sqlite:///{tmp_path / 'audit.db'}",
        Tamper("sql", f"sqlite:///{tmp_path / 'audit.db'}", None),
        tmp_path,
    )
    log.write(45)
    checkpoints = read_checkpoints(log.witness.path)
    records = log.records()
    assert len(checkpoints) == 12
    for i, first in enumerate(checkpoints):
        for second in checkpoints[i:]:
            proof = prove_consistency(first, second, records)
            assert verify_consistency_proof(proof, log.keys).ok, (first.n, second.n)
    proof = prove_consistency(checkpoints[2], checkpoints[9], records)
    data = orjson.dumps(proof)
    for position in range(0, len(data), 5):
        changed = bytearray(data)
        changed[position] ^= 1
        try:
            document = orjson.loads(bytes(changed))
        except orjson.JSONDecodeError:
            continue
        assert not (isinstance(document, dict) and verify_consistency_proof(document, log.keys).ok), position
    forked = dict(proof, second={**proof["second"], "root_hash": proof["first"]["root_hash"]})
    assert not verify_consistency_proof(forked, log.keys).ok


# -- without a store: the tree's own cases -------------------------------------------------------


def _sealed(n: int) -> list[AuditRecord]:
    return Chain(None, writer_id="w").seal(_records(n))


def test_two_signed_trees_that_do_not_extend_each_other_are_a_fork() -> None:
    """The signer itself signed checkpoint 1 over other leaves than checkpoint 2 extends."""
    key = SigningKey.generate()
    records = _sealed(8)
    tree = MerkleTree()
    for r in records:
        tree.add_chain_hash(r.hash or "")
    other = MerkleTree()
    for r in _sealed(4):  # same positions, other records
        other.add_chain_hash((r.hash or "") + "x")
    first = Checkpoint("w", 1, 4, other.root().hex(), records[3].hash or "", False, "t", GENESIS, "").signed(
        key
    )
    second = Checkpoint(
        "w", 2, 8, tree.root().hex(), records[7].hash or "", False, "t", first.digest(), ""
    ).signed(key)
    report = verify_signed(records, [first, second], {key.key_id: key.public})
    problems = _problems(report)
    assert "checkpoint 2's tree does not extend checkpoint 1's" in problems
    assert "under the signed root of checkpoint 1" in problems


def test_a_pruned_prefix_is_checked_from_its_frontier() -> None:
    key = SigningKey.generate()
    records = _sealed(12)
    made: list[Checkpoint] = []
    emitter = CheckpointEmitter(
        "w", key, chain_keyed=False, every_records=EVERY, clock=Clock(), publish=made.append
    )
    emitter.add_many([r.hash or "" for r in records])
    prefix = MerkleTree()
    for r in records[:6]:  # what prune keeps of the 6 records it deletes
        prefix.add_chain_hash(r.hash or "")
    keys = {key.key_id: key.public}
    kept = records[6:]
    assert not verify_signed(kept, made, keys).ok  # without the frontier: records removed
    report = verify_signed(kept, made, keys, pruned={"w": prefix})
    assert report.ok, report.to_json()
    (writer,) = report.writers.values()
    assert writer.covered == 6 and any("pruned records only" in w for w in writer.warnings)
    forged = MerkleTree(prefix.size, [bytes(32)] * len(prefix.frontier))
    assert not verify_signed(kept, made, keys, pruned={"w": forged}).ok
    edited = [*kept[:2], dataclasses.replace(kept[2], hash="v2:" + "0" * 64), *kept[3:]]
    assert not verify_signed(edited, made, keys, pruned={"w": prefix}).ok
