"""Reading never creates a store (issue 17, item 8).

The read side (``llmaudit.open``, `Reader`, every CLI command that reads) opens existing stores only:
a URL that names nothing (a typo, or nothing recorded yet) is a `StorageNotFoundError` naming the
URL, and no file, directory or table is left behind. The writer side keeps creating. ``sqlite:///``
with no path is an error everywhere instead of a private in-memory database that loses everything.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from tests.conftest import backends

import llmaudit
from llmaudit.cli import cli, main

# private: writer internals (settings, spool, frames, signal hooks) that no public API exposes
from llmaudit.pipeline.settings import data_dir
from llmaudit.storage.sql.engine import normalise_url as _normalise_url

MISSING_BACKENDS = backends("jsonl", "sqlite", "postgres", "mariadb")


def _missing(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, Callable[[], bool]]:
    """A URL naming no store on *kind*, and a check that the store still does not exist."""
    if kind == "jsonl":
        directory = tmp_path / "typo" / "log"
        return f"jsonl://{directory}", lambda: not (tmp_path / "typo").exists()
    if kind == "sqlite":
        path = tmp_path / "typo" / "audti.db"
        return f"sqlite:///{path}", lambda: not (tmp_path / "typo").exists()
    url = str(request.getfixturevalue("pg_url" if kind == "postgres" else "mariadb_url"))

    def no_table() -> bool:
        sa_url, table = _normalise_url(url)
        engine = sa.create_engine(sa_url)
        try:
            with engine.connect() as conn:
                names = set(sa.inspect(conn).get_table_names())
        finally:
            engine.dispose()
        return not any(name.startswith(table) for name in names)

    return url, no_table


@pytest.mark.parametrize("kind", MISSING_BACKENDS)
def test_open_of_a_missing_store_raises_and_creates_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, nothing_there = _missing(kind, tmp_path, request)
    with pytest.raises(llmaudit.StorageNotFoundError) as info:
        llmaudit.open(url)
    assert isinstance(info.value, llmaudit.StorageError)
    assert "no llmaudit store at" in str(info.value)
    assert info.value.url.split("?")[0] in str(info.value)
    assert nothing_there()
    with pytest.raises(llmaudit.StorageNotFoundError):
        llmaudit.open_storage(url, create=False)
    assert nothing_there()


@pytest.mark.parametrize("kind", MISSING_BACKENDS)
def test_the_writer_still_creates_and_the_reader_then_opens_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, nothing_there = _missing(kind, tmp_path, request)
    with llmaudit.Auditor(url, mode="sync", spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(llmaudit.AuditRecord(session_key="s1", source="manual"))
    assert not nothing_there()
    with llmaudit.open(url) as reader:
        assert [s.session_key for s in reader.sessions()] == ["s1"]


def test_open_with_create_makes_the_store(tmp_path: Path) -> None:
    with llmaudit.open(f"sqlite:///{tmp_path / 'new' / 'a.db'}", create=True) as reader:
        assert list(reader.records()) == []
    assert (tmp_path / "new" / "a.db").is_file()


def test_a_sqlite_file_without_llmaudit_tables_is_not_a_store_and_is_left_alone(tmp_path: Path) -> None:
    """Someone else's database (or an empty file) is reported, not turned into an llmaudit store:
    no table is created and its journal mode is not switched to WAL."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x)")
    conn.close()
    with pytest.raises(llmaudit.StorageNotFoundError, match="has no table 'llmaudit_records'"):
        llmaudit.open(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    assert tables == {"notes"} and mode == "delete"


def test_the_default_store_is_not_created_by_reading() -> None:
    with pytest.raises(llmaudit.StorageNotFoundError):
        llmaudit.open()
    assert not (data_dir() / "audit.db").exists()


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite+pysqlite:///"])
def test_sqlite_without_a_path_is_a_configuration_error(url: str, tmp_path: Path) -> None:
    for attempt in (
        lambda: llmaudit.open(url),
        lambda: llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")),
        lambda: llmaudit.open_storage(url),
    ):
        with pytest.raises(llmaudit.ConfigurationError, match=r"names no database file.*memory://"):
            attempt()


def test_configure_with_sqlite_without_a_path_fails_at_configure(tmp_path: Path) -> None:
    try:
        with pytest.raises(llmaudit.ConfigurationError, match="names no database file"):
            llmaudit.configure(storage="sqlite:///", spool_dir=str(tmp_path / "spool"))
    finally:
        llmaudit.shutdown()


# -- the command line ----------------------------------------------------------------------------

READ_COMMANDS = [
    ["sessions"],
    ["sessions", "--json"],
    ["show", "some-session"],
    ["tail"],
    ["stats"],
    ["export", "--to", "{tmp}/out.jsonl"],
    ["verify"],
    ["forget", "--session", "s1"],
    ["prune", "--older-than", "30d"],
    ["aggregate", "--session", "s1"],
    ["db", "upgrade"],
    ["db", "seal-legacy"],
]


def _args(command: list[str], tmp_path: Path) -> list[str]:
    return [part.replace("{tmp}", str(tmp_path)) for part in command]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_every_read_command_on_a_missing_store_fails_in_one_line_and_creates_nothing(
    command: list[str],
    kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, nothing_there = _missing(kind, tmp_path, request)
    if command[0] == "db" and kind == "jsonl":
        pytest.skip("db commands are about SQL schemas")
    with pytest.raises(SystemExit) as info:
        main([*_args(command, tmp_path), "-s", url])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("llmaudit: error: no llmaudit store at")
    assert "typo" in err and "Traceback" not in err
    assert nothing_there()


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["sessions"], ["stats"], ["verify"], ["db", "upgrade"]])
def test_read_commands_on_a_missing_postgresql_table_fail_and_create_no_table(
    command: list[str], tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    url, nothing_there = _missing("postgres", tmp_path, request)
    with pytest.raises(SystemExit) as info:
        main([*command, "-s", url])
    assert info.value.code == 1 and "has no table" in capsys.readouterr().err
    assert nothing_there()


@pytest.mark.mariadb
def test_read_commands_on_a_missing_mariadb_table_fail_and_create_no_table(
    tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    url, nothing_there = _missing("mariadb", tmp_path, request)
    with pytest.raises(SystemExit) as info:
        main(["sessions", "-s", url])
    assert info.value.code == 1 and "has no table" in capsys.readouterr().err
    assert nothing_there()


@pytest.mark.parametrize("command", [["sessions"], ["tail"], ["stats"], ["sessions", "--json"]])
def test_listing_the_default_store_before_anything_was_recorded_is_a_friendly_note(
    command: list[str],
) -> None:
    """``llmaudit sessions`` on a fresh machine: no created database, no error, a note saying why
    nothing is listed and what to do (exit 0: "nothing yet" is the honest answer)."""
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert "nothing recorded yet" in result.stderr and str(data_dir() / "audit.db") in result.stderr
    assert result.stdout == ""
    assert not data_dir().exists()


@pytest.mark.parametrize("command", [["verify"], ["show", "x"], ["prune", "--older-than", "1d"]])
def test_acting_on_the_default_store_before_anything_was_recorded_exits_1(command: list[str]) -> None:
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    assert "nothing recorded yet" in result.stderr
    assert not data_dir().exists()


def test_forget_creates_the_store_only_to_erase_records_waiting_in_its_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store never came up, so the records went to the spool: forget must still reach them."""
    url = f"sqlite:///{tmp_path / 'never.db'}"
    monkeypatch.setenv("LLMAUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    record = llmaudit.AuditRecord(session_key="s1", source="manual", request={"text": "private words"})
    spool = llmaudit.pipeline.spool.Spool(tmp_path / "spool")
    spool.append([record])
    spool.release()
    result = CliRunner().invoke(cli, ["forget", "--session", "s1", "-s", url])
    assert result.exit_code == 0, result.output
    assert "erased 1 records" in result.output


def test_the_writing_commands_still_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'demo.db'}"
    result = CliRunner().invoke(cli, ["demo", "-s", url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fresh" / "demo.db").is_file()
    exported = CliRunner().invoke(cli, ["export", "-s", url, "--to", f"jsonl://{tmp_path / 'copy'}"])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "copy").is_dir()
