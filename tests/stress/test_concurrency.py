"""Issue 7 item 4: many processes and threads writing to one store at once.

A pre-fork server (one auditor configured in the parent, then ``fork``) and independently started
processes, each running several threads, write to one JSONL directory (rotating by size while they
race), one SQLite file and one PostgreSQL table at the same time. Every record must be there exactly
once, nothing else, and every writer (the parent and each process) must have its own chain that verifies.
Some of the records come through the real transport (an OpenAI chat completion over ``MockTransport``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.stress.conftest import Figures
from tests.wire import CHAT_REQUEST, CHAT_RESPONSE, CHAT_URL

import llmaudit
from llmaudit import Auditor, AuditRecord

# private: internal-error accounting (the guard) and the internal error classes
from llmaudit._guard import internal_error_counts

PROCESSES, THREADS, PER_THREAD = 4, 4, 400
HTTP_EVERY = 10  # every tenth record of a thread is a real HTTP call through AuditTransport
PARENT_RECORDS = 200  # written by the parent from a thread while it forks the children
CHILD_TIMEOUT_S = 120.0
ROOT = Path(__file__).resolve().parents[2]

KINDS = ["jsonl", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

Tag = tuple[int, int, int]  # (proc, thread, i); the parent's records are proc -1, thread 0


def _url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "jsonl":  # small files: they rotate many times while the processes race
        return f"jsonl://{tmp_path / 'log'}?max_bytes=200000"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return str(request.getfixturevalue("pg_url"))


def _chat_completion(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=CHAT_RESPONSE)


def _write_from_threads(auditor: Auditor, proc: int) -> list[str]:
    """THREADS threads each write PER_THREAD records tagged (proc, thread, i); returns their errors."""
    errors: list[str] = []
    barrier = threading.Barrier(THREADS)
    transport = llmaudit.AuditTransport(httpx.MockTransport(_chat_completion), auditor=auditor)
    with httpx.Client(transport=transport) as client:

        def work(thread: int) -> None:
            try:
                barrier.wait()
                for i in range(PER_THREAD):
                    tag = {"proc": proc, "thread": thread, "i": i}
                    if i % HTTP_EVERY == 0:
                        with llmaudit.session(f"p{proc}", metadata=tag):
                            client.post(CHAT_URL, json=CHAT_REQUEST).raise_for_status()
                    else:
                        auditor.submit(AuditRecord(session_key=f"p{proc}", source="manual", metadata=tag))
            except Exception as exc:  # reported to the test through the result file
                errors.append(f"thread {thread}: {exc!r}")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return errors


def _result(auditor: Auditor, errors: list[str]) -> dict[str, Any]:
    stats = auditor.stats()
    return {"stats": asdict(stats), "errors": errors, "internal_errors": internal_error_counts()}


def run_process(url: str, spool_dir: str, proc: int, out: str) -> None:
    """The body of a process started fresh (``python -c``): its own auditor, threads, close."""
    auditor = Auditor(url, spool_dir=spool_dir, batch_size=20, flush_interval_s=0.01)
    errors = _write_from_threads(auditor, proc)
    auditor.close(timeout=60)
    Path(out).write_text(json.dumps(_result(auditor, errors)))


def _wait_all(pids: list[int]) -> dict[int, int]:
    """Exit codes of the forked children; kills them and fails if they do not finish in time."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    codes: dict[int, int] = {}
    while len(codes) < len(pids):
        for pid in pids:
            if pid not in codes:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            for pid in set(pids) - set(codes):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            pytest.fail(f"forked writers still running after {CHILD_TIMEOUT_S}s (deadlock?)")
        time.sleep(0.02)
    return codes


def _check_results(tmp_path: Path, count: int) -> None:
    """Each process closed cleanly: no thread error, no internal error, every record written."""
    for proc in range(count):
        result = json.loads((tmp_path / f"result-{proc}.json").read_text())
        stats = result["stats"]
        assert not result["errors"] and not result["internal_errors"], result
        assert stats["submitted"] == stats["written"] == THREADS * PER_THREAD, result
        assert stats["spilled"] == stats["failed"] == stats["rejected"] == 0, result


def _tag(record: AuditRecord) -> Tag:
    meta = record.metadata
    return int(meta["proc"]), int(meta["thread"]), int(meta["i"])


def _check_store(url: str, spool_dir: Path, processes: int, parent: bool) -> tuple[int, int]:
    """Every (proc, thread, i) exactly once and nothing else; one verified chain per writer holding
    exactly its own process's records. Returns (records, writers)."""
    with llmaudit.open(url) as reader:
        problems: list[str] = []
        records = list(reader.records(on_problem=problems.append))
        report = reader.verify(on_problem=problems.append)
    expected = {(p, t, i) for p in range(processes) for t in range(THREADS) for i in range(PER_THREAD)}
    if parent:
        expected |= {(-1, 0, i) for i in range(PARENT_RECORDS)}
    tags = Counter(_tag(r) for r in records)
    assert not problems
    assert [tag for tag, n in tags.items() if n > 1] == []
    assert set(tags) == expected, (len(set(tags) - expected), len(expected - set(tags)))
    assert len({r.id for r in records}) == len(records) == len(expected)
    for record in records:
        http = _tag(record)[2] % HTTP_EVERY == 0 and _tag(record)[0] >= 0
        assert (record.url, record.status_code, record.total_tokens) == (
            (CHAT_URL, 200, 12) if http else (None, None, None)
        )
    by_writer: dict[str, set[int]] = defaultdict(set)
    for record in records:
        by_writer[record.writer_id or ""].add(_tag(record)[0])
    assert sorted(len(procs) for procs in by_writer.values()) == [1] * (processes + parent)
    assert report.ok, report.to_json()
    assert len(report.writers) == processes + parent == len(by_writer)
    assert report.totals()["verified"] == len(expected)
    assert not list(spool_dir.glob("spool-*.jsonl")), "records left waiting in the spool"
    return len(records), len(report.writers)


def _parent_writes(auditor: Auditor, first: int) -> None:
    for i in range(first, PARENT_RECORDS):
        meta = {"proc": -1, "thread": 0, "i": i}
        auditor.submit(AuditRecord(session_key="parent", source="manual", metadata=meta))
        time.sleep(0.001)


def _fork() -> int:
    with warnings.catch_warnings():  # Python 3.12+ warns of a fork with threads running: the very case
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _fork_children(auditor: Auditor, tmp_path: Path) -> list[int]:
    pids = []
    for proc in range(PROCESSES):
        pid = _fork()
        if pid == 0:  # pragma: no cover - the child: inherits the configured auditor, gets a new writer
            code = 1
            try:
                errors = _write_from_threads(auditor, proc)
                auditor.close(timeout=60)
                (tmp_path / f"result-{proc}.json").write_text(json.dumps(_result(auditor, errors)))
                code = 0
            except BaseException:
                traceback.print_exc()  # os._exit below would swallow it
            finally:
                os._exit(code)
        pids.append(pid)
    return pids


@pytest.mark.parametrize("kind", KINDS)
def test_forked_processes_and_threads_write_every_record_once_on_verifiable_chains(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, figures: Figures
) -> None:
    """The pre-fork server pattern: one auditor configured in the parent, 4 children forked while the
    parent's own thread keeps recording, 4 threads per child (1 in 10 records through the transport).
    Every record is stored once, and the parent and each child keep their own verifiable chain; no
    child inherits a lock that the parent's writer held at the moment of the fork."""
    url, spool = _url(kind, tmp_path, request), tmp_path / "spool"
    started = time.monotonic()
    auditor = Auditor(url, spool_dir=str(spool), batch_size=20, flush_interval_s=0.01)
    for i in range(3):
        meta = {"proc": -1, "thread": 0, "i": i}
        auditor.submit(AuditRecord(session_key="parent", source="manual", metadata=meta))
    assert auditor.flush(30)
    parent = threading.Thread(target=_parent_writes, args=(auditor, 3))
    # The parent keeps writing while it forks: a fork in the middle of a batch (SQLite's mutexes
    # held, the JSONL file lock taken) would hang the child; the writer holds forks off meanwhile.
    parent.start()
    pids = _fork_children(auditor, tmp_path)
    parent.join()
    codes = _wait_all(pids)
    auditor.close(timeout=60)
    assert list(codes.values()) == [0] * PROCESSES
    _check_results(tmp_path, PROCESSES)
    parent_stats = auditor.stats()
    assert parent_stats.written == parent_stats.submitted == PARENT_RECORDS
    records, writers = _check_store(url, spool, PROCESSES, parent=True)
    if kind == "jsonl":
        assert len(list((tmp_path / "log").glob("llmaudit-*.jsonl"))) > 5  # rotated while racing
    figures.add(
        "concurrency",
        f"{kind}: {records} records from {writers} writers ({PROCESSES} forked processes x {THREADS}"
        f" threads + the parent) in {time.monotonic() - started:.1f}s",
    )


_PROGRAM = (
    "import sys; from tests.stress.test_concurrency import run_process;"
    " run_process(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])"
)


@pytest.mark.parametrize("kind", KINDS)
def test_independent_processes_and_threads_write_every_record_once_on_verifiable_chains(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, figures: Figures
) -> None:
    """4 processes started fresh (not forked: nothing inherited, each its own view of which file is
    current) with 4 threads each append to one store at once; with JSONL the files rotate under them."""
    url, spool = _url(kind, tmp_path, request), tmp_path / "spool"
    # With SQLite, the processes race to create the schema of the new file ("table already exists").
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PROGRAM,
                url,
                str(spool),
                str(proc),
                str(tmp_path / f"result-{proc}.json"),
            ],
            cwd=ROOT,
        )
        for proc in range(PROCESSES)
    ]
    try:
        codes = [p.wait(CHILD_TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0] * PROCESSES
    _check_results(tmp_path, PROCESSES)
    records, writers = _check_store(url, spool, PROCESSES, parent=False)
    if kind == "jsonl":
        assert len(list((tmp_path / "log").glob("llmaudit-*.jsonl"))) > 5  # rotated while racing
    figures.add(
        "concurrency",
        f"{kind}: {records} records from {writers} independent processes x {THREADS} threads"
        f" in {time.monotonic() - started:.1f}s",
    )
