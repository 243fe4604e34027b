"""JSONL writes are all or nothing, and a fork never strands the append lock.

A full disk is simulated by letting a write put part of its bytes down and then fail with ENOSPC (what
``write(2)`` does when the space runs out mid-buffer), so these run anywhere; the real full disk is in
``tests/stress/test_full_disk.py``.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import llmaudit
from llmaudit import AuditRecord, StorageUnavailableError

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import Chain
from llmaudit.storage import jsonl
from llmaudit.storage.jsonl import JSONLStorage

DAY = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
BEFORE_MIDNIGHT = datetime(2026, 11, 24, 23, 59, 50, tzinfo=timezone.utc)


def _sealed(chain: Chain, n: int, start: datetime = DAY) -> list[AuditRecord]:
    return chain.seal(
        [AuditRecord(created_at=start + timedelta(seconds=i), metadata={"i": i}) for i in range(n)]
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under *directory* (data, chain heads, temporaries) with its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def _lines_through(write_all: Callable[[int, bytes], None]) -> Callable[[int, Sequence[bytes]], None]:
    """A `_write_lines` that writes a batch's lines as one `_write_all` call (one failure point)."""
    return lambda fd, lines: write_all(fd, b"".join(line + b"\n" for line in lines))


def _failing_write(monkeypatch: pytest.MonkeyPatch, fail_on_call: int, keep: float = 0.5) -> list[int]:
    """Make the *fail_on_call*-th write of the JSONL store (1-based: a batch's lines for one file, or a
    chain head's temporary file) put *keep* of its bytes down and then hit a full disk; the other
    writes go through. Returns the list of calls made (their sizes)."""
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    real = jsonl._write_all
    calls: list[int] = []

    def write_all(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) == fail_on_call:
            os.write(fd, data[: int(len(data) * keep)])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(jsonl, "_write_all", write_all)
    monkeypatch.setattr(jsonl, "_write_lines", _lines_through(write_all))
    return calls


def _line_ids(store: JSONLStorage) -> list[str]:
    """The id of every raw line in the data files; fails on any line that is not whole JSON."""
    return [json.loads(line)["id"] for path in store.files() for line in path.read_bytes().splitlines()]


def _verified(directory: Path) -> int:
    with llmaudit.open(f"jsonl://{directory}") as reader:
        report = reader.verify()
    assert report.ok, report.to_json()
    return report.totals()["verified"]


def test_a_batch_cut_short_by_a_full_disk_leaves_no_line_of_it_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC half-way through the append (whole lines and a cut one on disk): the file is cut back to
    its size before the batch, the chain head stays, and the retried batch is stored exactly once."""
    store, chain = JSONLStorage(tmp_path), Chain(None)
    first = _sealed(chain, 3)
    store.write(first)
    before = _snapshot(tmp_path)
    batch = _sealed(chain, 10, start=DAY + timedelta(seconds=3))
    calls = _failing_write(monkeypatch, fail_on_call=1, keep=0.55)
    with pytest.raises(StorageUnavailableError, match="No space left"):
        store.write(batch)
    assert calls  # the partial write really happened
    assert _snapshot(tmp_path) == before
    monkeypatch.undo()
    store.write(batch)  # what the writer does next: retry, or spill and replay later
    assert _line_ids(store) == [r.id for r in first + batch]
    assert _verified(tmp_path) == 13


def test_a_full_disk_while_saving_the_chain_head_takes_the_appended_lines_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The append succeeded but the chain head file could not be saved: the lines are removed again,
    the old head file is intact and no temporary file is left, so a retry does not double the batch."""
    store, chain = JSONLStorage(tmp_path), Chain(None)
    store.write(_sealed(chain, 2))
    before = _snapshot(tmp_path)
    batch = _sealed(chain, 5, start=DAY + timedelta(seconds=2))
    calls = _failing_write(monkeypatch, fail_on_call=2)  # 1: the data file, 2: the chain head's temporary
    with pytest.raises(StorageUnavailableError):
        store.write(batch)
    assert len(calls) == 2
    assert _snapshot(tmp_path) == before
    monkeypatch.undo()
    store.write(batch)
    assert len(_line_ids(store)) == len(set(_line_ids(store))) == 7
    assert _verified(tmp_path) == 7


def test_a_batch_over_two_days_is_undone_in_both_files_and_a_file_it_created_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first day's append lands, the second day's (a new file) fails: both are put back, and the
    file the batch created is removed rather than left empty."""
    store, chain = JSONLStorage(tmp_path), Chain(None)
    store.write(_sealed(chain, 1, start=BEFORE_MIDNIGHT))
    before = _snapshot(tmp_path)
    batch = _sealed(chain, 20, start=BEFORE_MIDNIGHT + timedelta(seconds=1))  # crosses midnight UTC
    assert len({r.created_at.date() for r in batch}) == 2
    _failing_write(monkeypatch, fail_on_call=2, keep=0.3)
    with pytest.raises(StorageUnavailableError):
        store.write(batch)
    assert _snapshot(tmp_path) == before
    assert len(store.files()) == 1


def test_a_batch_that_made_the_file_rotate_is_undone_and_the_next_one_reuses_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure on a freshly rotated file removes it; the retry creates it again and all is readable."""
    store, chain = JSONLStorage(tmp_path, max_bytes=500), Chain(None)
    store.write(_sealed(chain, 2))
    before = _snapshot(tmp_path)
    batch = _sealed(chain, 3, start=DAY + timedelta(seconds=2))
    _failing_write(monkeypatch, fail_on_call=1)
    with pytest.raises(StorageUnavailableError):
        store.write(batch)
    assert _snapshot(tmp_path) == before
    monkeypatch.undo()
    store.write(batch)
    assert [p.name for p in store.files()] == ["llmaudit-2026-11-24.jsonl", "llmaudit-2026-11-24.1.jsonl"]
    assert _verified(tmp_path) == 5


def test_a_full_disk_makes_the_writer_spill_and_replay_not_reject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through an Auditor: a disk full for a while is an outage (records spill, then replay, each
    stored once), never a refusal of the records (which would park them in the rejected file)."""
    disk_full = True
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    real = jsonl._write_all

    def write_all(fd: int, data: bytes) -> None:
        if disk_full:
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(jsonl, "_write_all", write_all)
    monkeypatch.setattr(jsonl, "_write_lines", _lines_through(write_all))
    auditor = llmaudit.Auditor(
        f"jsonl://{tmp_path / 'log'}", spool_dir=str(tmp_path / "spool"), batch_size=10
    )
    # private: the auditor's writer: its retry pacing and spool have no public setting
    auditor._writer.retry_delays_s = (0.01,)
    for i in range(25):
        auditor.submit(AuditRecord(metadata={"i": i}))
    assert auditor.flush(30)
    stats = auditor.stats()
    assert (stats.written, stats.spilled, stats.rejected, stats.failed) == (0, 25, 0, 0)
    store = JSONLStorage(tmp_path / "log")
    assert _line_ids(store) == []  # the cut batches left nothing
    disk_full = False
    assert auditor.replay_spool() == 25
    auditor.close()
    assert len(_line_ids(store)) == len(set(_line_ids(store))) == 25
    assert _verified(tmp_path / "log") == 25


def test_a_child_forked_while_the_parent_holds_the_lock_does_not_keep_it(tmp_path: Path) -> None:
    """A fork in the middle of a batch copies the locked descriptor into the child; the parent's
    release must still free the lock for everyone (the child writes, then the parent again)."""
    store = JSONLStorage(tmp_path)
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with store._locked():
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child: blocks until the parent lets go of the lock
            code = 1
            try:
                store.write([AuditRecord(created_at=DAY, session_key="child")])
                code = 0
            finally:
                os._exit(code)
        time.sleep(0.2)
    deadline = time.monotonic() + 20
    while not (status := os.waitpid(pid, os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child never got the lock the parent had released")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status[1]) == 0
    store.write([AuditRecord(created_at=DAY, session_key="parent")])
    assert sorted(r.session_key or "" for r in store.read()) == ["child", "parent"]


@pytest.mark.parametrize("budget", [1, 7, 100, 4096])
def test_lines_written_with_writev_survive_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    """``writev`` may put down fewer bytes than asked, even in the middle of a line: the rest follows,
    every line exactly once with its newline, more than IOV_MAX buffers included."""
    lines = [f'{{"n":{i},"text":"{"x" * (i % 50)}"}}'.encode() for i in range(700)]  # 1,400 buffers
    real_writev = os.writev
    sizes: list[int] = []

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        sizes.append(len(buffers))
        data = b"".join(buffers)[:budget]
        return real_writev(fd, [data])

    monkeypatch.setattr(os, "writev", short_writev)
    fd = os.open(tmp_path / "lines", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        jsonl._write_lines(fd, lines)
    finally:
        os.close(fd)
    assert (tmp_path / "lines").read_bytes() == b"".join(line + b"\n" for line in lines)
    assert max(sizes) <= 1024


def test_a_full_disk_in_the_middle_of_writev_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short ``writev`` followed by ENOSPC: the error reaches `write` (which cuts the file back)."""
    real_writev = os.writev
    state = {"calls": 0}

    def filling_writev(fd: int, buffers: list[bytes]) -> int:
        state["calls"] += 1
        if state["calls"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writev(fd, [b"".join(buffers)[:10]])

    monkeypatch.setattr(os, "writev", filling_writev)

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jsonl, "_write_all", full)
    fd = os.open(tmp_path / "lines", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with pytest.raises(OSError, match="No space"):
            # private: the store's own engine, files and writes, to inspect or tamper with what it holds
            jsonl._write_lines(fd, [b'{"a":1}', b'{"b":2}'])
    finally:
        os.close(fd)
