"""The writer and the Auditor: batching, flushing, sync mode, outages, the spool, strict mode."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from tests.helpers import ControlledStorage, WatchedLock

from llmaudit import AuditError, Auditor, AuditRecord, StorageUnavailableError

# private: writer internals (settings, spool, frames, signal hooks) that no public API exposes
from llmaudit.pipeline.spool import Spool


def make(tmp_path: Path, storage: ControlledStorage | None = None, **options: object) -> Auditor:
    storage = ControlledStorage() if storage is None else storage
    auditor = Auditor(storage, spool_dir=str(tmp_path / "spool"), **options)  # type: ignore[arg-type]
    # private: the auditor's writer: its retry pacing and spool have no public setting
    auditor._writer.retry_delays_s = (0.0,)
    auditor._writer.probe_interval_s = 0.05
    return auditor


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.01)


def test_background_records_are_stored_after_flush(tmp_path: Path) -> None:
    """flush() returns only once every record submitted before it is in storage."""
    storage = ControlledStorage()
    with make(tmp_path, storage) as auditor:
        records = [AuditRecord(session_key=f"k{i}") for i in range(1234)]
        for record in records:
            auditor.submit(record)
        assert auditor.flush(timeout=10)
        assert sorted(storage.ids()) == sorted(r.id for r in records)
        stats = auditor.stats()
        assert (stats.submitted, stats.written, stats.queue_depth) == (1234, 1234, 0)
        assert "llmaudit-writer" in storage.writer_threads
        assert "MainThread" not in storage.writer_threads


def test_batches_never_exceed_batch_size(tmp_path: Path) -> None:
    """The writer groups records into batches of at most batch_size."""
    storage = ControlledStorage()
    storage.gate.clear()  # hold the writer so the queue fills up
    with make(tmp_path, storage, batch_size=50) as auditor:
        for _ in range(420):
            auditor.submit(AuditRecord())
        storage.gate.set()
        assert auditor.flush(10)
    assert max(storage.batches) <= 50
    assert sum(storage.batches) == 420


def test_records_are_written_within_the_flush_interval_without_flush(tmp_path: Path) -> None:
    """A lone record does not wait for a full batch: the interval writes it."""
    storage = ControlledStorage()
    with make(tmp_path, storage, flush_interval_s=0.05) as auditor:
        auditor.submit(AuditRecord())
        wait_for(lambda: len(storage.ids()) == 1, timeout=5)


def test_every_full_batch_wakes_the_writer_without_flush_or_interval(tmp_path: Path) -> None:
    """With the interval out of the way, a full queue alone wakes the writer, batch after batch:
    submit skips waking it while a wake-up is pending, and must never skip the next one."""
    storage = ControlledStorage()
    with make(tmp_path, storage, batch_size=10, flush_interval_s=3600) as auditor:
        for round_ in range(1, 6):
            for _ in range(10 if round_ % 2 else 25):  # exactly one batch, or two and a half
                auditor.submit(AuditRecord())
            expected = sum(10 if r % 2 else 20 for r in range(1, round_ + 1))  # the half waits
            wait_for(lambda expected=expected: len(storage.ids()) >= expected, timeout=10)
        assert auditor.flush(10)
        assert len(storage.ids()) == 10 * 3 + 25 * 2


def test_flush_reports_a_timeout_when_storage_is_stuck(tmp_path: Path) -> None:
    """flush(timeout) never hangs the caller: it returns False when the deadline passes."""
    storage = ControlledStorage()
    storage.gate.clear()
    auditor = make(tmp_path, storage)
    auditor.submit(AuditRecord())
    assert auditor.flush(timeout=0.2) is False
    storage.gate.set()
    assert auditor.flush(timeout=10) is True
    auditor.close()


def test_sync_mode_stores_before_submit_returns(tmp_path: Path) -> None:
    """mode="sync": the record is durable when submit returns, written on the caller's thread."""
    storage = ControlledStorage()
    with make(tmp_path, storage, mode="sync") as auditor:
        record = AuditRecord()
        auditor.submit(record)
        assert storage.ids() == [record.id]
        assert storage.writer_threads == {threading.current_thread().name}


def test_outage_spills_then_replays_with_nothing_lost_or_duplicated(tmp_path: Path) -> None:
    """Records written while the backend is down go to the spool and come back once it is up."""
    storage = ControlledStorage()
    with make(tmp_path, storage, flush_interval_s=0.02) as auditor:
        before = [AuditRecord() for _ in range(10)]
        for r in before:
            auditor.submit(r)
        assert auditor.flush(10)
        storage.down = True
        during = [AuditRecord() for _ in range(25)]
        for r in during:
            auditor.submit(r)
        assert auditor.flush(10)
        assert auditor.stats().spilled == 25
        assert len(auditor.spool.files()) == 1
        storage.down = False
        wait_for(lambda: auditor.stats().replayed == 25)
        assert auditor.spool.files() == []
    ids = storage.ids()
    assert sorted(ids) == sorted(r.id for r in before + during)
    assert len(ids) == len(set(ids))


def test_spool_files_are_private(tmp_path: Path) -> None:
    """Spilled records may hold prompts: the spool file is 0600 and its directory 0700."""
    storage = ControlledStorage()
    storage.down = True
    with make(tmp_path, storage) as auditor:
        auditor.submit(AuditRecord())
        assert auditor.flush(10)
        (path,) = auditor.spool.files()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        storage.down = False


def test_next_auditor_replays_what_a_previous_one_spilled(tmp_path: Path) -> None:
    """After a crash or restart, the next process with the same spool replays it on start."""
    down = ControlledStorage()
    down.down = True
    first = make(tmp_path, down)
    records = [AuditRecord() for _ in range(7)]
    for r in records:
        first.submit(r)
    first.close()
    assert first.stats().spilled == 7
    healthy = ControlledStorage()
    with make(tmp_path, healthy) as second:
        wait_for(lambda: len(healthy.ids()) == 7)
        assert second.stats().replayed == 7
    assert sorted(healthy.ids()) == sorted(r.id for r in records)
    assert Spool(tmp_path / "spool").files() == []


def test_replay_is_idempotent_when_a_file_is_replayed_twice(tmp_path: Path) -> None:
    """A crash between writing a replayed batch and deleting its file must not duplicate records."""
    spool = Spool(tmp_path / "spool")
    records = [AuditRecord() for _ in range(5)]
    spool.append(records)
    spool.release()
    (path,) = spool.files()
    copy = path.with_name("spool-0-copy.jsonl")
    copy.write_bytes(path.read_bytes())
    copy.chmod(0o600)  # as llmaudit makes them: replay refuses a spool file others can read
    storage = ControlledStorage()
    result = spool.replay(storage)
    assert (result.files, result.records) == (2, 10)
    assert sorted(storage.ids()) == sorted(r.id for r in records)


def test_a_replay_that_fails_part_way_keeps_only_what_is_left(tmp_path: Path) -> None:
    """A storage that fails after some batches of a spool file went in: the file is cut down to the
    rest, so the next replay writes each record once even into a store that is not idempotent."""
    # private: the backend classes, built directly to inspect or tamper with their tables and files
    from llmaudit.storage.memory import MemoryStorage

    class FailsOnce(MemoryStorage):
        def __init__(self) -> None:
            super().__init__()
            self.calls, self.lines = 0, []

        def write(self, records):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 3:
                raise StorageUnavailableError("down for a moment")
            self.lines.extend(r.id for r in records)  # what a non-idempotent (JSONL) store would hold

    spool = Spool(tmp_path / "spool")
    records = [AuditRecord() for _ in range(10)]
    spool.append(records[:4])
    spool.append(records[4:])
    spool.release()
    storage = FailsOnce()
    with pytest.raises(StorageUnavailableError):
        spool.replay(storage, batch_size=3)
    (path,) = spool.files()
    assert len(path.read_bytes().splitlines()) == 4  # two batches of three are in the store
    result = spool.replay(storage, batch_size=3)
    assert result.records == 4 and not spool.files()
    assert storage.lines == [r.id for r in records]  # each once, in order


def test_a_truncated_spool_line_is_reported_and_the_rest_replayed(tmp_path: Path) -> None:
    """A process killed mid-append leaves half a line: it is skipped with file:line, not fatal."""
    spool = Spool(tmp_path / "spool")
    records = [AuditRecord() for _ in range(3)]
    spool.append(records)
    spool.release()
    (path,) = spool.files()
    with path.open("ab") as f:
        f.write(b'{"id": "cut sho')
    problems: list[str] = []
    result = spool.replay(ControlledStorage(), on_problem=problems.append)
    assert result.records == 3
    assert result.skipped_lines == 1
    assert problems[0].startswith(f"{path}:4:")


def test_a_locked_spool_file_is_left_to_its_owner(tmp_path: Path) -> None:
    """Another process never replays a spool file its owner is still appending to."""
    owner = Spool(tmp_path / "spool")
    owner.append([AuditRecord()])
    other = Spool(tmp_path / "spool")
    storage = ControlledStorage()
    assert other.replay(storage).files == 0
    assert storage.ids() == []
    owner.release()
    assert other.replay(storage).records == 1


def test_refused_record_is_kept_aside_and_the_rest_of_its_batch_written(
    tmp_path: Path, expect_internal_errors: list[logging.LogRecord]
) -> None:
    """A record the backend refuses (bad data) does not block its batch, nor get retried forever."""
    storage = ControlledStorage()
    storage.refuse = lambda r: r.session_key == "bad"
    with make(tmp_path, storage) as auditor:
        good = [AuditRecord(session_key="good") for _ in range(4)]
        bad = AuditRecord(session_key="bad")
        for r in [*good[:2], bad, *good[2:]]:
            auditor.submit(r)
        assert auditor.flush(10)
        stats = auditor.stats()
    assert sorted(storage.ids()) == sorted(r.id for r in good)
    assert (stats.written, stats.rejected) == (4, 1)
    rejected = tmp_path / "spool" / f"rejected-{os.getpid()}.jsonl"
    assert bad.id in rejected.read_text()
    assert any(bad.id in r.getMessage() for r in expect_internal_errors)


def test_full_queue_spills_instead_of_dropping(tmp_path: Path) -> None:
    """When the writer cannot keep up, the overflow goes to the spool, counted, not lost."""
    storage = ControlledStorage()
    storage.gate.clear()
    with make(tmp_path, storage, queue_size=5) as auditor:
        for _ in range(5):
            auditor.submit(AuditRecord())
        # private: the writer's queue, locks and child, the only way to hold or observe it mid-flight
        wait_for(lambda: auditor.stats().queue_depth == 0 or len(auditor._writer._queue) <= 5)
        for _ in range(40):
            auditor.submit(AuditRecord())
        assert auditor.stats().spilled >= 30
        storage.gate.set()
        assert auditor.flush(10)
        wait_for(lambda: len(storage.ids()) == 45)


def test_strict_mode_raises_when_a_record_can_be_neither_stored_nor_spilled(
    tmp_path: Path, expect_internal_errors: list[logging.LogRecord]
) -> None:
    """strict=True: an unrecordable call raises AuditError instead of going unrecorded."""
    storage = ControlledStorage()
    storage.down = True
    (tmp_path / "spool").write_text("a file where the spool directory should be")
    auditor = make(tmp_path, storage, mode="sync", strict=True)
    with pytest.raises(AuditError, match="neither stored nor spilled"):
        auditor.submit(AuditRecord())
    assert auditor.stats().failed == 1
    storage.down = False
    auditor.close()


def test_without_strict_an_unrecordable_call_is_logged_and_counted_not_raised(
    tmp_path: Path, expect_internal_errors: list[logging.LogRecord]
) -> None:
    """The default never raises into the caller; the loss is an ERROR log and a counter."""
    storage = ControlledStorage()
    storage.down = True
    (tmp_path / "spool").write_text("not a directory")
    auditor = make(tmp_path, storage, mode="sync")
    auditor.submit(AuditRecord())
    assert auditor.stats().failed == 1
    assert any("neither stored nor spilled" in r.getMessage() for r in expect_internal_errors)
    storage.down = False
    auditor.close()


class _Capture:
    def __init__(self, key: str) -> None:
        self.key = key
        self.built_on: str | None = None

    def to_record(self) -> AuditRecord | None:
        self.built_on = threading.current_thread().name
        return AuditRecord(session_key=self.key)


def test_captures_are_built_on_the_writer_thread(tmp_path: Path) -> None:
    """The hot path hands over raw captures; record building happens off the caller's thread."""
    storage = ControlledStorage()
    capture = _Capture("k")
    with make(tmp_path, storage) as auditor:
        auditor.submit(capture)
        assert auditor.flush(10)
    assert capture.built_on == "llmaudit-writer"
    assert [r.session_key for r in storage.all()] == ["k"]


def test_processors_transform_drop_and_fail_are_each_counted(
    tmp_path: Path, expect_internal_errors: list[logging.LogRecord]
) -> None:
    """A processor returning None drops (counted); one that raises fails only that record."""

    def tag(record: AuditRecord) -> AuditRecord | None:
        if record.session_key == "drop":
            return None
        if record.session_key == "boom":
            raise RuntimeError("processor bug")
        return AuditRecord(**{**{f: getattr(record, f) for f in ("id", "session_key")}, "tags": ("seen",)})

    storage = ControlledStorage()
    with make(tmp_path, storage, processors=[tag]) as auditor:
        for key in ("keep", "drop", "boom", "keep"):
            auditor.submit(AuditRecord(session_key=key))
        assert auditor.flush(10)
        stats = auditor.stats()
    assert [r.tags for r in storage.all()] == [("seen",), ("seen",)]
    assert (stats.written, stats.dropped, stats.failed) == (2, 1, 1)
    assert expect_internal_errors  # the processor bug is logged, not swallowed silently


def test_submit_after_close_still_stores(tmp_path: Path) -> None:
    """A late record (from another thread during shutdown) is written synchronously, not queued forever."""
    storage = ControlledStorage()
    auditor = make(tmp_path, storage)
    auditor.close()
    record = AuditRecord()
    auditor.submit(record)
    assert storage.ids() == [record.id]


def test_sync_mode_threads_reach_the_storage_in_chain_order(tmp_path: Path) -> None:
    """Records are sealed under the store lock: a thread waiting to write has no chain number yet, so
    a process killed mid-write leaves the end of the chain missing, never a hole verify would report
    as a deleted record (seen under kill -9 with 8 threads in sync mode)."""
    storage = ControlledStorage()
    storage.gate.clear()
    auditor = Auditor(storage, mode="sync", spool_dir=str(tmp_path / "spool"))
    store_lock = WatchedLock()
    # private: the writer's queue, locks and child, the only way to hold or observe it mid-flight
    auditor._writer._store_lock = store_lock  # type: ignore[assignment]
    first = threading.Thread(target=auditor.submit, args=(AuditRecord(session_key="first"),))
    second = threading.Thread(target=auditor.submit, args=(AuditRecord(session_key="second"),))
    try:
        first.start()
        assert storage.entered.wait(10)  # the first record is sealed and inside write()
        second.start()
        assert store_lock.second_waiting.wait(10)  # the second thread is built and waiting for the store
        assert auditor._writer.chain._seq == 1, "a record was numbered before it could be written"
    finally:
        storage.gate.set()
        first.join()
        if second.is_alive() or second.ident is not None:
            second.join()
    written = sorted(storage.all(), key=lambda r: r.seq or 0)
    assert [(r.seq, r.session_key) for r in written] == [(1, "first"), (2, "second")]
    auditor.close()
