"""Signed checkpoints made by the real writer (thread and process) and stored beside the records on
JSONL, SQLite, PostgreSQL and MariaDB, checked with the public key alone: `llmaudit verify
--public-key --witness`, `llmaudit prove` + `verify-proof` from the store's own checkpoints, an
attacker who edits or deletes a record and rewrites the stored checkpoints caught by the witness,
and nothing at all without a signing key."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from tests.integrity.test_signed_log import store  # noqa: F401 - the four backends' fixture
from tests.test_chain import Tamper, _records

import llmaudit

# private: error classes, Checkpoint and SQLStorage, to build and tamper with what a store holds
from llmaudit._errors import ConfigurationError, LLMAuditError
from llmaudit.cli import cli
from llmaudit.integrity.checkpoints import Checkpoint
from llmaudit.storage import CheckpointStore, open_storage
from llmaudit.storage.sql.store import SQLStorage

EVERY = 4


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    if isinstance(result.exception, LLMAuditError):
        return 1, result.output + f"llmaudit: error: {result.exception}\n"
    return result.exit_code, result.output


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    code, out = _run("keys", "generate", "--out", str(tmp_path / "keys"))
    assert code == 0, out
    return tmp_path / "keys"


def _write(url: str, tmp: Path, keys: Path | None, n: int, **options: Any) -> list[llmaudit.AuditRecord]:
    if keys is not None:
        options.setdefault("signing_key", str(keys / "signing-key.pem"))
        options.setdefault("witness", str(tmp / "witness"))
        options.setdefault("checkpoint_every_records", EVERY)
    with llmaudit.Auditor(url, spool_dir=str(tmp / "spool"), handle_sigterm=False, **options) as auditor:
        for record in _records(n):
            auditor.submit(record)
    with llmaudit.open(url) as reader:
        return sorted(reader.records(), key=lambda r: r.seq or 0)


def _stored(url: str) -> list[Checkpoint]:
    with llmaudit.open(url) as reader:
        return reader.checkpoints()


def _verify(url: str, keys: Path, witness: Path | None) -> tuple[int, dict[str, Any]]:
    args = ["verify", "--storage", url, "--public-key", str(keys / "signing-key.pub.pem"), "--json"]
    if witness is not None:
        args += ["--witness", str(witness)]
    code, out = _run(*args)
    return code, orjson.loads(out.splitlines()[0])


def _drop_stored_checkpoints(url: str, tamper: Tamper) -> None:
    """The attacker rewrites the checkpoints kept beside the records (here: removes them all)."""
    if tamper.kind == "jsonl":
        assert tamper.root is not None
        (tamper.root / "checkpoints.jsonl").unlink()
        return
    sql = SQLStorage(url)
    # private: the store's own engine, to delete its checkpoints as an attacker would
    with sql._engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {sql.checkpoints_table.name}"))
    sql.close()


def test_the_writer_signs_checkpoints_that_the_public_key_and_the_witness_verify(
    store: tuple[str, Tamper],  # noqa: F811
    tmp_path: Path,
    keys: Path,
) -> None:
    url, _ = store
    records = _write(url, tmp_path, keys, 10)
    stored = _stored(url)
    assert [c.tree_size for c in stored] == [4, 8, 10]  # every 4, then the final one at shutdown
    assert stored[-1].final and stored[-1].chain_head == records[-1].hash
    witnessed = llmaudit.integrity.witness.read_checkpoints(tmp_path / "witness")
    assert [c.signature for c in witnessed] == [c.signature for c in stored]
    code, report = _verify(url, keys, tmp_path / "witness")
    assert code == 0, report
    assert report["ok"] is True


@pytest.mark.parametrize("attack", ["edit", "delete", "truncate", "insert"])
def test_tampering_with_the_stored_checkpoints_rewritten_is_caught_by_the_witness(
    store: tuple[str, Tamper],  # noqa: F811
    tmp_path: Path,
    keys: Path,
    attack: str,
) -> None:
    url, tamper = store
    records = _write(url, tmp_path, keys, 10)
    if attack == "edit":
        tamper.update(records[2].id, model="gpt-4o")
    elif attack == "delete":
        tamper.delete(records[6].id)
    elif attack == "truncate":
        tamper.delete(*(r.id for r in records[-2:]))
    else:  # a copy of a record under a new id, at the end of the chain
        tamper.insert(dataclasses.replace(records[4], id=records[4].id[:-4] + "beef", seq=11))
    _drop_stored_checkpoints(url, tamper)
    assert _stored(url) == []
    code, report = _verify(url, keys, tmp_path / "witness")
    assert code == 1
    assert report["ok"] is False
    code, report = _verify(url, keys, None)  # without the witness, nothing tells it
    assert code == 0


def test_prove_and_verify_proof_from_the_store_s_own_checkpoints(
    store: tuple[str, Tamper],  # noqa: F811
    tmp_path: Path,
    keys: Path,
) -> None:
    url, _ = store
    records = _write(url, tmp_path, keys, 6)
    proof = tmp_path / "proof.json"
    code, out = _run("prove", "--storage", url, records[3].id, "-o", str(proof))
    assert code == 0, out
    code, out = _run("verify-proof", str(proof), "--public-key", str(keys / "signing-key.pub.pem"))
    assert code == 0 and out.startswith("OK"), out
    with llmaudit.open(url) as reader:
        document = reader.prove(records[1].id)
    assert llmaudit.verify_proof(document, keys / "signing-key.pub.pem").ok
    document["record"]["model"] = "gpt-4o"
    assert not llmaudit.verify_proof(document, keys / "signing-key.pub.pem").ok


def test_the_process_writer_signs_in_its_child(tmp_path: Path, keys: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    records = _write(url, tmp_path, keys, 9, writer="process")
    assert len(records) == 9
    stored = _stored(url)
    assert stored and stored[-1].tree_size == 9 and stored[-1].final
    assert {c.writer_id for c in stored} == {records[0].writer_id}
    code, report = _verify(url, keys, tmp_path / "witness")
    assert code == 0, report


def test_without_a_signing_key_nothing_changes(
    store: tuple[str, Tamper],  # noqa: F811
    tmp_path: Path,
) -> None:
    url, tamper = store
    records = _write(url, tmp_path, None, 5)
    assert len(records) == 5
    assert _stored(url) == []
    if tamper.kind == "jsonl":
        assert tamper.root is not None
        assert not (tamper.root / "checkpoints.jsonl").exists()
    with llmaudit.open(url) as reader:
        assert reader.verify().ok


def test_a_failing_witness_never_reaches_the_caller(
    tmp_path: Path, keys: Path, expect_internal_errors: list[Any]
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    false = shutil.which("false")
    assert false is not None
    records = _write(url, tmp_path, keys, 6, witness=f"command:{false}")
    assert len(records) == 6
    assert [c.tree_size for c in _stored(url)] == [4, 6]  # the store's copy is kept all the same
    assert any("checkpoints" in r.getMessage() for r in expect_internal_errors)


def test_a_storage_that_refuses_a_checkpoint_is_offered_it_again(
    keys: Path, expect_internal_errors: list[Any]
) -> None:
    # private: the checkpointer itself, driven by hand against a store that refuses
    from llmaudit.integrity.keys import load_signing_key
    from llmaudit.pipeline.checkpointing import Checkpointer, Checkpointing
    from llmaudit.storage.memory import MemoryStorage

    class Flaky(MemoryStorage):
        refuse = True

        def write_checkpoints(self, checkpoints: Any) -> None:
            if self.refuse:
                raise OSError("disk full")
            super().write_checkpoints(checkpoints)

    storage = Flaky()
    assert isinstance(storage, CheckpointStore)
    signer = load_signing_key(keys / "signing-key.pem")
    checkpointer = Checkpointer(Checkpointing(signer, every_records=2), storage, "w1", chain_keyed=False)
    chain = llmaudit.integrity.chain.Chain(writer_id="w1")
    sealed = chain.seal(_records(5))
    checkpointer.sealed(sealed[:2])  # refused
    assert checkpointer.errors == 1 and storage.read_checkpoints() == []
    assert expect_internal_errors
    storage.refuse = False
    checkpointer.sealed(sealed[3:])  # out of order: waits for seq 3, makes nothing yet
    assert storage.read_checkpoints() == []
    checkpointer.tick()  # idle: the refused one is offered again
    assert [c.tree_size for c in storage.read_checkpoints()] == [2]
    checkpointer.sealed(sealed[2:3])
    checkpointer.close()
    assert [c.tree_size for c in storage.read_checkpoints()] == [2, 4, 5]
    assert storage.read_checkpoints()[-1].chain_head == sealed[-1].hash


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"signing_key": "/nonexistent/key.pem"}, "signing key"),
        ({"witness": "/tmp/w"}, "needs a signing_key"),
        ({"checkpoint_every_records": 0}, "checkpoint_every_records="),
        ({"checkpoint_every_s": -1}, "checkpoint_every_s="),
        ({"signing_key": 3}, "signing_key=<hidden>"),
    ],
)
def test_bad_checkpoint_settings_fail_at_configure(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        llmaudit.configure("memory://", **options)


def test_the_settings_have_environment_twins(
    tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMAUDIT_SIGNING_KEY", (keys / "signing-key.pem").read_text())
    monkeypatch.setenv("LLMAUDIT_WITNESS", str(tmp_path / "w"))
    monkeypatch.setenv("LLMAUDIT_CHECKPOINT_EVERY_RECORDS", "2")
    monkeypatch.setenv("LLMAUDIT_CHECKPOINT_EVERY_S", "30")
    url = f"jsonl://{tmp_path / 'log'}"
    auditor = llmaudit.configure(url, handle_sigterm=False, spool_dir=str(tmp_path / "spool"))
    for record in _records(3):
        auditor.submit(record)
    llmaudit.shutdown()
    assert [c.tree_size for c in _stored(url)] == [2, 3]
    assert len(llmaudit.integrity.witness.read_checkpoints(tmp_path / "w")) == 2


def test_a_store_opened_again_keeps_its_checkpoints_idempotently(tmp_path: Path, keys: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _write(url, tmp_path, keys, 5)
    stored = _stored(url)
    storage = open_storage(url)
    assert isinstance(storage, CheckpointStore)
    storage.write_checkpoints(stored)  # the same (writer_id, n) again: kept as it was
    storage.close()
    assert _stored(url) == stored
