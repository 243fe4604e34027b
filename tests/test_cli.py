"""The command line as a user meets it today: demo, path, spool replay and its error handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from llmaudit import AuditRecord, Query, open_storage
from llmaudit.cli import cli, main

# private: writer internals (settings, spool, frames, signal hooks) that no public API exposes
from llmaudit.pipeline.settings import data_dir
from llmaudit.pipeline.spool import Spool


def test_demo_records_into_the_embedded_store_and_prints_the_sessions() -> None:
    """`llmaudit demo` with no options runs the offline app through the transport, sessions and the
    decorator, writes to the default SQLite store, and shows both users' sessions."""
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    url = f"sqlite:///{data_dir() / 'audit.db'}"
    assert f"Recorded 8 records into {url}" in result.output
    assert "user=alice" in result.output
    assert "tool call lookup_order" in result.output
    assert "2 sessions" in result.output and "stats by client, model" in result.output
    assert "$0.000027" in result.output  # gpt-4o-mini's price for the demo's 81 + 25 tokens
    assert "llmaudit verify" in result.output and "llmaudit show demo-bob-" in result.output
    store = open_storage(url)
    try:
        http = list(store.read(Query(client="demo-support-bot", source="transport")))
        functions = list(store.read(Query(source="decorator")))
    finally:
        store.close()
    assert sorted(r.status_code or 0 for r in http) == [200, 200, 200, 429]
    assert sum(r.is_stream for r in http) == 1
    assert {r.parent_id for r in http} == {r.id for r in functions}
    assert {r.user for r in http} == {"alice", "bob"}


def test_path_prints_the_storage_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`llmaudit path` tells where the log is; LLMAUDIT_STORAGE changes it."""
    monkeypatch.setenv("LLMAUDIT_STORAGE", "jsonl:///var/log/llm")
    result = CliRunner().invoke(cli, ["path"])
    assert result.stdout.strip() == "jsonl:///var/log/llm"


def test_a_bad_storage_url_is_one_line_and_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A user mistake prints one clear line, no traceback, and exits 1."""
    with pytest.raises(SystemExit) as info:
        main(["demo", "--storage", "nosuch://user:pw@x/y"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown storage scheme 'nosuch'" in err
    assert "pw@" not in err


def test_spool_replay_writes_waiting_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`llmaudit spool replay` empties the spool into the storage."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    monkeypatch.setenv("LLMAUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    spool = Spool(tmp_path / "spool")
    spool.append([AuditRecord(session_key="spooled")])
    spool.release()
    result = CliRunner().invoke(cli, ["spool", "replay", "-s", url])
    assert result.exit_code == 0, result.output
    assert "replayed 1 records" in result.output
    store = open_storage(url)
    try:
        assert [r.session_key for r in store.read(Query())] == ["spooled"]
    finally:
        store.close()
