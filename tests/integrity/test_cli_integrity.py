"""The command line of signed checkpoints: `keys generate`, `prove`, `verify-proof` and
`verify --public-key [--witness] [--checkpoints]`, their exit codes and --json."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from tests.integrity.test_signed_log import Log
from tests.test_chain import Tamper

from llmaudit import LLMAuditError
from llmaudit.cli import cli

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.keys import load_signing_key


@pytest.fixture
def log(tmp_path: Path) -> Log:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    made = Log(url, Tamper("sql", url, None), tmp_path, keyed=False)
    keys = CliRunner().invoke(cli, ["keys", "generate", "--out", str(tmp_path / "keys")])
    assert keys.exit_code == 0, keys.output
    made.key = load_signing_key(tmp_path / "keys" / "signing-key.pem")
    made.keys = {made.key.key_id: made.key.public}
    made.write(6)
    return made


def _run(*args: str) -> tuple[int, str]:
    """Exit code and output, an llmaudit error shown as `main` shows it."""
    result = CliRunner().invoke(cli, list(args))
    if isinstance(result.exception, LLMAuditError):
        return 1, result.output + f"llmaudit: error: {result.exception}\n"
    return result.exit_code, result.output


def test_keys_generate_writes_the_pair_and_prints_the_key_id(tmp_path: Path) -> None:
    code, out = _run("keys", "generate", "--out", str(tmp_path / "k"))
    assert code == 0
    private = tmp_path / "k" / "signing-key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert load_signing_key(private).key_id in out
    code, out = _run("keys", "generate", "--out", str(tmp_path / "k"))
    assert code == 1 and "not overwriting" in out


def test_keys_generate_encrypts_with_a_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_PASSPHRASE", "fake-passphrase")
    code, _ = _run("keys", "generate", "--out", str(tmp_path / "k"), "--passphrase-env", "MY_PASSPHRASE")
    assert code == 0
    assert load_signing_key(tmp_path / "k" / "signing-key.pem", b"fake-passphrase")
    code, out = _run("keys", "generate", "--out", str(tmp_path / "k2"), "--passphrase-env", "UNSET_VAR_X")
    assert code == 1 and "not set" in out


def test_prove_then_verify_proof_offline(log: Log, tmp_path: Path) -> None:
    target = log.records()[2]
    proof = tmp_path / "proof.json"
    pub = str(tmp_path / "keys" / "signing-key.pub.pem")
    code, out = _run(
        "prove", target.id, "-s", log.url, "--checkpoints", str(log.stored.path), "-o", str(proof)
    )
    assert code == 0, out
    assert stat.S_IMODE(proof.stat().st_mode) == 0o600
    code, out = _run("verify-proof", str(proof), "--public-key", pub)
    assert code == 0 and out.startswith("OK: record " + target.id), out
    code, out = _run("verify-proof", str(proof), "--public-key", pub, "--json")
    assert orjson.loads(out)["ok"] is True and orjson.loads(out)["content_checked"] is True
    document = orjson.loads(proof.read_bytes())
    document["record"]["model"] = "another"
    proof.write_bytes(orjson.dumps(document))
    code, out = _run("verify-proof", str(proof), "--public-key", pub)
    assert code == 1 and "FAILED" in out and "content does not give its hash" in out
    code, out = _run("verify-proof", str(tmp_path / "absent.json"), "--public-key", pub)
    assert code == 1


def test_prove_consistency_between_two_checkpoints(log: Log, tmp_path: Path) -> None:
    pub = str(tmp_path / "keys" / "signing-key.pub.pem")
    proof = tmp_path / "consistency.json"
    code, out = _run(
        "prove",
        "--consistency",
        "1",
        "2",
        "-s",
        log.url,
        "--checkpoints",
        str(log.stored.path),
        "-o",
        str(proof),
    )
    assert code == 0, out
    code, out = _run("verify-proof", str(proof), "--public-key", pub)
    assert code == 0 and "OK: consistency" in out
    code, out = _run("prove", "--consistency", "1", "-s", log.url, "--checkpoints", str(log.stored.path))
    assert code != 0
    code, out = _run("prove", "--consistency", "1", "x", "-s", log.url, "--checkpoints", str(log.stored.path))
    assert code != 0 and "WRITER_ID:N" in out


def test_verify_with_the_public_key_and_the_witness(log: Log, tmp_path: Path) -> None:
    pub = str(tmp_path / "keys" / "signing-key.pub.pem")
    base = ["verify", "-s", log.url, "--public-key", pub, "--witness", str(log.witness.path)]
    code, out = _run(*base, "--checkpoints", str(log.stored.path))
    assert code == 0 and out.startswith("OK: 6 records from 1 writers; 6 covered"), out
    code, out = _run(*base)  # without --checkpoints: the store's own copy, which has none here
    assert code == 1 and "missing from the store (the witness has it)" in out, out
    log.tamper.delete(log.records()[3].id)
    code, out = _run(*base, "--checkpoints", str(log.stored.path), "--json")
    report = orjson.loads(out)
    assert code == 1 and report["ok"] is False
    (writer,) = report["by_writer"].values()
    assert any("records removed" in p for p in writer["problems"])


def test_verify_public_key_alone_reads_the_store_s_checkpoints_and_the_reverse(
    log: Log, tmp_path: Path
) -> None:
    pub = str(tmp_path / "keys" / "signing-key.pub.pem")
    code, out = _run("verify", "-s", log.url, "--public-key", pub)  # none stored: nothing covered
    assert code == 0 and "0 covered" in out and "6 after the last checkpoint" in out, out
    code, out = _run("verify", "-s", log.url, "--witness", str(log.witness.path))
    assert code == 1 and "--public-key" in out


def test_stored_text_in_checkpoints_is_shown_escaped(log: Log, tmp_path: Path) -> None:
    """A writer id is stored data: a terminal escape in it is never printed raw."""
    pub = str(tmp_path / "keys" / "signing-key.pub.pem")
    (record,) = [r for r in log.records() if r.seq == 1]
    log.tamper.update(record.id, writer_id="evil\x1b[2J")
    code, out = _run("verify", "-s", log.url, "--public-key", pub, "--witness", str(log.witness.path))
    assert code == 1 and "\x1b" not in out


def test_without_cryptography_the_commands_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    for name in [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import cryptography...` fail
    monkeypatch.setitem(sys.modules, "cryptography", None)
    monkeypatch.delitem(sys.modules, "llmaudit.integrity.keys", raising=False)
    code, out = _run("keys", "generate", "--out", str(tmp_path / "k"))
    assert code == 1 and "llmaudit-sdk[signing]" in out
