"""Attacks through a shared directory, done for real on the filesystem: a link planted at a name llmaudit
is about to open, a forged spool file, a directory someone else can write to. Each is refused, and
nothing outside llmaudit's own files is read, created or changed."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

import llmaudit
from llmaudit import AuditRecord, StorageError, StorageUnavailableError

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import Chain
from llmaudit.pipeline.spool import Spool
from llmaudit.record.codec import encode_record
from llmaudit.storage.jsonl import JSONLStorage
from llmaudit.storage.sql import SQLStorage

DAY = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
DAY_FILE = "llmaudit-2026-11-20.jsonl"
OTHER_UID = 54321  # no such user: a directory or file "someone else" owns (the tests run as root on CI)
VICTIM_TEXT = b"the victim's own file: must stay exactly as it is\n"


def _records(n: int, session: str = "s") -> list[AuditRecord]:
    return [
        AuditRecord(created_at=DAY, session_key=session, request={"q": f"question {i}"}) for i in range(n)
    ]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside llmaudit's directories that an attacker wants it to write into."""
    path = tmp_path / "victim.txt"
    path.write_bytes(VICTIM_TEXT)
    return path


def _plant_link(kind: str, at: Path, target: Path) -> None:
    if kind == "symlink":
        at.symlink_to(target)
    else:
        os.link(target, at)


# -- JSONL files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_link_at_the_day_file_does_not_redirect_appends(kind: str, tmp_path: Path, victim: Path) -> None:
    """A link planted at today's file name: the batch is refused as unavailable (the writer spills
    it), naming the file; the link's target is untouched."""
    store = JSONLStorage(tmp_path / "log")
    _plant_link(kind, tmp_path / "log" / DAY_FILE, victim)
    with pytest.raises(StorageUnavailableError, match=DAY_FILE) as raised:
        store.write(Chain().seal(_records(2)))
    assert "symbolic link" in str(raised.value) if kind == "symlink" else "hard-linked" in str(raised.value)
    assert victim.read_bytes() == VICTIM_TEXT


def test_a_link_at_the_day_file_is_not_read_back(tmp_path: Path, victim: Path) -> None:
    """Reading never follows a planted link either: its target is reported, not parsed as records."""
    store = JSONLStorage(tmp_path / "log")
    victim.write_bytes(encode_record(Chain().seal(_records(1))[0]) + b"\n")  # looks like a record
    (tmp_path / "log" / DAY_FILE).symlink_to(victim)
    problems: list[str] = []
    assert list(store.read(on_problem=problems.append)) == []
    assert len(problems) == 1 and "symbolic link" in problems[0] and DAY_FILE in problems[0]


def test_a_symlinked_lock_file_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    """The lock file is opened with O_CREAT: through a link it would create any file the user may."""
    (tmp_path / "log").mkdir(mode=0o700)
    target = tmp_path / "elsewhere" / "created-by-llmaudit"
    target.parent.mkdir()
    (tmp_path / "log" / ".llmaudit.lock").symlink_to(target)
    with pytest.raises(StorageError, match=r"\.llmaudit\.lock.*symbolic link"):
        JSONLStorage(tmp_path / "log")
    assert not target.exists()


def test_links_at_predictable_temporary_names_do_not_make_forget_overwrite_their_target(
    tmp_path: Path, victim: Path
) -> None:
    """forget rewrites the day file through a temporary file: one planted at a name known in advance
    would have been opened (and truncated) through the link. Temporary names are unpredictable and
    created exclusively: every planted link is left alone, and so is its target."""
    url = f"jsonl://{tmp_path / 'log'}"
    with llmaudit.Auditor(url, mode="sync", spool_dir=str(tmp_path / "spool")) as auditor:
        for record in _records(3, session="forget-me"):
            auditor.submit(record)
    (writer,) = JSONLStorage(tmp_path / "log").chain_states()
    planted = [
        tmp_path / "log" / f".{DAY_FILE}.{os.getpid()}.tmp",
        tmp_path / "log" / ".chain" / f".{writer}.json.{os.getpid()}.tmp",
    ]
    for link in planted:
        link.symlink_to(victim)
    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        assert reader.forget(session="forget-me").erased == 3
        assert reader.verify().ok
    assert victim.read_bytes() == VICTIM_TEXT
    assert all(link.is_symlink() for link in planted)
    leftovers = [
        p.name for p in (tmp_path / "log").iterdir() if p.name.endswith(".tmp") and not p.is_symlink()
    ]
    assert leftovers == []


# -- the spool --------------------------------------------------------------------------------------


def _forged_file(path: Path, n: int = 2) -> list[AuditRecord]:
    """Write a spool file of records sealed into a fresh (unkeyed) chain, as an attacker can."""
    forged = Chain().seal(_records(n, session="forged"))
    path.write_bytes(b"".join(encode_record(r) + b"\n" for r in forged))
    return forged


def _plant_other_users(spool_dir: Path) -> Path:
    path = spool_dir / "spool-1-planted.jsonl"
    _forged_file(path)
    path.chmod(0o600)
    os.chown(path, OTHER_UID, -1)
    return path


def _plant_readable(spool_dir: Path) -> Path:
    path = spool_dir / "spool-1-planted.jsonl"
    _forged_file(path)
    path.chmod(0o644)  # what a write by anything but llmaudit's spool leaves with a usual umask
    return path


def _plant_symlink(spool_dir: Path) -> Path:
    outside = spool_dir.parent / "forged-outside.jsonl"
    _forged_file(outside)
    outside.chmod(0o600)
    path = spool_dir / "spool-1-planted.jsonl"
    path.symlink_to(outside)
    return path


@pytest.mark.parametrize("plant", [_plant_other_users, _plant_readable, _plant_symlink])
def test_a_planted_spool_file_is_refused_not_replayed(
    plant: Callable[[Path], Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file at a spool name that llmaudit did not write (another user's, one readable by others, a
    link) is never replayed: its forged records would otherwise be stored and then verify as a
    writer's chain. It is renamed out of the way for the operator, with a warning naming it."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir(mode=0o700)
    planted = plant(spool_dir)
    with caplog.at_level(logging.WARNING, logger="llmaudit"):
        result = Spool(spool_dir).replay(store := SQLStorage(url))
    store.close()
    assert (result.records, result.files) == (0, 0)
    with llmaudit.open(url) as reader:
        assert list(reader.records(session="forged")) == []
    assert not planted.exists() and not planted.is_symlink()
    assert (spool_dir / f"refused-{planted.name}").is_symlink() or (
        spool_dir / f"refused-{planted.name}"
    ).exists()
    assert Spool(spool_dir).files() == []
    assert any(str(planted) in m and "not replayed" in m for m in caplog.messages), caplog.messages


def test_a_spool_file_llmaudit_wrote_is_still_replayed(tmp_path: Path) -> None:
    """The check refuses only what llmaudit would never write: its own files replay as before."""
    spool = Spool(tmp_path / "spool")
    spool.append(Chain().seal(_records(3)))
    spool.release()
    store = SQLStorage(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        assert spool.replay(store).records == 3
    finally:
        store.close()


def test_a_symlinked_rejected_file_is_refused(tmp_path: Path, victim: Path) -> None:
    """``rejected-<pid>.jsonl`` has a predictable name: a link there must not receive the records."""
    spool = Spool(tmp_path / "spool")
    (tmp_path / "spool").mkdir(mode=0o700)
    (tmp_path / "spool" / f"rejected-{os.getpid()}.jsonl").symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        spool.reject(_records(1))
    assert victim.read_bytes() == VICTIM_TEXT


# -- directories ------------------------------------------------------------------------------------


def _open_jsonl(directory: Path) -> None:
    JSONLStorage(directory)


def _open_spool(directory: Path) -> None:
    Spool(directory)


def _open_sqlite(directory: Path) -> None:
    SQLStorage(f"sqlite:///{directory / 'audit.db'}").close()


OPENERS = {"jsonl storage": _open_jsonl, "spool": _open_spool, "sqlite": _open_sqlite}


@pytest.mark.parametrize("opener", OPENERS, ids=list(OPENERS))
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p.chmod(0o770), "writable by group"),
        (lambda p: p.chmod(0o707), "writable by others"),
        (lambda p: p.chmod(0o1777), "writable by group and others"),  # sticky, like /tmp: still refused
        (lambda p: os.chown(p, OTHER_UID, -1), f"owned by uid {OTHER_UID}"),
    ],
    ids=["group-writable", "other-writable", "sticky-world-writable", "another-owner"],
)
def test_a_directory_others_can_write_to_is_refused(
    opener: str, change: Callable[[Path], None], expected: str, tmp_path: Path
) -> None:
    """In a directory someone else can write to, every name llmaudit opens can be planted in advance:
    such a directory is refused when the storage or spool is opened, naming it and the fix."""
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o700)
    change(directory)
    with pytest.raises(StorageError) as raised:
        OPENERS[opener](directory)
    message = str(raised.value)
    assert str(directory) in message and expected in message and "chmod go-w" in message, message


def test_a_private_directory_of_the_user_is_accepted(tmp_path: Path) -> None:
    for name, opener in OPENERS.items():
        directory = tmp_path / name.replace(" ", "-")
        directory.mkdir(mode=0o755)  # readable by others is fine: every file in it is 0600
        opener(directory)


def test_new_directories_and_their_parents_are_created_private(tmp_path: Path) -> None:
    """With a permissive umask (002, usual with per-user groups), parents llmaudit creates (the
    default data directory among them) must not end up group-writable."""
    old = os.umask(0o002)
    try:
        JSONLStorage(tmp_path / "a" / "b" / "log")
        Spool(tmp_path / "c" / "d" / "spool").append(_records(1))
        SQLStorage(f"sqlite:///{tmp_path / 'e' / 'f' / 'audit.db'}").close()
    finally:
        os.umask(old)
    made = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert len(made) == 8  # a, b, log; c, d, spool; e, f
    assert {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in made} == {
        str(p.relative_to(tmp_path)): 0o700 for p in made
    }
