"""JSONL storage: many processes appending, daily files, rotation, permissions, damaged lines."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llmaudit import AuditRecord, ConfigurationError, StorageError
from llmaudit.storage import Query, open_storage

# private: the backend classes, built directly to inspect or tamper with their tables and files
from llmaudit.storage.jsonl import JSONLStorage

DAY = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def _append_many(directory: str, writer: int, count: int, start: multiprocessing.synchronize.Event) -> None:
    store = JSONLStorage(directory, max_bytes=1024 * 1024)
    start.wait()
    batch = []
    for i in range(count):
        batch.append(
            AuditRecord(created_at=DAY, session_key=f"w{writer}", request={"i": i, "pad": "x" * 200})
        )
        if len(batch) == 50:
            store.write(batch)
            batch = []
    store.write(batch)


@pytest.mark.slow
def test_four_processes_appending_at_once_never_interleave_or_corrupt_a_line(tmp_path: Path) -> None:
    """4 processes x 5,000 records into one directory: exactly 20,000 whole, valid, distinct lines,
    with size rotation happening while they write."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 5000, start)) for w in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    files = JSONLStorage(tmp_path).files()
    assert len(files) > 1  # rotation happened during the run
    lines = [line for f in files for line in f.read_bytes().split(b"\n") if line]
    assert len(lines) == 20_000
    ids = {json.loads(line)["id"] for line in lines}
    assert len(ids) == 20_000
    per_writer = {f"w{w}": 0 for w in range(4)}
    for record in JSONLStorage(tmp_path).read(Query()):
        per_writer[record.session_key or ""] += 1
    assert per_writer == {f"w{w}": 5000 for w in range(4)}


def test_rotation_by_size_keeps_every_record_in_order(tmp_path: Path) -> None:
    """Past max_bytes a day's file rotates to .1, .2…; reading returns everything, ordered."""
    store = JSONLStorage(tmp_path, max_bytes=4000)
    records = [
        AuditRecord(created_at=DAY + timedelta(seconds=i), request={"pad": "y" * 300}) for i in range(40)
    ]
    for i in range(0, 40, 5):
        store.write(records[i : i + 5])
    names = [f.name for f in store.files()]
    assert names[:3] == [
        "llmaudit-2026-11-24.jsonl",
        "llmaudit-2026-11-24.1.jsonl",
        "llmaudit-2026-11-24.2.jsonl",
    ]
    assert [r.id for r in store.read(Query())] == [r.id for r in records]


def test_records_go_to_the_file_of_their_utc_day_and_ranges_pick_days(tmp_path: Path) -> None:
    """A batch spanning midnight lands in two files; since/until select across them."""
    store = JSONLStorage(tmp_path)
    late = AuditRecord(created_at=datetime(2026, 11, 23, 23, 59, 59, tzinfo=timezone.utc))
    early = AuditRecord(created_at=datetime(2026, 11, 24, 0, 0, 1, tzinfo=timezone.utc))
    store.write([late, early])
    assert [f.name for f in store.files()] == ["llmaudit-2026-11-23.jsonl", "llmaudit-2026-11-24.jsonl"]
    midnight = datetime(2026, 11, 24, tzinfo=timezone.utc)
    assert [r.id for r in store.read(Query(since=midnight))] == [early.id]
    assert [r.id for r in store.read(Query(until=midnight))] == [late.id]
    assert [r.id for r in store.read(Query(order="desc", limit=1))] == [early.id]


def test_files_are_private_to_the_owner(tmp_path: Path) -> None:
    """Logs hold prompts: data and lock files are 0600, the directory 0700, whatever the umask."""
    old = os.umask(0)
    try:
        store = JSONLStorage(tmp_path / "log")
        store.write([AuditRecord()])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "log").stat().st_mode) == 0o700
    for path in (tmp_path / "log").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_fsync_policy_is_validated_and_batch_works(tmp_path: Path) -> None:
    """fsync=batch is accepted and writes; an unknown policy is a configuration error."""
    store = open_storage(f"jsonl://{tmp_path}/a?fsync=batch&max_bytes=2048")
    assert isinstance(store, JSONLStorage)
    assert (store.fsync, store.max_bytes) == ("batch", 2048)
    store.write([AuditRecord()])
    assert len(list(store.read(Query()))) == 1
    with pytest.raises(ConfigurationError, match="fsync"):
        open_storage(f"jsonl://{tmp_path}/b?fsync=sometimes")
    with pytest.raises(ConfigurationError, match="max_bytes"):
        open_storage(f"jsonl://{tmp_path}/b?max_bytes=lots")
    with pytest.raises(ConfigurationError, match="colour"):
        open_storage(f"jsonl://{tmp_path}/b?colour=red")


def test_chain_heads_follow_the_fsync_policy_and_checkpoints_are_always_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With fsync=never a batch costs no fsync, not even for its chain head (a few bytes, replaced
    atomically by rename); with fsync=batch it does, and a prune checkpoint is synced either way."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))

    def sealed(writer: str, seq: int) -> AuditRecord:
        return AuditRecord(writer_id=writer, seq=seq, prev_hash="0" * 64, hash=f"{seq:064x}")

    never = JSONLStorage(tmp_path / "never")
    never.write([sealed("w1", 1), sealed("w1", 2)])
    assert synced == []
    assert never.chain_states()["w1"].head_seq == 2
    never.delete([], {"w1": (1, f"{1:064x}")})  # a prune checkpoint, and its registry entry
    assert len(synced) == 2
    never.write([sealed("w1", 3)])  # a head beside a checkpoint keeps the checkpoint safe
    assert len(synced) == 3
    assert never.chain_states()["w1"][:4] == (3, f"{3:064x}", 1, f"{1:064x}")

    synced.clear()
    batch = JSONLStorage(tmp_path / "batch", fsync="batch")
    batch.write([sealed("w2", 1)])
    assert len(synced) >= 2  # the lines, and the head


def test_damaged_lines_are_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    """A corrupt middle line and a truncated last line never stop the others from being read."""
    store = JSONLStorage(tmp_path)
    good = [AuditRecord(created_at=DAY + timedelta(seconds=i)) for i in range(3)]
    store.write(good)
    (path,) = store.files()
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(
        lines[0] + b"\n{not json\n" + lines[1] + b"\n" + b"\xff\xfe\n" + lines[2] + b"\n" + b'{"id": "cut'
    )
    problems: list[str] = []
    got = [r.id for r in store.read(Query(), on_problem=problems.append)]
    assert got == [r.id for r in good]
    assert [p.split(": ")[0] for p in problems] == [f"{path}:2", f"{path}:4", f"{path}:6"]
    assert "truncated" in problems[-1]


def test_a_write_after_a_crash_mid_line_does_not_glue_onto_the_broken_line(tmp_path: Path) -> None:
    """If a writer died mid-line, the next batch starts on a fresh line, so it stays readable."""
    store = JSONLStorage(tmp_path)
    store.write([AuditRecord(created_at=DAY)])
    (path,) = store.files()
    with path.open("ab") as f:
        f.write(b'{"id": "half a rec')
    after = AuditRecord(created_at=DAY)
    store.write([after])
    problems: list[str] = []
    ids = [r.id for r in store.read(Query(), on_problem=problems.append)]
    assert after.id in ids
    assert len(problems) == 1


def test_duplicate_ids_from_replays_are_read_once(tmp_path: Path) -> None:
    """JSONL is append-only, so a replayed record may appear twice on disk; readers see it once."""
    store = JSONLStorage(tmp_path)
    record = AuditRecord(created_at=DAY)
    store.write([record])
    store.write([record])
    assert len(store.files()[0].read_bytes().splitlines()) == 2
    assert [r.id for r in store.read(Query())] == [record.id]


def test_unwritable_paths_are_a_storage_error_naming_the_path(tmp_path: Path) -> None:
    """A path under a regular file (or a file in place of the directory) fails at open, clearly."""
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="plain-file"):
        JSONLStorage(blocker)
    with pytest.raises(StorageError, match="plain-file/sub"):
        JSONLStorage(blocker / "sub")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("jsonl:///var/tmp/llm", "/var/tmp/llm"),
        ("jsonl://relative/dir", "relative/dir"),
        ("jsonl://./x", "./x"),
    ],
)
def test_from_url_accepts_absolute_and_relative_directories(
    url: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Both jsonl:///abs and jsonl://relative forms name a directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(JSONLStorage, "_open_directory", lambda self: None)
    assert str(JSONLStorage.from_url(url).directory) == str(Path(expected))
