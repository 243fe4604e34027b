"""writer="process": records built, redacted, sealed and stored by a child process.

Driven through the real transport (both httpx branches' MockTransport), into real SQLite and JSONL
stores, and read back with the public reader; the child is a real ``sys.executable`` process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.helpers import tag_process

import llmaudit
from llmaudit import Auditor, AuditRecord, ConfigurationError, Redactor

# private: writer internals (settings, spool, frames, signal hooks) that no public API exposes
from llmaudit.pipeline.frames import PIPE_BYTES, Frames
from llmaudit.pipeline.frames import make_pipe as _pipe
from llmaudit.pipeline.process_runner import ProcessWriter
from llmaudit.storage.memory import MemoryStorage

FAKE_KEY = "sk-proj-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123"
COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1764000000,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}'
)


@pytest.fixture(params=["httpx", "httpx2"])
def hx(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def _client(hx: ModuleType, auditor: Auditor) -> Any:
    def handler(request: Any) -> Any:
        return hx.Response(200, headers={"content-type": "application/json"}, content=COMPLETION)

    transport = llmaudit.AuditTransport(hx.MockTransport(handler), auditor=auditor)
    return hx.Client(transport=transport, headers={"authorization": f"Bearer {FAKE_KEY}"})


def _chat(client: Any, n: int) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"call {n} key {FAKE_KEY}"}]}
    response = client.post("https://api.openai.com/v1/chat/completions", json=body)
    assert response.content == COMPLETION  # the caller receives exactly what the server sent


def _comparable(record: AuditRecord) -> dict[str, Any]:
    skip = {"id", "created_at", "writer_id", "seq", "prev_hash", "hash", "duration_ms", "metadata"}
    return {k: v for k, v in dataclasses.asdict(record).items() if k not in skip}


@pytest.mark.parametrize("scheme", ["sqlite", "jsonl"])
def test_the_child_stores_what_the_thread_writer_stores(hx: ModuleType, tmp_path: Path, scheme: str) -> None:
    url = {"sqlite": "sqlite:///{}/{}.db", "jsonl": "jsonl://{}/{}"}[scheme]
    stores = {}
    for writer in ("thread", "process"):
        auditor = Auditor(
            url.format(tmp_path, writer), spool_dir=str(tmp_path / f"spool-{writer}"), writer=writer
        )
        client = _client(hx, auditor)
        with llmaudit.session("s-1", user="alice", tags=["t"]):
            for n in range(70):  # more than one hand-off of 32
                _chat(client, n)
        assert auditor.flush(30)
        stats = auditor.stats()
        assert (stats.submitted, stats.written, stats.failed) == (70, 70, 0)
        if writer == "process":
            # private: the process runner and its child process have no public handle
            assert isinstance(auditor._writer, ProcessWriter) and auditor._writer.fallback_reason is None
            child = auditor._writer._child
            assert child is not None and child.poll() is None and child.pid != os.getpid()
        auditor.close()
        if writer == "process":
            assert child is not None and child.returncode == 0  # closing ends the child cleanly
        reader = llmaudit.open(url.format(tmp_path, writer))
        records = sorted(reader.records(), key=lambda r: r.request["messages"][0]["content"])  # type: ignore[index]
        assert reader.verify().ok
        reader.close()
        stores[writer] = records
    assert len(stores["process"]) == 70
    assert [_comparable(r) for r in stores["process"]] == [_comparable(r) for r in stores["thread"]]
    first = stores["process"][0]
    assert (first.session_key, first.user, first.model, first.total_tokens) == (
        "s-1",
        "alice",
        "gpt-4o-mini",
        15,
    )
    assert first.writer_id not in {r.writer_id for r in stores["thread"]}  # the child's own chain
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert FAKE_KEY.encode() not in raw  # redacted in the child: the key reached no file


def test_processors_and_redaction_rules_run_in_the_child(hx: ModuleType, tmp_path: Path) -> None:
    redactor = Redactor(rules=[{"path": "request.messages[*].content", "action": "hash"}], hash_key="k1")
    auditor = Auditor(
        f"sqlite:///{tmp_path}/p.db",
        spool_dir=str(tmp_path / "spool"),
        writer="process",
        redactor=redactor,
        before_write=tag_process,
    )
    _chat(_client(hx, auditor), 1)
    auditor.close()
    (record,) = llmaudit.open(f"sqlite:///{tmp_path}/p.db").records()
    assert record.metadata["built_in_pid"] not in (os.getpid(), None)
    # keyed hash with the parent's key: the same value this process's redactor produces (of the
    # content as built: the key, known from the Authorization header, already scrubbed from the body)
    expected = redactor(
        dataclasses.replace(record, request={"messages": [{"content": "call 1 key [REDACTED]"}]})
    )
    assert expected is not None
    assert record.request["messages"][0]["content"] == expected.request["messages"][0]["content"]  # type: ignore[index]


def _local_hook(record: AuditRecord) -> AuditRecord:
    return record


def test_configuration_the_child_could_not_follow_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    monkeypatch.setattr(_local_hook, "__module__", "__main__")
    with pytest.raises(ConfigurationError, match="__main__"):
        Auditor(url, writer="process", before_write=_local_hook)
    with pytest.raises(ConfigurationError, match="pickled"):
        Auditor(url, writer="process", before_write=lambda r: r)
    with pytest.raises(ConfigurationError, match="storage URL"):
        Auditor(MemoryStorage(), writer="process")
    with pytest.raises(ConfigurationError, match="memory"):
        Auditor("memory://x", writer="process")
    with pytest.raises(ConfigurationError, match="background"):
        Auditor(url, writer="process", mode="sync")
    with pytest.raises(ConfigurationError, match="LLMAUDIT_WRITER"):
        monkeypatch.setenv("LLMAUDIT_WRITER", "fork")
        Auditor(url)
    monkeypatch.setenv("LLMAUDIT_WRITER", "process")
    with Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        # private: the process runner and its child process have no public handle
        assert isinstance(auditor._writer, ProcessWriter)


def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_killed_child_loses_nothing(
    hx: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auditor = Auditor(f"sqlite:///{tmp_path}/k.db", spool_dir=str(tmp_path / "spool"), writer="process")
    # private: the process runner and its child process have no public handle
    writer = auditor._writer
    assert isinstance(writer, ProcessWriter)
    client = _client(hx, auditor)
    writer.start()  # the writer thread starts the child
    _wait(lambda: writer._child is not None)
    child = writer._child
    assert child is not None
    for n in range(100):
        _chat(client, n)
        if n == 50:
            os.kill(child.pid, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="llmaudit"):
        assert auditor.flush(30)
    for n in range(100, 120):  # after the fallback, in this process
        _chat(client, n)
    assert auditor.flush(30)
    stats = auditor.stats()
    auditor.close()
    assert writer.fallback_reason is not None and "writer process" in writer.fallback_reason
    assert any("writing in this process" in r.getMessage() for r in caplog.records)
    assert (stats.submitted, stats.failed, stats.queue_depth) == (120, 0, 0)
    contents = [
        r.request["messages"][0]["content"] for r in llmaudit.open(f"sqlite:///{tmp_path}/k.db").records()
    ]  # type: ignore[index]
    assert {c.split()[1] for c in contents} == {str(n) for n in range(120)}  # every call, at least once


class _Parking(threading.Event):
    """A wake-up event that says when the writer thread has begun to wait on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited_on = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waited_on.set()
        return super().wait(timeout)


@contextlib.contextmanager
def _no_timer_rounds(auditor: Auditor) -> Iterator[ProcessWriter]:
    """Start the writer process, let the writer thread finish its rounds, and keep it asleep (it
    waits on an event nobody sets) until the block ends: the test runs the rounds itself.

    The block begins only once the writer thread waits on that event: a round still under way (the
    flush's wake-up can come during one, and the round after it would ship the captures the test
    makes) would otherwise race the test's first calls when the machine is busy."""
    # private: the process runner and its child process have no public handle
    writer = auditor._writer
    assert isinstance(writer, ProcessWriter)
    writer.start()
    _wait(lambda: writer._outbox is not None)
    assert auditor.flush(30)
    quiet = _Parking()
    wake, writer._wake = writer._wake, quiet
    wake.set()  # out of a wait on the old event, if it is in one, and onto the new one
    assert quiet.waited_on.wait(30), "the writer thread did not go back to sleep"
    try:
        yield writer
    finally:
        writer._wake = wake
        quiet.set()


def test_between_flushes_the_writer_thread_leaves_handing_on_to_a_caller_that_keeps_up(
    hx: ModuleType, tmp_path: Path
) -> None:
    """A timer round of the writer thread must not take the send lock while the caller's thread is
    handing on: waiting for the interpreter lock behind a busy caller, it held it for 100-200 ms,
    and the caller's captures piled up for the flush."""
    spool = str(tmp_path / "spool")
    auditor = Auditor(f"sqlite:///{tmp_path}/t.db", spool_dir=spool, writer="process", flush_interval_s=3600)
    client = _client(hx, auditor)
    with _no_timer_rounds(auditor) as writer:
        for n in range(37):
            _chat(client, n)
        # private: the writer's queue, locks and child, the only way to hold or observe it mid-flight
        assert writer._hand_ons == 1 and len(writer._queue) == 5  # 32 handed on by the caller, 5 left
        done = threading.Event()
        with writer._send_lock:  # as if the caller were handing on at this moment
            rounds = threading.Thread(target=lambda: (writer._drain(), done.set()))
            rounds.start()
            assert done.wait(10), "the timer round waited for the send lock"
        rounds.join()
        assert len(writer._queue) == 5  # left for the caller's next hand-on
        seq = writer._seq
        writer._drain()  # no hand-on since the last look: the caller has gone quiet, the trickle goes
        assert len(writer._queue) == 0 and writer._seq == seq + 1
    assert auditor.flush(30)
    stats = auditor.stats()
    auditor.close()
    assert (stats.submitted, stats.written, stats.failed) == (37, 37, 0)
    assert len(list(llmaudit.open(f"sqlite:///{tmp_path}/t.db").records())) == 37


def _big_chat(client: Any, size: int) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * size}]}
    assert client.post("https://api.openai.com/v1/chat/completions", json=body).content == COMPLETION


def _stop(pid: int) -> None:
    """SIGSTOP *pid* and wait until it has really stopped: the signal is delivered asynchronously, and
    a child still running on the other core would read from the pipe meanwhile."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 60  # a hang detector, not a timing assumption
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
        assert time.monotonic() < deadline, "the child did not stop within 60 s"
        time.sleep(0.001)


def test_large_captures_are_handed_on_in_smaller_batches_and_past_a_full_pipe(
    hx: ModuleType, tmp_path: Path
) -> None:
    """32 captures of 100 KB would be 3 MB, more than the pipe takes: the child would wait for all of
    them and a flush for the largest batch. Batches shrink to about `SHIP_BYTES`, and a batch the
    pipe could not take goes out over the following calls."""
    spool = str(tmp_path / "spool")
    auditor = Auditor(f"sqlite:///{tmp_path}/b.db", spool_dir=spool, writer="process", flush_interval_s=3600)
    client = _client(hx, auditor)
    with _no_timer_rounds(auditor) as writer:
        # private: the writer's queue, locks and child, the only way to hold or observe it mid-flight
        outbox = writer._outbox
        assert outbox is not None
        for _ in range(32):  # the first batch, at the default size
            _big_chat(client, 100_000)
        assert writer._hand_ons == 1 and 1 <= writer._ship_at <= 3
        for _ in range(6):
            _big_chat(client, 100_000)
        assert writer._hand_ons >= 3  # handed on every few calls, not after 32
        child = writer._child
        assert child is not None
        # what the calls above left in the outbox goes to the child first (it is running), so that
        # the big capture's batch is handed on, not held back behind a batch the pipe has not taken
        with writer._send_lock:
            outbox.push(wait=True)
        assert outbox.unsent == 0
        # the next batch takes what the calls above left queued (how much depends on how fast the
        # child read) and the big capture, so that the big one is handed on whatever was left
        writer._ship_at = len(writer._queue) + 1
        seq = writer._seq
        # The child is stopped while the big batch is handed on, so that the pipe is full by
        # construction (it read everything meanwhile when this process was the slow one).
        _stop(child.pid)
        try:
            _big_chat(client, 3 * PIPE_BYTES)  # one batch three times the pipe's size
        finally:
            os.kill(child.pid, signal.SIGCONT)
        writer._ship_at = 10_000  # no new batch from here: only what is left of that one goes on
        assert writer._seq == seq + 1 and not writer._queue  # the big capture's batch was handed on
        assert outbox.unsent > 0  # and is larger than the stopped child's pipe takes
        while outbox.unsent:  # each call writes what the child has read meanwhile
            # wait for room in the pipe (the child reads), so that the next call writes something
            room = select.select([], [outbox.fd], [], 60)[1]
            assert room, "the child read nothing from the pipe for 60 s"
            _chat(client, 0)
    assert auditor.flush(30)
    stats = auditor.stats()
    auditor.close()
    assert (stats.written, stats.failed) == (stats.submitted, 0) and stats.submitted > 39


def test_a_child_that_cannot_start_leaves_the_work_to_this_process(
    hx: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "no-python"))
    with caplog.at_level(logging.WARNING, logger="llmaudit"):
        auditor = Auditor(f"sqlite:///{tmp_path}/n.db", spool_dir=str(tmp_path / "spool"), writer="process")
        client = _client(hx, auditor)
        for n in range(40):
            _chat(client, n)
        assert auditor.flush(30)
    assert auditor.stats().written == 40
    auditor.close()
    # private: the process runner and its child process have no public handle
    assert "could not start" in (auditor._writer.fallback_reason or "")  # type: ignore[attr-defined]
    assert len(list(llmaudit.open(f"sqlite:///{tmp_path}/n.db").records())) == 40


def test_the_child_ignores_sigint_and_sigterm_and_exits_when_the_parent_closes(
    hx: ModuleType, tmp_path: Path
) -> None:
    auditor = Auditor(f"sqlite:///{tmp_path}/s.db", spool_dir=str(tmp_path / "spool"), writer="process")
    # private: the process runner and its child process have no public handle
    writer = auditor._writer
    assert isinstance(writer, ProcessWriter)
    writer.start()  # the writer thread starts the child
    _wait(lambda: writer._child is not None)
    child = writer._child
    assert child is not None
    client = _client(hx, auditor)
    for n in range(40):
        _chat(client, n)
        if n == 10:
            child.send_signal(signal.SIGINT)  # a Ctrl-C reaches the whole process group
            child.send_signal(signal.SIGTERM)  # so does a service manager's stop
    assert auditor.flush(30)
    assert child.poll() is None and writer.fallback_reason is None
    auditor.close()
    assert child.returncode == 0
    assert auditor.stats().written == 40


class _Unpicklable:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __str__(self) -> str:
        return "unpicklable"


def test_a_capture_that_does_not_pickle_is_still_recorded(hx: ModuleType, tmp_path: Path) -> None:
    auditor = Auditor(f"jsonl://{tmp_path}/u", spool_dir=str(tmp_path / "spool"), writer="process")
    client = _client(hx, auditor)
    with llmaudit.session("odd", metadata={"thing": _Unpicklable()}):
        for n in range(40):
            _chat(client, n)
    with llmaudit.session("plain"):
        _chat(client, 40)
    assert auditor.flush(30)
    stats = auditor.stats()
    auditor.close()
    assert (stats.written, stats.failed) == (41, 0)
    records = list(llmaudit.open(f"jsonl://{tmp_path}/u").records())
    assert sorted(r.session_key or "" for r in records) == ["odd"] * 40 + ["plain"]


def test_multipart_upload_metadata_reaches_the_child(hx: ModuleType, tmp_path: Path) -> None:
    auditor = Auditor(f"sqlite:///{tmp_path}/m.db", spool_dir=str(tmp_path / "spool"), writer="process")

    def handler(request: Any) -> Any:
        return hx.Response(200, json={"text": "hello"})

    client = hx.Client(transport=llmaudit.AuditTransport(hx.MockTransport(handler), auditor=auditor))
    client.post(
        "https://api.openai.com/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("a.wav", b"RIFF....", "audio/wav")},
    )
    auditor.close()
    (record,) = llmaudit.open(f"sqlite:///{tmp_path}/m.db").records()
    assert record.request["fields"] == ["model", "file"]  # type: ignore[index]
    assert record.request["files"] == ["a.wav"]  # type: ignore[index]


def test_frames_carry_messages_larger_than_the_pipe_and_never_block_without_wait() -> None:
    read_fd, write_fd = _pipe()
    sender, receiver = Frames(write_fd), Frames(read_fd)
    big = os.urandom(3 * PIPE_BYTES)
    sender.post(big)
    assert sender.push(wait=False) is False  # the pipe is full: it returns instead of blocking
    assert 0 < sender.unsent < len(big)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(_receive_all(receiver, 2)))
    reader.start()
    sender.push(wait=True)
    sender.send(b"second")
    reader.join(30)
    assert got == [big, b"second"] and sender.unsent == 0
    sender.close()
    with pytest.raises(EOFError):
        receiver.receive(1)
    receiver.close()


def _receive_all(frames: Frames, count: int) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < count:
        out.extend(frames.receive(1))
    return out


def test_a_forked_application_starts_its_own_writer_process_and_leaves_the_parents_alone(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/f.db"
    auditor = Auditor(url, spool_dir=str(tmp_path / "spool"), writer="process")
    # private: the process runner and its child process have no public handle
    writer = auditor._writer
    assert isinstance(writer, ProcessWriter)
    for n in range(40):
        auditor.submit(AuditRecord(session_key="parent", request={"n": n}))
    assert auditor.flush(30)
    parents_child = writer._child
    assert parents_child is not None
    done_r, done_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the forked application: its records go through a writer process of its own
        code = 1
        try:
            for n in range(30):
                auditor.submit(AuditRecord(session_key="forked", request={"n": n}))
            ok = auditor.flush(30) and writer._child is not parents_child and writer.fallback_reason is None
            auditor.close()
            os.write(done_w, b"1" if ok else b"0")
            os.read(go_r, 1)  # stays alive while the parent closes
            code = 0
        finally:
            os._exit(code)
    try:
        assert os.read(done_r, 1) == b"1"
        auditor.submit(AuditRecord(session_key="parent", request={"n": 40}))
        auditor.close(timeout=5)
        # the fork closed its copies of the pipes, so the parent's child saw its input end and exited
        assert parents_child.returncode == 0
    finally:
        os.write(go_w, b"x")
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    keys = sorted(r.session_key or "" for r in llmaudit.open(url).records())
    assert keys == ["forked"] * 30 + ["parent"] * 41
