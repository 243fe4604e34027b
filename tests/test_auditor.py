"""Configuration, the default auditor, interpreter exit and fork."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.helpers import ControlledStorage

import llmaudit
from llmaudit import AuditRecord, ConfigurationError, Query, open_storage

# private: writer internals (settings, spool, frames, signal hooks) that no public API exposes
from llmaudit.pipeline.settings import Settings, data_dir
from llmaudit.storage import _registry


def test_configure_keywords_win_over_environment_which_wins_over_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every configure() keyword has an LLMAUDIT_* twin; an explicit keyword takes precedence."""
    monkeypatch.setenv("LLMAUDIT_BATCH_SIZE", "64")
    monkeypatch.setenv("LLMAUDIT_MODE", "sync")
    monkeypatch.setenv("LLMAUDIT_FLUSH_INTERVAL_S", "2.5")
    settings = Settings.resolve(mode="background")
    assert (settings.batch_size, settings.mode, settings.flush_interval_s) == (64, "background", 2.5)
    assert Settings.resolve().queue_size == Settings().queue_size


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LLMAUDIT_MODE", "eventually"),
        ("LLMAUDIT_BATCH_SIZE", "lots"),
        ("LLMAUDIT_BATCH_SIZE", "0"),
        ("LLMAUDIT_FLUSH_INTERVAL_S", "-1"),
        ("LLMAUDIT_DISABLED", "perhaps"),
    ],
)
def test_invalid_environment_values_fail_at_configure_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A bad LLMAUDIT_* value is a clear ConfigurationError, not a failure on the writer thread."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        llmaudit.configure("memory://")


def test_unknown_keyword_is_rejected() -> None:
    """A misspelt option fails loudly instead of being ignored."""
    with pytest.raises(ConfigurationError, match="batchsize"):
        Settings.resolve(batchsize=3)


def test_unwritable_sqlite_path_is_a_clear_error_naming_the_url(tmp_path: Path) -> None:
    """A storage that cannot be opened fails at configure(), naming the URL."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(llmaudit.StorageError, match=r"file/sub/audit\.db"):
        llmaudit.configure(f"sqlite:///{blocker}/sub/audit.db")


def test_default_auditor_writes_to_the_embedded_sqlite_store() -> None:
    """With no configuration at all, records land in SQLite in the user's data directory."""
    auditor = llmaudit.get_auditor()
    assert isinstance(auditor, llmaudit.Auditor)
    record = AuditRecord(session_key="zero-config")
    auditor.submit(record)
    assert llmaudit.flush(10)
    url = f"sqlite:///{data_dir() / 'audit.db'}"
    assert auditor.storage.url == url
    store = open_storage(url)
    try:
        assert [r.id for r in store.read(Query(session_key="zero-config"))] == [record.id]
    finally:
        store.close()


def test_disabled_gives_a_null_auditor_that_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """LLMAUDIT_DISABLED=1 turns recording off without touching any storage."""
    monkeypatch.setenv("LLMAUDIT_DISABLED", "1")
    auditor = llmaudit.get_auditor()
    assert isinstance(auditor, llmaudit.NullAuditor)
    auditor.submit(AuditRecord())
    assert auditor.flush() is True
    assert auditor.stats().submitted == 0
    assert not (data_dir() / "audit.db").exists()


def test_configure_replaces_and_flushes_the_previous_default(tmp_path: Path) -> None:
    """Reconfiguring does not lose what the old default auditor still had queued."""
    first = ControlledStorage()
    llmaudit.configure(first, spool_dir=str(tmp_path / "s1"), flush_interval_s=60)
    record = AuditRecord()
    llmaudit.get_auditor().submit(record)
    llmaudit.configure("memory://", spool_dir=str(tmp_path / "s2"))
    assert first.ids() == [record.id]


_CHILD = textwrap.dedent(
    """
    import sys, llmaudit
    from llmaudit import AuditRecord
    llmaudit.configure(sys.argv[1], flush_interval_s=3600, batch_size=100000)
    for i in range(int(sys.argv[2])):
        llmaudit.get_auditor().submit(AuditRecord(session_key="exit-test"))
    # no flush, no shutdown: the interpreter exits with the records still queued
    """
)


@pytest.mark.slow
def test_a_process_that_exits_without_flush_loses_nothing(tmp_path: Path) -> None:
    """Records still queued at interpreter exit are flushed by the atexit hook."""
    url = f"sqlite:///{tmp_path / 'exit.db'}"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    subprocess.run([sys.executable, "-c", _CHILD, url, "3000"], check=True, env=env, timeout=120)
    store = open_storage(url)
    try:
        assert len(list(store.read(Query(session_key="exit-test")))) == 3000
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_forked_child_writes_its_own_records_and_not_the_parents(tmp_path: Path) -> None:
    """After fork the child starts a clean writer: the parent's queued records are written once,
    by the parent, and the child's own records are written by the child."""
    log = tmp_path / "log"
    auditor = llmaudit.Auditor(
        f"jsonl://{log}", spool_dir=str(tmp_path / "spool"), flush_interval_s=3600, batch_size=10**6
    )
    parent_records = [AuditRecord(session_key="parent") for _ in range(50)]
    for r in parent_records:
        auditor.submit(r)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            for _ in range(20):
                auditor.submit(AuditRecord(session_key="child"))
            code = 0 if auditor.flush(30) and auditor.stats().written == 20 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert auditor.flush(30)
    auditor.close()
    lines = [line for f in sorted(log.glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert len(lines) == 70  # each record appended exactly once: no duplicates from the child
    keys = sorted(r.session_key or "" for r in open_storage(f"jsonl://{log}").read(Query()))
    assert keys == ["child"] * 20 + ["parent"] * 50


def test_an_auditor_closes_only_the_storage_it_opened(tmp_path: Path) -> None:
    """A Storage object passed in belongs to the caller and stays open; one opened from a URL is closed."""
    closed: list[str] = []

    class Tracking(ControlledStorage):
        def close(self) -> None:
            closed.append("passed-in")

    store = Tracking()
    llmaudit.Auditor(store, spool_dir=str(tmp_path / "a")).close()
    assert closed == []
    llmaudit.register_storage("tracked", lambda url: Tracking())
    try:
        llmaudit.Auditor("tracked://x", spool_dir=str(tmp_path / "b")).close()
    finally:
        # private: the storage registry, restored after the test registers a scheme
        _registry._registered.pop("tracked")
    assert closed == ["passed-in"]


_SIGTERM_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    import llmaudit
    {setup}
    llmaudit.configure(sys.argv[1], flush_interval_s=3600, batch_size=10**6)
    for i in range(2000):
        llmaudit.get_auditor().submit(llmaudit.AuditRecord(session_key="term", metadata={{"i": i}}))
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
    sys.exit(3)  # not reached: SIGTERM ends the process first
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setup", "expected_code", "expected_records"),
    [
        ("", 128 + 15, 2000),  # llmaudit's handler: a normal exit, the queue is flushed
        ("os.environ['LLMAUDIT_HANDLE_SIGTERM'] = '0'", -15, 0),  # opted out: killed, queue lost
        ("signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))", 7, 2000),  # the app's own handler
    ],
    ids=["default", "opted-out", "application-handler"],
)
def test_sigterm_exits_normally_so_the_queue_is_flushed(
    setup: str, expected_code: int, expected_records: int, tmp_path: Path
) -> None:
    """By default SIGTERM kills Python without atexit: llmaudit turns it into SystemExit(143) when
    nothing else handles it, and leaves an application's own handler (or an opt-out) alone."""
    url = f"sqlite:///{tmp_path / 'term.db'}"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    child = subprocess.run(
        [sys.executable, "-c", _SIGTERM_CHILD.format(setup=setup), url], env=env, timeout=120, check=False
    )
    assert child.returncode == expected_code
    with llmaudit.open(url) as reader:
        assert len(list(reader.records(session="term"))) == expected_records


_SWALLOWED_SIGTERM_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time, weakref
    import llmaudit
    llmaudit.configure(sys.argv[1], flush_interval_s=3600, batch_size=10**6)
    for i in range(2000):
        llmaudit.get_auditor().submit(llmaudit.AuditRecord(session_key="term", metadata={{"i": i}}))

    class Thing:
        pass

    def callback(ref):
        # raise_signal runs the Python handler before it returns, i.e. inside this weakref
        # callback, where Python prints "Exception ignored" and swallows the SystemExit
        signal.raise_signal(signal.SIGTERM)

    {before}
    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing
    {after}
    """
)

# The process exits by itself before the resend: the resend thread goes on only once the exit flush
# has begun, and the flush waits for it (so the order does not depend on how busy the machine is).
_RESEND_DURING_THE_EXIT_FLUSH = """
import threading
from llmaudit.pipeline import signals as _auditor
exit_flush_began = threading.Event()
resend = _auditor._resend_sigterm

def resend_once_exiting():
    exit_flush_began.wait(20)
    resend()

_auditor._resend_sigterm = resend_once_exiting
auditor = llmaudit.get_auditor()
close = auditor.close

def close_after_the_resend(timeout=None):
    exit_flush_began.set()
    for thread in threading.enumerate():
        if thread.name == "llmaudit-sigterm":
            thread.join(20)
    close(timeout)

auditor.close = close_after_the_resend
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("before", "after"),
    [("", "time.sleep(30); sys.exit(3)"), (_RESEND_DURING_THE_EXIT_FLUSH, "pass")],
    ids=["still-running", "exits-by-itself"],
)
def test_a_sigterm_that_python_swallowed_is_sent_again(before: str, after: str, tmp_path: Path) -> None:
    """Seen under load: SIGTERM's handler ran inside a WeakSet callback, Python swallowed its
    SystemExit, and the process went on as if never asked to stop. llmaudit sends SIGTERM again
    (still-running: exit 143 at once, not after the 30 s sleep); when the process exits by itself
    meanwhile, the resent signal must not cut the exit flush short."""
    url = f"sqlite:///{tmp_path / 'term.db'}"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    source = _SWALLOWED_SIGTERM_CHILD.format(before=before.strip(), after=after)
    child = subprocess.run(
        [sys.executable, "-c", source, url],
        env=env,
        timeout=25,
        check=False,
        capture_output=True,
        text=True,
    )
    assert "Exception ignored in" in child.stderr and "_SigtermExit: 143" in child.stderr, child.stderr
    assert child.returncode == (143 if "sleep(30)" in after else 0), child.stderr
    with llmaudit.open(url) as reader:
        assert len(list(reader.records(session="term"))) == 2000


_SIGTERM_DURING_EXIT_FLUSH_CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import llmaudit
    from llmaudit.storage import jsonl
    write_lines = jsonl._write_lines

    def slow_write(fd, lines):  # the exit flush is under way: SIGTERM arrives, then the write ends
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)  # waiting for the flush
        time.sleep(0.3)
        write_lines(fd, lines)

    jsonl._write_lines = slow_write
    llmaudit.configure(sys.argv[1], flush_interval_s=3600, batch_size=10**6)
    for i in range(2000):
        llmaudit.get_auditor().submit(llmaudit.AuditRecord(session_key="term", metadata={{"i": i}}))
    sys.exit(5)
    """
)


@pytest.mark.slow
def test_a_sigterm_during_the_exit_flush_does_not_cut_it_short(tmp_path: Path) -> None:
    url = f"jsonl://{tmp_path / 'log'}"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    child = subprocess.run(
        [sys.executable, "-c", _SIGTERM_DURING_EXIT_FLUSH_CHILD.format(), url],
        env=env,
        timeout=60,
        check=False,
        capture_output=True,
        text=True,
    )
    assert child.returncode == 5, child.stderr
    assert "SIGTERM arrived during llmaudit's exit flush" in child.stderr
    with llmaudit.open(url) as reader:
        assert len(list(reader.records(session="term"))) == 2000
        assert reader.verify().ok


def test_the_sigterm_handler_is_only_installed_over_the_default_and_on_the_main_thread() -> None:
    import signal
    import threading

    # private: writer internals (settings, spool, frames, signal hooks) that no public API exposes
    from llmaudit.pipeline import signals as _auditor
    from llmaudit.pipeline.signals import _exit_on_sigterm, install_sigterm_handler

    previous = signal.getsignal(signal.SIGTERM)
    # private: the signal handler's chaining state, not observable otherwise
    previous_hook, previous_wrapped = sys.unraisablehook, _auditor._hook_before_ours
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        results: list[bool] = []
        worker = threading.Thread(target=lambda: results.append(install_sigterm_handler()))
        worker.start()
        worker.join()
        assert results == [False] and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert install_sigterm_handler() and signal.getsignal(signal.SIGTERM) is _exit_on_sigterm
        # Python's hook for swallowed exceptions is wrapped (to resend a swallowed SIGTERM), once
        assert sys.unraisablehook is _auditor._resend_swallowed_sigterm
        assert install_sigterm_handler()  # idempotent
        assert _auditor._hook_before_ours is not _auditor._resend_swallowed_sigterm
        with pytest.raises(SystemExit) as exited:
            _exit_on_sigterm(signal.SIGTERM, None)
        assert exited.value.code == 143

        def own(signum: int, frame: object) -> None: ...

        signal.signal(signal.SIGTERM, own)
        assert not install_sigterm_handler() and signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)
        # private: the signal handler's chaining state, not observable otherwise
        sys.unraisablehook, _auditor._hook_before_ours = previous_hook, previous_wrapped


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_fork_waits_for_the_batch_being_written(tmp_path: Path) -> None:
    """A child forked while the writer is inside ``storage.write`` would inherit the storage mid-write
    (SQLite's mutexes held: the child hangs for ever). ``fork()`` waits for the batch to end."""
    import threading
    import time

    from tests.helpers import ControlledStorage, WatchedLock

    storage = ControlledStorage()
    storage.gate.clear()  # the writer blocks inside write() until the gate opens
    auditor = llmaudit.Auditor(storage, spool_dir=str(tmp_path / "spool"), flush_interval_s=0.01)
    store_lock = WatchedLock()
    # private: the writer's queue, locks and child, the only way to hold or observe it mid-flight
    auditor._writer._store_lock = store_lock  # type: ignore[assignment]
    auditor.submit(AuditRecord(session_key="in-flight"))
    assert storage.entered.wait(10)  # the writer holds the store lock, inside write()
    opened_at: list[float] = []

    def open_gate() -> None:  # once fork() waits for the store lock, not after a guessed delay
        try:
            if store_lock.second_waiting.wait(10):
                opened_at.append(time.monotonic())
        finally:
            storage.gate.set()

    opener = threading.Thread(target=open_gate)
    opener.start()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only exits
        os._exit(0)
    forked_at = time.monotonic()
    opener.join()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert opened_at and forked_at >= opened_at[0], "fork() went ahead while a batch was being written"
    assert auditor.flush(10) and storage.ids()
    auditor.close()
