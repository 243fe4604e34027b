"""Issue 7 item 3 (second half): a JSONL store on a full disk.

The test mounts a 2 MiB tmpfs for the store (root only; skipped otherwise, or where the container
forbids mounting) and keeps the spool on the ordinary disk. While the store's disk is full, batches
spill; once space returns, the writer replays them by itself. Every record must then be in the files
exactly once, every line whole JSON, and the chain must verify. A spool on a full disk is covered too,
simulated (runs anywhere) and for real on the tmpfs.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.stress.conftest import Figures

import llmaudit
from llmaudit import Auditor, AuditRecord, WriterStats

# private: writer internals (settings, spool, frames, signal hooks) that no public API exposes
from llmaudit.pipeline import spool as spool_module

DISK_SIZE = "2m"
ROOM_LEFT = 256 * 1024  # what the filler leaves free on the tmpfs: a few hundred records
PAD = "x" * 800  # about 1.5 KiB per line with the record's other fields and its chain links


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 2 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (to fill a disk for real) needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here to make a small tmpfs")
    if done.returncode != 0:  # an unprivileged container: no CAP_SYS_ADMIN
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A filler file taking all of *disk* but *leave* bytes."""
    vfs = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (vfs.f_bavail * vfs.f_frsize - leave))
    return filler


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached in {timeout:.0f}s")
        time.sleep(0.02)


def _auditor(log: Path, spool: Path) -> Auditor:
    auditor = Auditor(f"jsonl://{log}", spool_dir=str(spool), batch_size=20, flush_interval_s=0.01)
    # private: the auditor's writer: its retry pacing and spool have no public setting
    auditor._writer.retry_delays_s = (0.01, 0.05)  # give up on a batch fast
    auditor._writer.probe_interval_s = 0.2  # and try the disk again soon
    return auditor


def _submit(auditor: Auditor, ids: list[str], n: int) -> None:
    for _ in range(n):
        record = AuditRecord(session_key="full-disk", metadata={"n": len(ids), "pad": PAD})
        ids.append(record.id)
        auditor.submit(record)


def _submit_until_the_disk_is_full(
    auditor: Auditor, ids: list[str], full: Callable[[WriterStats], int]
) -> None:
    """Submit small batches until the writer's counter *full* moves (spilled, or failed)."""
    deadline = time.monotonic() + 60
    while full(auditor.stats()) == 0:
        assert time.monotonic() < deadline, "the disk never filled up"
        _submit(auditor, ids, 20)
        time.sleep(0.01)


def _raw_ids(log: Path) -> Counter[str]:
    """The id of every line in the data files; fails on any line that is not whole JSON."""
    lines = [line for path in sorted(log.glob("llmaudit-*.jsonl")) for line in path.read_bytes().splitlines()]
    return Counter(json.loads(line)["id"] for line in lines)


def _check_log(log: Path, expected: list[str], lost: int = 0) -> None:
    """Each expected record exactly once in the raw files and through the reader, no problem
    reported, no temporary file left, and the chain verifies, except for *lost* records missing."""
    assert _raw_ids(log) == Counter(expected)
    assert not list(log.rglob("*.tmp"))
    problems: list[str] = []
    with llmaudit.open(f"jsonl://{log}") as reader:
        assert sorted(r.id for r in reader.records(on_problem=problems.append)) == sorted(expected)
        report = reader.verify(on_problem=problems.append)
    assert problems == []
    totals = report.totals()
    assert (totals["writers"], totals["verified"], totals["missing"]) == (1, len(expected), lost)
    assert report.ok == (lost == 0), report.to_json()
    assert totals["modified"] == totals["reordered"] == totals["inserted"] == 0, report.to_json()


def test_a_full_disk_spills_and_the_writer_replays_every_record_once_when_space_returns(
    small_disk: Path, tmp_path: Path, figures: Figures
) -> None:
    """The store's disk fills up mid-run: batches cut short by ENOSPC leave nothing behind and spill
    (none lost: written + spilled == submitted); deleting the filler is all it takes for the writer
    to replay them itself. Then every record is in the files once, whole, on a chain that verifies."""
    log, spool = small_disk / "log", tmp_path / "spool"
    auditor = _auditor(log, spool)
    filler = _fill(small_disk, leave=ROOM_LEFT)
    ids: list[str] = []
    _submit_until_the_disk_is_full(auditor, ids, lambda stats: stats.spilled)
    _submit(auditor, ids, 300)  # and more while the disk stays full
    assert auditor.flush(60)
    full: WriterStats = auditor.stats()
    assert (full.rejected, full.failed) == (0, 0)
    assert full.written + full.spilled == full.submitted == len(ids)
    assert full.written > 0 and full.spilled >= 300
    assert sum(_raw_ids(log).values()) == full.written  # no line of a failed batch was kept
    assert spool_module.Spool(spool).pending()

    filler.unlink()  # space returns: no call to replay_spool, the writer finds out by itself
    _wait(lambda: not auditor.spool.files() and auditor.stats().replayed == full.spilled, "automatic replay")
    _submit(auditor, ids, 40)  # business as usual afterwards
    auditor.close()
    after = auditor.stats()
    assert (after.written, after.replayed, after.failed) == (full.written + 40, full.spilled, 0)
    _check_log(log, ids)
    figures.add(
        "outage",
        f"full disk ({DISK_SIZE} tmpfs): {len(ids)} records, {full.written} written before the disk"
        f" filled, {full.spilled} spilled and {after.replayed} replayed once space returned",
    )


def test_with_the_spool_on_the_full_disk_too_records_are_counted_lost_and_nothing_else_is(
    small_disk: Path, tmp_path: Path, expect_internal_errors: list[object]
) -> None:
    """Store and spool on one full disk: batches that fit nowhere are counted failed (and logged),
    and a spool append cut short leaves no half line behind, so every record counted written or
    spilled is stored once after space returns, and only those."""
    log, spool = small_disk / "log", small_disk / "spool"
    auditor = _auditor(log, spool)
    # private: the auditor's writer: its retry pacing and spool have no public setting
    auditor._writer.probe_interval_s = 1.0  # spill straight to the spool for a while after space returns
    filler = _fill(small_disk, leave=ROOM_LEFT)
    ids: list[str] = []
    _submit_until_the_disk_is_full(auditor, ids, lambda stats: stats.failed)
    assert auditor.flush(60)
    filler.unlink()
    _submit(auditor, ids, 100)
    assert auditor.flush(60)
    _wait(lambda: not auditor.spool.files() and auditor.stats().replayed == auditor.stats().spilled, "replay")
    auditor.close()
    stats = auditor.stats()
    assert stats.failed > 0 and stats.rejected == 0
    assert stats.written + stats.spilled + stats.failed == stats.submitted == len(ids)
    stored = _raw_ids(log)
    assert sum(stored.values()) == len(stored) == stats.written + stats.replayed
    assert set(stored) <= set(ids)
    _check_log(log, list(stored), lost=stats.failed)  # verify shows the loss as a gap in the chain
    assert expect_internal_errors  # the loss was logged at ERROR


def test_a_spool_append_cut_short_by_a_full_disk_leaves_no_half_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated (runs anywhere): a spill that hits ENOSPC after part of its bytes is cut off again,
    so the next spill does not glue its first record onto the half line and replay loses nothing."""
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    real = spool_module._write_all
    full = True

    def write_all(fd: int, data: bytes) -> None:
        if full:
            os.write(fd, data[: len(data) // 3])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(spool_module, "_write_all", write_all)
    spool = spool_module.Spool(tmp_path / "spool")
    lost = [AuditRecord(metadata={"n": i}) for i in range(3)]
    with pytest.raises(OSError, match="No space"):
        spool.append(lost)
    full = False
    kept = [AuditRecord(metadata={"n": i}) for i in range(3, 6)]
    spool.append(kept)
    (path,) = spool.files()
    assert [json.loads(line)["id"] for line in path.read_bytes().splitlines()] == [r.id for r in kept]
    with pytest.raises(OSError, match="No space"):
        full = True
        spool.reject(lost)
    assert not (tmp_path / "spool" / f"rejected-{os.getpid()}.jsonl").read_bytes()
    store = llmaudit.open_storage(f"memory://{tmp_path.name}")
    result = spool.replay(store)
    assert (result.records, result.skipped_lines) == (3, 0)
    assert sorted(r.id for r in store.read()) == sorted(r.id for r in kept)
