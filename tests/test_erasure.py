"""Erasure (issue 16, items 5 and 12): `forget` removes every trace of the data subject's text from
every file and table while the log still verifies, keyed and unkeyed, on JSONL, SQLite, PostgreSQL
and MariaDB; a log sealed before hashing version 2 still verifies; and `verify` lists each erased
record (id, time, fields) and tells an erasure made with the chain key from a forged one."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from tests.conftest import backends, store_url_for

import llmaudit
from llmaudit import AuditRecord, ConfigurationError
from llmaudit.cli import cli

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import Chain, compute_hash, hash_version, payload_digest
from llmaudit.storage.jsonl import JSONLStorage
from llmaudit.storage.sql import SQLStorage

#: In every field of the subject's records; must be found nowhere after `forget`.
TOKEN = "zq7subj"
KEY = "erasure-chain-key-FAKE"
FIXTURES = Path(__file__).parent / "fixtures" / "chain_v1"
START = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _subject(i: int, session: str = f"{TOKEN}-session", parent: str | None = None) -> AuditRecord:
    """A record carrying the subject's text in every field that can hold it."""
    return AuditRecord(
        created_at=START + timedelta(seconds=i),
        session_key=session,
        parent_session_key=parent,
        user=f"{TOKEN}-user",
        tags=(f"{TOKEN}-tag",),
        metadata={"ticket": f"{TOKEN}-meta"},
        client="support-bot",
        provider="openai",
        operation="chat.completions",
        model="gpt-4o-mini",
        method="POST",
        url=f"https://api.example.test/v1/chat?thread={TOKEN}-url",
        headers={"request": {"user-agent": f"app/{TOKEN}-agent"}},
        request={"messages": [{"role": "user", "content": f"my name is {TOKEN}-prompt {i}"}]},
        response={"choices": [{"message": {"content": f"hello {TOKEN}-answer"}}]},
        input_text=f"user: my name is {TOKEN}-prompt {i}",
        output_text=f"hello {TOKEN}-answer",
        tool_calls=({"name": "lookup", "arguments": f'{{"who":"{TOKEN}-argument"}}', "id": "call_1"},),
        status_code=500,
        error=f"RuntimeError: failed for {TOKEN}-error",
        notes=(f"{TOKEN}-note",),
        input_tokens=10 + i,
    )


def _other(i: int) -> AuditRecord:
    return AuditRecord(
        created_at=START + timedelta(seconds=100 + i),
        session_key="other-session",
        user="bob",
        request={"messages": [{"role": "user", "content": f"bob asks {i}"}]},
        response={"choices": [{"message": {"content": "fine"}}]},
    )


def _write(url: str, records: list[AuditRecord], tmp_path: Path) -> None:
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        for record in records:
            auditor.submit(record)


@pytest.fixture(
    params=[
        *backends("jsonl", "sqlite", "postgres", "mariadb"),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    return request.param, store_url_for(request.param, request, tmp_path)


def _stored_text(kind: str, url: str, tmp_path: Path) -> bytes:
    """Every byte the store and the spool hold: all files under tmp_path (JSONL files, chain heads,
    the SQLite database with its WAL, the spool's rejected files) and, for a server, every column
    of every row of the records table."""
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    if kind not in ("postgres", "mariadb"):
        return files
    store = SQLStorage(url)
    try:
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        with store._engine.connect() as conn:
            rows = conn.execute(sa.select(store.table)).all()
    finally:
        store.close()
    assert rows
    return files + "\n".join(repr(tuple(row)) for row in rows).encode()


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_forget_leaves_no_text_of_the_subject_in_any_file_or_table(
    backend: tuple[str, str], keyed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every field of AuditRecord that can hold the subject's text (request, response, metadata,
    headers, session_key, parent_session_key, user, url, error, tags, notes) is erased, in the
    store, its WAL and the spool's rejected file; the log still verifies; `sessions` no longer
    finds the user, but the erased records still group under one marker."""
    kind, url = backend
    if keyed:
        monkeypatch.setenv("LLMAUDIT_CHAIN_KEY", KEY)
    else:
        monkeypatch.delenv("LLMAUDIT_CHAIN_KEY", raising=False)
    records = [_subject(i) for i in range(3)] + [_subject(3, session=f"{TOKEN}-nested", parent=None)]
    _write(url, records + [_other(i) for i in range(2)], tmp_path)
    spool = llmaudit.pipeline.spool.Spool(tmp_path / "spool")
    spool.reject(Chain(KEY.encode() if keyed else None).seal([_subject(9)]))  # refused once, kept
    spool.release()
    assert TOKEN.encode() in _stored_text(kind, url, tmp_path)

    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        result = reader.forget(user=f"{TOKEN}-user")
        report = reader.verify()
        by_user = reader.sessions(user=f"{TOKEN}-user")
        erased = [r for r in reader.records() if r.user != "bob"]
        kept = [r for r in reader.records() if r.user == "bob"]
        grouped = {s.key: s.calls for s in reader.sessions()}

    assert (result.erased, result.legacy, result.unverified) == (4, (), ())
    assert TOKEN.encode() not in _stored_text(kind, url, tmp_path)
    assert report.ok and report.keyed is keyed, report.to_json()
    assert report.totals()["verified"] == 6 and report.totals()["erased"] == 4
    assert by_user == []
    listed = CliRunner().invoke(cli, ["sessions", "-s", url, "--user", f"{TOKEN}-user", "--json"])
    assert listed.exit_code == 0 and listed.output == "", listed.output
    assert len({r.user for r in erased}) == 1 and erased[0].user.startswith("erased:")  # type: ignore[union-attr]
    assert sorted(grouped.values()) == [1, 2, 3]  # the erased sessions still group as before
    assert all(
        r.request == {"messages": [{"role": "user", "content": f"bob asks {i}"}]} for i, r in enumerate(kept)
    )
    status = "authenticated" if keyed else "unchecked"
    assert {e.status for e in report.erasures} == {status}


def test_forget_of_a_session_reaches_its_nested_sessions(tmp_path: Path) -> None:
    """A nested session's records name the forgotten session in parent_session_key: they go too."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    outer = f"{TOKEN}-outer"
    _write(url, [_subject(0, session=outer), _subject(1, session="inner", parent=outer), _other(0)], tmp_path)
    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        result = reader.forget(session=outer)
        report = reader.verify()
        parents = {r.parent_session_key for r in reader.records()}
        sessions = {r.session_key for r in reader.records()}
    assert result.erased == 2 and report.ok, report.to_json()
    assert outer not in parents and outer not in sessions and "inner" not in sessions
    # a parent and its session erase to the same marker: the nesting is still visible
    assert {p for p in parents if p} <= sessions


@pytest.mark.parametrize("kind", ["keyed", "unkeyed"])
def test_a_log_sealed_before_hashing_version_2_still_verifies_and_forgets_its_payloads(
    kind: str, tmp_path: Path
) -> None:
    """The fixture was written by llmaudit before this change (hashing version 1, one record already
    erased): it verifies, keyed and unkeyed; `forget` erases what version 1 can erase (the payloads)
    and says which records keep their other fields."""
    root = tmp_path / "log"
    shutil.copytree(FIXTURES / kind, root)
    key = "fixture-chain-key-FAKE" if kind == "keyed" else None
    url = f"jsonl://{root}"
    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        before = reader.verify(key)
        assert all(hash_version(r) == 1 for r in reader.records())
        result = reader.forget(user="v1-alice", key=key)
        after = reader.verify(key)
    assert before.ok and before.totals()["verified"] == 4, before.to_json()
    assert [(e.id[-1], e.at, e.fields) for e in before.erasures] == [
        ("3", "2026-11-21T09:00:00.000000Z", ("metadata", "request", "response"))
    ]
    assert before.erasures[0].status == ("legacy" if key else "unchecked")
    assert result.erased == 3 and len(result.legacy) == 3
    assert after.ok and after.totals()["erased"] == 4, after.to_json()
    text = b"".join(p.read_bytes() for p in root.glob("*.jsonl"))
    assert b"v1 question" not in text and b"v1 answer" not in text and b"v1-meta" not in text


def _keyed_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[AuditRecord]]:
    monkeypatch.setenv("LLMAUDIT_CHAIN_KEY", KEY)
    url = f"sqlite:///{tmp_path / 'k.db'}"
    _write(url, [_subject(i) for i in range(3)], tmp_path)
    with llmaudit.open(url) as reader:
        return url, list(reader.records())


def _update(url: str, record_id: str, **values: Any) -> None:
    """Edit a row behind llmaudit's back (a plain UPDATE: no chain, no MAC)."""
    store = SQLStorage(url)
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with store._engine.begin() as conn:
        conn.execute(store.table.update().where(store.table.c.id == record_id).values(**values))
    store.close()


def test_verify_lists_erased_records_with_time_and_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Reader.verify` and `llmaudit verify` (text and --json) name each erased record, when it was
    erased and which fields, not only a count."""
    url, records = _keyed_store(tmp_path, monkeypatch)
    with llmaudit.open(url) as reader:
        reader.forget(ids=[records[1].id])
        report = reader.verify()
    (erasure,) = report.erasures
    assert erasure.id == records[1].id and erasure.status == "authenticated"
    assert erasure.fields == (
        "error", "headers", "input_text", "metadata", "notes", "output_text", "request", "response",
        "session_key", "tags", "tool_calls", "url", "user",
    )  # fmt: skip
    assert datetime.fromisoformat(erasure.at.replace("Z", "+00:00")) > START  # type: ignore[union-attr]
    runner = CliRunner()
    text = runner.invoke(cli, ["verify", "-s", url])
    assert text.exit_code == 0, text.output
    assert f"{records[1].id}  erased {erasure.at}  fields: error, headers," in text.output
    assert "erasure authenticated by the chain key" in text.output
    as_json = orjson.loads(runner.invoke(cli, ["verify", "-s", url, "--json"]).output)
    assert as_json["erasures"] == [erasure.to_json()] and as_json["keyed"] is True


def test_a_forged_erasure_is_told_apart_with_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone who can write the database but has no key replaces a payload by a hand-made tombstone
    (its digest right, so the chain hash still fits), or moves an erasure's time: a keyed verify
    reports both as forged erasures and fails."""
    url, records = _keyed_store(tmp_path, monkeypatch)
    with llmaudit.open(url) as reader:
        reader.forget(ids=[records[0].id])
        moved = reader.get(records[0].id)
    assert moved is not None and isinstance(moved.request, dict)
    _update(url, records[0].id, request={**moved.request, "at": "2020-01-01T00:00:00.000000Z"})
    stone = {
        "erased": True,
        "sha256": payload_digest(records[2].response),
        "at": "2026-12-01T00:00:00.000000Z",
    }
    _update(url, records[2].id, response=stone)
    with llmaudit.open(url) as reader:
        report = reader.verify()
    assert not report.ok and report.totals()["modified"] == 0  # the chain hashes still fit
    assert {e.id: e.status for e in report.erasures} == {
        records[0].id: "forged",
        records[2].id: "unauthenticated",
    }
    assert report.totals()["forged_erasures"] == 2
    out = CliRunner().invoke(cli, ["verify", "-s", url])
    assert out.exit_code == 1 and out.output.startswith("FAILED")
    assert "0 modified" in out.output and "2 forged erasures" in out.output
    assert "FORGED" in out.output and "NOT AUTHENTICATED" in out.output


def test_without_a_key_verify_says_what_it_cannot_tell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMAUDIT_CHAIN_KEY", raising=False)
    url = f"jsonl://{tmp_path / 'log'}"
    _write(url, [_subject(0), _subject(1)], tmp_path)
    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        reader.forget(session=f"{TOKEN}-session")
    out = CliRunner().invoke(cli, ["verify", "-s", url])
    assert out.exit_code == 0, out.output
    assert out.output.count("[not authenticated: no chain key]") == 2
    assert "not who erased it or when" in out.output


def test_forget_needs_the_key_of_a_keyed_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Erasing with the wrong key (or none) would write markers whose digests never verify: forget
    refuses, and erases anyway only when forced, naming the records it could not check."""
    url, records = _keyed_store(tmp_path, monkeypatch)
    monkeypatch.delenv("LLMAUDIT_CHAIN_KEY")
    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        with pytest.raises(ConfigurationError, match="do not verify with no chain key"):
            reader.forget(ids=[records[0].id])
        assert reader.get(records[0].id) == records[0]  # nothing was erased
        result = reader.forget(ids=[records[0].id], key="wrong-key", force=True)
        assert result.unverified == (records[0].id,)
        assert TOKEN not in str(reader.get(records[0].id))


def test_the_hash_names_its_version_and_covers_the_subjects_fields() -> None:
    """Sealed records carry hashing version 2; editing any text field of the subject is detected,
    and erasing it with the right key is not."""
    (record,) = Chain(KEY.encode()).seal([_subject(0)])
    assert record.hash is not None and record.hash.startswith("v2:") and hash_version(record) == 2
    for name in ("session_key", "user", "url", "error"):
        edited = AuditRecord(**{**_fields(record), name: "someone else"})
        assert compute_hash(edited, KEY.encode()) != record.hash, name
    # private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
    from llmaudit.integrity.chain import erasure_changes as _erasure

    erased = AuditRecord(**{**_fields(record), **_erasure(record, START, KEY.encode())})
    assert compute_hash(erased, KEY.encode()) == record.hash
    assert TOKEN not in repr(erased)


def _fields(record: AuditRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def test_fixture_is_what_hashing_version_1_wrote() -> None:
    """The fixture's hashes are bare hex (version 1), so the test above exercises the old format."""
    store = JSONLStorage(FIXTURES / "unkeyed")
    assert all(r.hash is not None and ":" not in r.hash for r in store.read())
    store.close()


def test_a_tombstone_with_a_mac_that_is_not_ascii_is_forged_not_a_crash() -> None:
    """The MAC is stored text anyone with write access can set: verify compares it as bytes."""
    import dataclasses

    # private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
    from llmaudit.integrity.chain import ChainState, tombstone
    from llmaudit.integrity.verify import verify_chain

    key = KEY.encode()
    (record,) = Chain(key, writer_id="w").seal([_subject(0)])
    stone = {
        **tombstone(record.request, START, key=key, record_id=record.id, name="request"),
        "mac": "é" * 64,
    }
    erased = dataclasses.replace(record, request=stone)
    report = verify_chain([erased], {"w": ChainState(1, record.hash or "")}, key)
    assert [e.status for e in report.erasures] == ["forged"] and not report.ok
