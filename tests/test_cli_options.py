"""The command line's options where people type them, and its JSON named like the Python API
(issue 17, item 10).

``llmaudit -s URL tail`` works like ``llmaudit tail -s URL`` (the subcommand's own value wins when
both are given, and any explicit ``-s`` beats ``LLMAUDIT_STORAGE``); ``--json`` is accepted before the
subcommand too. Every ``--json`` object uses the names of the Python API: `AuditRecord`'s fields for
records, `SessionSummary`'s and `StatsRow`'s fields for summaries (compared mechanically, so a field
added to either shows up in both or fails here). A record submitted by hand says ``source="manual"``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tests.conftest import backends, store_url_for

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli
from llmaudit.storage import SessionSummary, StatsRow

BACKENDS = backends("jsonl", "sqlite", "postgres", "mariadb")


def _seed(url: str, tmp_path: Path) -> list[AuditRecord]:
    records = [
        AuditRecord(
            session_key="s1",
            user="alice",
            client="bot",
            provider="openai",
            model="gpt-4o-mini",
            request={"messages": [{"role": "user", "content": f"question {i}"}]},
            response={"choices": [{"message": {"role": "assistant", "content": f"answer {i}"}}]},
            input_tokens=10,
            output_tokens=2,
            duration_ms=5.0,
        )
        for i in range(3)
    ]
    with llmaudit.Auditor(url, mode="sync", spool_dir=str(tmp_path / "spool")) as auditor:
        for record in records:
            auditor.submit(record)
    return records


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _json_lines(result: Result) -> list[dict[str, object]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    _seed(url, tmp_path)
    return url


# -- options before the subcommand ---------------------------------------------------------------

#: Every command that takes --storage, with arguments that make it succeed on the seeded store.
STORAGE_COMMANDS = [
    ["sessions", "--json"],
    ["show", "--json", "s1"],
    ["tail", "--json"],
    ["stats", "--json"],
    ["verify", "--json"],
    ["aggregate", "--json", "--session", "s1"],
    ["export", "--to", "{tmp}/copy.jsonl"],
    ["prune", "--older-than", "1d"],
    ["forget", "--id", "{first}"],
    ["db", "upgrade"],
    ["db", "seal-legacy"],
    ["spool", "replay"],
    ["path"],
]


def _args(command: list[str], tmp_path: Path, first: str) -> list[str]:
    return [part.replace("{tmp}", str(tmp_path)).replace("{first}", first) for part in command]


@pytest.mark.parametrize("command", STORAGE_COMMANDS, ids=" ".join)
def test_storage_before_the_subcommand_is_used(command: list[str], url: str, tmp_path: Path) -> None:
    """``llmaudit -s URL CMD``: the default store does not exist here (empty XDG data dir), so a
    command that ignored the group's -s would fail (or, listing, print nothing)."""
    with llmaudit.open(url) as reader:
        first = next(r.id for r in reader.records())
    result = run("-s", url, *_args(command, tmp_path, first))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() and "nothing recorded yet" not in result.stderr


@pytest.mark.parametrize("command", [*STORAGE_COMMANDS[:4], ["path"]], ids=" ".join)
def test_storage_before_the_subcommand_reads_what_after_it_reads(command: list[str], url: str) -> None:
    assert run("-s", url, *command).stdout == run(*command, "-s", url).stdout


def test_the_subcommands_own_storage_wins(url: str, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    rows = _json_lines(run("-s", missing, "sessions", "--json", "-s", url))
    assert [r["session_key"] for r in rows] == ["s1"]


@pytest.mark.parametrize("place", ["before", "after"])
def test_an_explicit_storage_beats_the_environment(
    place: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMAUDIT_STORAGE", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    args = ["-s", url, "sessions", "--json"] if place == "before" else ["sessions", "--json", "-s", url]
    assert [r["session_key"] for r in _json_lines(run(*args))] == ["s1"]
    assert not (tmp_path / "elsewhere.db").exists()


def test_the_environment_is_used_when_no_storage_is_typed(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMAUDIT_STORAGE", url)
    assert [r["session_key"] for r in _json_lines(run("sessions", "--json"))] == ["s1"]


@pytest.mark.parametrize("command", [["sessions"], ["tail"], ["stats"], ["show", "s1"], ["verify"]])
def test_json_before_the_subcommand(command: list[str], url: str) -> None:
    before = _json_lines(run("--json", "-s", url, *command))
    after = _json_lines(run(*command, "--json", "-s", url))
    assert before and len(before) == len(after)
    assert [sorted(row) for row in before] == [sorted(row) for row in after]


# -- --json names are the Python API's names -----------------------------------------------------


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("kind", BACKENDS)
def test_json_field_names_equal_the_python_api(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url_for(kind, request, tmp_path)
    _seed(url, tmp_path)
    for command in (["show", "--json", "s1"], ["tail", "--json"], ["aggregate", "--json", "--session", "s1"]):
        for row in _json_lines(run(*command, "-s", url)):
            assert set(row) == _names(AuditRecord), command
    (session,) = _json_lines(run("sessions", "--json", "-s", url))
    assert set(session) == _names(SessionSummary)
    with llmaudit.open(url) as reader:
        (summary,) = reader.sessions()
        (stats_row,) = reader.stats(by=("client", "model"))
    assert session == summary.to_json()
    assert all(session[name] == getattr(summary, name) for name in ("session_key", "calls", "errors"))
    (row,) = _json_lines(run("stats", "--json", "--by", "client,model", "-s", url))
    assert set(row) == _names(StatsRow) | {"error_rate"}
    assert row["group"] == stats_row.group == {"client": "bot", "model": "gpt-4o-mini"}
    assert row == stats_row.to_json()


def test_session_summary_keeps_key_as_an_alias() -> None:
    summary = SessionSummary("s1", None, *(2 * [llmaudit.AuditRecord().created_at]), 1, 0, 0, None, 0)
    assert summary.key == summary.session_key == "s1"


# -- the source of a record made by hand ---------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_record_submitted_by_hand_is_manual_not_transport(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url_for(kind, request, tmp_path)
    _seed(url, tmp_path)
    with llmaudit.open(url) as reader:
        assert {r.source for r in reader.records()} == {"manual"}
        assert [r.group for r in reader.stats(by=("source",))] == [{"source": "manual"}]
        assert list(reader.records(source="transport")) == []
    (row,) = _json_lines(run("stats", "--json", "--by", "source", "-s", url))
    assert row["group"] == {"source": "manual"}


def test_the_transport_and_the_decorator_still_say_what_they_are() -> None:
    assert AuditRecord().source == "manual"
    assert AuditRecord(source="transport").source == "transport"
