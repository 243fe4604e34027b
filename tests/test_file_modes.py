"""Every file llmaudit creates is readable by its owner only (0600; directories 0700)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from tests.helpers import ControlledStorage

import llmaudit
from llmaudit import AuditRecord


def _modes(root: Path) -> dict[str, int]:
    """Mode of every file (directories get a trailing slash)."""
    return {
        str(p.relative_to(root)) + ("/" if p.is_dir() else ""): stat.S_IMODE(p.stat().st_mode)
        for p in root.rglob("*")
    }


@pytest.mark.parametrize("scheme", ["jsonl", "sqlite"])
def test_store_files_are_private(scheme: str, tmp_path: Path) -> None:
    root = tmp_path / "store"
    url = f"jsonl://{root}" if scheme == "jsonl" else f"sqlite:///{root / 'audit.db'}"
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        for _ in range(3):
            auditor.submit(AuditRecord(session_key="s"))
        auditor.flush()
        modes = _modes(root)  # while open: SQLite's -wal and -shm files exist now
    with llmaudit.open(url) as reader:
        reader.forget(session="s")  # rewritten files keep the mode
    modes.update(_modes(root))
    files = {name: mode for name, mode in modes.items() if not name.endswith("/")}
    assert files, modes
    assert all(mode == 0o600 for mode in files.values()), modes
    assert all(mode == 0o700 for name, mode in modes.items() if name.endswith("/")), modes
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    if scheme == "sqlite":
        assert {"audit.db", "audit.db-wal", "audit.db-shm"} <= set(files)


def test_spool_and_rejected_files_are_private(tmp_path: Path, expect_internal_errors: object) -> None:
    storage = ControlledStorage()
    storage.refuse = lambda record: record.session_key == "refused"
    auditor = llmaudit.Auditor(storage, spool_dir=str(tmp_path / "spool"))
    auditor.submit(AuditRecord(session_key="refused"))
    auditor.flush()
    storage.down = True
    # private: the auditor's writer: its retry pacing and spool have no public setting
    auditor._writer.retry_delays_s = ()
    auditor.submit(AuditRecord(session_key="spilled"))
    auditor.flush()
    modes = _modes(tmp_path / "spool")
    auditor._writer.spool.release()
    storage.down = False
    auditor.close()
    assert any(name.startswith("spool-") for name in modes) and any(n.startswith("rejected-") for n in modes)
    assert set(modes.values()) == {0o600}, modes  # files only: the spool has no subdirectories
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
