"""forget and the copies of a record outside the table: a spool file a running writer holds, SQLite's
write-ahead log while another connection reads, a server's own logs. Each is either erased or named
in ``ForgetResult.unguaranteed`` (and the ``forget`` command exits 3), never silently left."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import PAYLOAD_FIELDS, Chain, is_tombstone, marker
from llmaudit.pipeline.spool import Spool
from llmaudit.record.codec import encode_record
from llmaudit.storage import open_storage
from llmaudit.storage.sql import sqlite as sql_storage

PRIVATE = "private-diagnosis-5521"  # what forget must remove
KEPT = "unrelated-question-8810"  # what it must leave
START = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _records(n: int, session: str, text: str, start: datetime = START) -> list[AuditRecord]:
    return [
        AuditRecord(
            created_at=start + timedelta(seconds=i),
            session_key=session,
            user=f"user-of-{session}",
            request={"messages": [{"role": "user", "content": f"{text} {i}"}]},
            response={"content": f"answer about {text}"},
            metadata={"n": i},
        )
        for i in range(n)
    ]


def _stored_bytes(url: str, root: Path) -> bytes:
    """Every byte of the store's files (the SQLite database and its log, or the JSONL files)."""
    if url.startswith("sqlite"):
        return b"".join(p.read_bytes() for p in root.glob("audit.db*"))
    return b"".join(p.read_bytes() for p in (root / "log").rglob("*") if p.is_file())


def _changed(before: AuditRecord, after: AuditRecord) -> set[str]:
    """The fields erasure changed (the chain's own fields left out: sealing sets them)."""
    chain = {"writer_id", "seq", "prev_hash", "hash"}
    return {
        f.name
        for f in fields(AuditRecord)
        if f.name not in chain and getattr(before, f.name) != getattr(after, f.name)
    }


_HOLDER = """
import sys
from llmaudit.record.codec import decode_record
from llmaudit.pipeline.spool import Spool
from llmaudit.storage import open_storage

spool_dir, url, records = sys.argv[1], sys.argv[2], sys.argv[3]
spool = Spool(spool_dir)
spool.append([decode_record(line) for line in open(records, "rb").read().splitlines()])
print("held", flush=True)  # the file is written and locked: a running writer's spool
sys.stdin.readline()  # until the test says the storage is back
storage = open_storage(url)
print("replayed", spool.replay(storage).records, flush=True)
storage.close()
"""


@contextmanager
def _held_in_another_process(spool_dir: Path, url: str, records: list[AuditRecord]) -> Iterator[None]:
    """A real second process spills *records* to its spool and holds the file until the block ends;
    then it replays its spool into *url*, as a writer does when the storage comes back."""
    batch = spool_dir.parent / "batch.jsonl"
    batch.write_bytes(b"".join(encode_record(r) + b"\n" for r in records))
    env = {**os.environ, "PYTHONPATH": str(Path(llmaudit.__file__).parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(spool_dir), url, str(batch)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as child:
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "held\n"
            yield
            out, _ = child.communicate("go\n", timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 0 and out == f"replayed {len(records)}\n", out


@contextmanager
def _held_in_this_process(spool_dir: Path, url: str, records: list[AuditRecord]) -> Iterator[None]:
    """The same with a `Spool` of this process (another thread's writer): its own lock, its own fd."""
    spool = Spool(spool_dir)
    spool.append(records)
    yield
    storage = open_storage(url)
    try:
        assert spool.replay(storage).records == len(records)
    finally:
        storage.close()


@pytest.mark.parametrize("scheme", ["sqlite", "jsonl"])
@pytest.mark.parametrize(
    "holder", [_held_in_another_process, _held_in_this_process], ids=["process", "thread"]
)
def test_records_in_a_spool_a_running_writer_holds_are_erased_when_it_replays_them(
    scheme: str, holder: object, tmp_path: Path
) -> None:
    """forget cannot replay a file a live writer holds: it says so, and records the erasure, so that
    when the writer replays the file later its records land erased (the same fields, the same
    tombstones as a stored record gets), the log verifies, and the text is nowhere in the store."""
    url = f"sqlite:///{tmp_path / 'audit.db'}" if scheme == "sqlite" else f"jsonl://{tmp_path / 'log'}"
    spool_dir = tmp_path / "spool"
    with llmaudit.Auditor(url, mode="sync", spool_dir=str(spool_dir)) as auditor:
        (stored,) = _records(1, "forget-me", PRIVATE, START - timedelta(hours=1))
        auditor.submit(stored)
    spooled = Chain().seal(_records(2, "forget-me", PRIVATE) + _records(1, "keep", KEPT))
    with holder(spool_dir, url, spooled):  # type: ignore[operator]
        with llmaudit.open(url, spool_dir=spool_dir) as reader:
            result = reader.forget(session="forget-me")
        assert (result.erased, result.spool_files_in_use) == (1, 1)
        (caveat,) = result.unguaranteed
        assert "held by a running writer" in caveat and str(spool_dir) in caveat
        assert b"forget-me" not in (spool_dir / "forget-list.jsonl").read_bytes()  # digests only
        assert b"user-of-forget-me" not in (spool_dir / "forget-list.jsonl").read_bytes()
    with llmaudit.open(url, spool_dir=spool_dir) as reader:
        # the session key is erased too: the erased records group under its marker
        forgotten = list(reader.records(session=marker("session_key", "forget-me", None)))
        kept = list(reader.records(session="keep"))
        report = reader.verify()
    assert len(forgotten) == 3 and len(kept) == 1
    originals = {r.id: r for r in (stored, *spooled)}
    changed = [_changed(originals[r.id], r) for r in forgotten]
    # the stored one and the two replayed alike: payloads, session key and user
    assert changed == [changed[0]] * 3 and set(PAYLOAD_FIELDS) | {"session_key", "user"} <= changed[0]
    assert all(is_tombstone(getattr(r, name)) for r in forgotten for name in PAYLOAD_FIELDS)
    assert KEPT in str(kept[0].request)
    assert report.ok and report.totals()["erased"] == 3, report.to_json()
    raw = _stored_bytes(url, tmp_path)
    assert PRIVATE.encode() not in raw and KEPT.encode() in raw
    assert not [p for p in spool_dir.iterdir() if PRIVATE.encode() in p.read_bytes()]


def test_a_spooled_record_made_after_the_forget_keeps_its_payload(tmp_path: Path) -> None:
    """The forget list erases what existed when forget ran; a later call of the same session is a
    new record, and is stored as it is."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    now = datetime.now(timezone.utc)
    before = _records(1, "s", PRIVATE, now - timedelta(minutes=5))
    after = _records(1, "s", KEPT, now + timedelta(hours=1))
    with _held_in_this_process(tmp_path / "spool", url, Chain().seal(before + after)):
        with llmaudit.open(url, spool_dir=tmp_path / "spool", create=True) as reader:
            assert reader.forget(session="s").spool_files_in_use == 1
    with llmaudit.open(url) as reader:
        stored = {r.id: r for r in reader.records()}
    assert is_tombstone(stored[before[0].id].request)
    assert stored[after[0].id].request == after[0].request


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Another connection inside a read transaction (a long report, a viewer): SQLite cannot finish
    a checkpoint past the snapshot it reads."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN")
        other.execute("SELECT count(*) FROM llmaudit_records").fetchone()
        yield
    finally:
        other.execute("COMMIT")
        other.close()


def test_a_checkpoint_kept_busy_by_a_reader_is_reported_and_a_second_forget_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sql_storage, "ERASE_CHECKPOINT_WAIT_MS", 20
    )  # the reader never lets go: no need to wait
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with llmaudit.Auditor(url, mode="sync", spool_dir=str(tmp_path / "spool")) as auditor:
        for record in _records(3, "forget-me", PRIVATE):
            auditor.submit(record)
    with llmaudit.open(url) as reader:
        reader.storage.maintain()  # the records are in the database file itself now
        with _reading(tmp_path / "audit.db"):
            first = reader.forget(session="forget-me")
            assert PRIVATE.encode() in _stored_bytes(url, tmp_path)  # what the caveat is about
        (caveat,) = first.unguaranteed
        assert "read transaction" in caveat and "audit.db-wal" in caveat and "run forget again" in caveat
        assert first.erased == 3
        second = reader.forget(session="forget-me")
    assert (second.erased, second.already_erased, second.unguaranteed) == (0, 3, ())
    assert PRIVATE.encode() not in _stored_bytes(url, tmp_path)


def test_the_forget_command_exits_3_and_says_what_remains_and_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    spool_dir = tmp_path / "spool"
    runner = CliRunner()
    with llmaudit.Auditor(url, mode="sync", spool_dir=str(spool_dir)) as auditor:
        auditor.submit(_records(1, "forget-me", PRIVATE)[0])
    held = Spool(spool_dir)
    held.append(Chain().seal(_records(1, "forget-me", PRIVATE)))
    env = {"LLMAUDIT_SPOOL_DIR": str(spool_dir)}
    result = runner.invoke(cli, ["forget", "-s", url, "--session", "forget-me"], env=env)
    assert result.exit_code == 3, result.output
    assert "erased 1 records" in result.stdout
    assert "not guaranteed: 1 spool file(s)" in result.stderr and "run forget again" in result.stderr
    held.release()  # the writer stopped: its file can be replayed now
    again = runner.invoke(cli, ["forget", "-s", url, "--session", "forget-me"], env=env)
    assert again.exit_code == 0, again.output
    # the held file was replayed by this run, its record already erased by the forget list
    assert "erased 0 records (2 matching records were already erased)" in again.stdout
    assert "not guaranteed" not in again.stderr


def test_forget_with_an_unsafe_spool_directory_says_the_spool_was_not_checked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with llmaudit.Auditor(url, mode="sync", spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(_records(1, "forget-me", PRIVATE)[0])
    (tmp_path / "spool").mkdir(mode=0o777)  # made by hand, shared by mistake
    (tmp_path / "spool").chmod(0o777)
    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        result = reader.forget(session="forget-me")
    assert result.erased == 1
    (caveat,) = result.unguaranteed
    assert "spool was not checked" in caveat and "writable by group and others" in caveat


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        pytest.param("pg_url", "write-ahead log (pg_wal)", marks=pytest.mark.postgres),
        pytest.param("mariadb_url", "binary log", marks=pytest.mark.mariadb),
    ],
)
def test_forget_on_a_server_database_names_the_logs_it_cannot_reach(
    fixture: str, expected: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The table is rewritten, but the server's logs, backups and replicas keep the old text: the
    command says so on every run (a standing property, not a failure of this run: exit 0)."""
    url = request.getfixturevalue(fixture)
    with llmaudit.Auditor(url, mode="sync", spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(_records(1, "forget-me", PRIVATE)[0])
    result = CliRunner().invoke(
        cli,
        ["forget", "-s", url, "--session", "forget-me"],
        env={"LLMAUDIT_SPOOL_DIR": str(tmp_path / "spool")},
    )
    assert result.exit_code == 0, result.output
    assert "note: " in result.stderr and expected in result.stderr and "backup" in result.stderr


def test_the_forget_list_drops_old_erasures_once_the_spool_is_empty(tmp_path: Path) -> None:
    """The list only has to outlive the spool files that existed when forget ran: after a replay
    that leaves no spool file, erasures older than a day go; a recent one stays."""
    spool = Spool(tmp_path / "spool")
    now = datetime.now(timezone.utc)
    spool.record_erasure(session="old", user=None, ids=(), at=now - timedelta(days=2))
    spool.record_erasure(session=None, user="recent", ids=("x",), at=now)
    spool.append(Chain().seal(_records(1, "other", KEPT)))
    pending = Spool(tmp_path / "spool")
    pending.append(Chain().seal(_records(1, "other", KEPT)))  # held: the replay cannot empty the spool
    storage = open_storage(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        assert spool.replay(storage).files == 1
        assert (tmp_path / "spool" / "forget-list.jsonl").read_bytes().count(b"\n") == 2
        pending.release()
        assert spool.replay(storage).files == 1
    finally:
        storage.close()
    (kept,) = (tmp_path / "spool" / "forget-list.jsonl").read_bytes().splitlines()
    assert b'"ids":["x"]' in kept
