"""The read-side commands through the CLI runner: sessions, show, tail, stats, export, aggregate,
db upgrade; tables for people, JSON lines for programs, clear errors for bad input."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli, main

# private: the backend classes, built directly to inspect or tamper with their tables and files
from llmaudit.storage.sql import migrations as _migrations

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _seed(url: str, tmp_path: Path) -> list[AuditRecord]:
    records = [
        AuditRecord(
            created_at=NOW - timedelta(minutes=30 - i),
            session_key="sess-alice" if i < 3 else "sess-bob",
            user="alice" if i < 3 else "bob",
            client="support-bot",
            provider="openai",
            model="gpt-4o-mini",
            request={
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": f"Question number {i}?"},
                ],
            },
            response={
                "choices": [
                    {
                        "message": {
                            "role": "assistant",
                            "content": f"Answer number {i}." if i != 2 else None,
                            "tool_calls": [
                                {"function": {"name": "lookup_order", "arguments": '{"id": "A-17"}'}}
                            ]
                            if i == 2
                            else None,
                        }
                    }
                ]
            },
            status_code=429 if i == 4 else 200,
            duration_ms=100.0 * (i + 1),
            input_tokens=10 * (i + 1),
            output_tokens=i + 1,
            cost_usd=0.001 * (i + 1),
        )
        for i in range(5)
    ]
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        for record in records:
            auditor.submit(record)
    return records


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    _seed(url, tmp_path)
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sessions_table_and_json(url: str) -> None:
    table = run("sessions", "-s", url)
    assert table.exit_code == 0, table.output
    assert "2 sessions" in table.output
    bob_line = next(line for line in table.output.splitlines() if "sess-bob" in line)
    assert "bob" in bob_line and "$0.009000" in bob_line  # 0.004 + 0.005
    rows = [json.loads(line) for line in run("sessions", "-s", url, "--json").output.splitlines()]
    assert [r["session_key"] for r in rows] == ["sess-bob", "sess-alice"]  # most recent first
    assert rows[0]["errors"] == 1 and rows[1]["calls"] == 3 and rows[1]["input_tokens"] == 60
    only_alice = run("sessions", "-s", url, "--user", "alice", "--json").output.splitlines()
    assert len(only_alice) == 1


def test_show_renders_the_conversation(url: str) -> None:
    result = run("show", "-s", url, "sess-alice")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "system: Be brief." in out and "user: Question number 0?" in out
    assert "assistant: Answer number 1." in out
    assert 'tool call: lookup_order({"id": "A-17"})' in out
    assert "cost $0.003000" in out and "3 calls" in out
    one = json.loads(run("show", "-s", url, "--json", "sess-bob").output.splitlines()[0])
    by_id = run("show", "-s", url, one["id"])
    assert (
        by_id.exit_code == 0
        and "Question number 3?" in by_id.output
        and "Question number 4" not in by_id.output
    )


def test_show_of_an_unknown_session_exits_1(url: str) -> None:
    result = CliRunner().invoke(cli, ["show", "-s", url, "nobody"])
    assert result.exit_code == 1
    assert "no session or record 'nobody'" in result.output


def test_tail_prints_the_latest_records_oldest_first(url: str) -> None:
    lines = run("tail", "-s", url, "-n", "2").output.splitlines()
    assert len(lines) == 2 and "sess-bob" in lines[1] and " 429 " in lines[1]
    as_json = [json.loads(line) for line in run("tail", "-s", url, "-n", "3", "--json").output.splitlines()]
    assert [r["input_tokens"] for r in as_json] == [30, 40, 50]


def test_tail_follow_prints_new_records_as_they_arrive(url: str, tmp_path: Path) -> None:
    """A record stored after ``tail -f`` took its first look is printed. When that look happens is not
    known from outside (starting the process can take seconds on a busy machine, and a record stored
    before it is not new), so records are stored until one is printed; from then on the process is
    following, and the next record stored must be printed too."""
    env = {**os.environ, "LLMAUDIT_STORAGE": url}
    process = subprocess.Popen(
        [sys.executable, "-m", "llmaudit.cli", "tail", "-n", "0", "-f", "--interval", "0.1", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    stop = threading.Timer(120, process.kill)  # a missing line fails the test instead of hanging it
    stop.start()
    assert process.stdout is not None
    try:
        with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool2")) as auditor:

            def store(key: str) -> None:
                auditor.submit(AuditRecord(session_key=key, created_at=datetime.now(timezone.utc)))
                assert auditor.flush(10)

            for n in range(120):  # one record a second until tail prints one (it is started by then)
                store(f"late-{n}")
                if select.select([process.stdout], [], [], 1.0)[0]:
                    break
            first = json.loads(process.stdout.readline())
            assert first["session_key"].startswith("late-")
            store("after-the-first-look")
            keys = []
            while not keys or keys[-1] != "after-the-first-look":
                line = process.stdout.readline()
                assert line, f"tail ended before printing the record stored while it followed: {keys}"
                keys.append(json.loads(line)["session_key"])
            assert all(key.startswith("late-") for key in keys[:-1])
    finally:
        stop.cancel()
        process.terminate()
        process.communicate(timeout=10)  # also closes the pipe


def test_stats_groups_and_json(url: str) -> None:
    table = run("stats", "-s", url)
    assert table.exit_code == 0 and "support-bot" in table.output and "gpt-4o-mini" in table.output
    (row,) = [json.loads(line) for line in run("stats", "-s", url, "--json").output.splitlines()]
    assert row["calls"] == 5 and row["input_tokens"] == 150 and row["error_rate"] == 0.2
    assert (row["p50_ms"], row["p95_ms"]) == (300.0, 500.0)
    by_user = [
        json.loads(line) for line in run("stats", "-s", url, "--by", "user", "--json").output.splitlines()
    ]
    assert [(r["group"]["user"], r["calls"]) for r in by_user] == [("alice", 3), ("bob", 2)]
    bad = CliRunner().invoke(cli, ["stats", "-s", url, "--by", "colour"])
    assert bad.exit_code != 0


def test_export_to_files_and_storages_is_idempotent_and_keeps_the_chain(url: str, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    assert "exported 5 records" in run("export", "-s", url, "--to", str(target)).output
    assert "exported 0 records" in run("export", "-s", url, "--to", str(target)).output  # resumable
    assert len(target.read_text().splitlines()) == 5
    csv_file = tmp_path / "out.csv"
    run("export", "-s", url, "--to", str(csv_file))
    lines = csv_file.read_text().splitlines()
    assert lines[0].startswith("id,created_at") and len(lines) == 6
    copy = f"jsonl://{tmp_path / 'copy'}"
    run("export", "-s", url, "--to", copy)
    run("export", "-s", url, "--to", copy)
    with llmaudit.open(copy) as reader:
        assert len(list(reader.records())) == 5
    only = tmp_path / "bob.jsonl"
    run("export", "-s", url, "--to", str(only), "--session", "sess-bob")
    assert len(only.read_text().splitlines()) == 2


def test_export_to_an_unknown_kind_of_file_is_a_clear_error(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", "-s", url, "--to", str(tmp_path / "out.txt")])
    assert info.value.code == 1 and "FILE.jsonl, FILE.csv or FILE.parquet" in capsys.readouterr().err


def test_aggregate_writes_one_summary_left_out_of_totals(url: str) -> None:
    result = run("aggregate", "-s", url, "--session", "sess-alice", "--json")
    record = json.loads(result.output)
    assert record["is_aggregation"] is True and record["source"] == "aggregate"
    assert record["input_tokens"] == 60 and record["response"]["calls"] == 3
    assert len(record["request"]["record_ids"]) == 3 and record["writer_id"]  # chained
    day = run("aggregate", "-s", url, "--day", NOW.date().isoformat())
    assert "aggregation" in day.output and "calls" in day.output
    (row,) = [json.loads(line) for line in run("stats", "-s", url, "--json").output.splitlines()]
    assert row["calls"] == 5  # still five: aggregations are not calls
    assert run("verify", "-s", url).exit_code == 0


def test_aggregate_of_nothing_exits_1(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["aggregate", "-s", url, "--session", "nobody"])
    assert info.value.code == 1 and "nothing to aggregate for session nobody" in capsys.readouterr().err


def test_db_upgrade_reports_the_schema_version(url: str) -> None:
    result = run("db", "upgrade", "-s", url)
    assert result.exit_code == 0 and f"schema version {_migrations.SCHEMA_VERSION}" in result.output


def test_a_malformed_jsonl_line_is_reported_with_file_and_line(tmp_path: Path) -> None:
    url = f"jsonl://{tmp_path / 'log'}"
    _seed(url, tmp_path)
    (path,) = (tmp_path / "log").glob("*.jsonl")
    with path.open("ab") as stream:
        stream.write(b"{not json\n")
    result = CliRunner().invoke(cli, ["sessions", "-s", url, "--json"])
    assert result.exit_code == 0
    assert f"{path}:6: skipped an unreadable line" in result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_an_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sessions", "-s", "postgresql+psycopg://nobody:secret@127.0.0.1:9/none"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "secret" not in err and err.startswith("llmaudit: error:")


@pytest.mark.postgres
def test_export_jsonl_to_postgresql_and_back_gives_identical_records_that_verify(
    tmp_path: Path, pg_url: str
) -> None:
    source = f"jsonl://{tmp_path / 'source'}"
    _seed(source, tmp_path)
    with llmaudit.Auditor(source, spool_dir=str(tmp_path / "spool-b")) as auditor:  # a second writer
        auditor.submit(AuditRecord(session_key="second-writer", request={"n": 1.0, "big": 2**70}))
    back = f"jsonl://{tmp_path / 'back'}"
    assert run("export", "-s", source, "--to", pg_url).exit_code == 0
    assert run("export", "-s", pg_url, "--to", back).exit_code == 0
    with llmaudit.open(source) as a, llmaudit.open(pg_url) as b, llmaudit.open(back) as c:
        original = list(a.records())
        assert len(original) == 6
        assert list(b.records()) == original == list(c.records())
        for reader in (a, b, c):
            report = reader.verify()
            assert report.ok and report.totals()["verified"] == 6 and len(report.writers) == 2
