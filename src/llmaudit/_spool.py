"""The local spool: where records go when the storage backend cannot take them, until it can.

Each writer appends to its own file ``spool-<pid>-<token>.jsonl`` (mode 0600, directory 0700) and holds
an exclusive ``flock`` on it while it is open, so that another process never replays a file that is
still being written. Replay claims each unlocked file with a non-blocking lock, writes its records to
the storage in batches and deletes the file; because storage writes are idempotent on id, a file
replayed twice (two processes racing, or a crash between write and delete) never duplicates a record.
Records the backend refuses outright go to ``rejected-<pid>.jsonl``, which is kept for the operator and
never replayed automatically. Runs on the writer thread (or the caller's, only when the queue is full).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._codec import decode_record, encode_record
from ._record import AuditRecord
from .storage._base import ProblemHandler, Storage, warn_problem

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; replay relies on idempotency
    fcntl = None  # type: ignore[assignment]

__all__ = ["ReplayResult", "Spool"]

_SPOOL_GLOB = "spool-*.jsonl"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What one replay did."""

    records: int
    files: int
    skipped_lines: int


def _lock(fd: int, *, blocking: bool) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Spool:
    """A directory of JSONL files holding records that are waiting for the storage."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._rejected = 0

    def _open_own_file(self) -> int:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"spool-{os.getpid()}-{os.urandom(4).hex()}.jsonl"
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _lock(fd, blocking=True)
        return fd

    def append(self, records: Sequence[AuditRecord], *, durable: bool = False) -> None:
        """Append *records* to this process's spool file; with *durable*, fsync before returning.

        Raises:
            OSError: the spool cannot be written (the caller counts the records as lost).
        """
        data = b"".join(encode_record(r) + b"\n" for r in records)
        with self._lock:
            if self._fd is None:
                self._fd = self._open_own_file()
            _write_all(self._fd, data)
            if durable:
                os.fsync(self._fd)

    def reject(self, records: Sequence[AuditRecord]) -> Path:
        """Keep records the backend refused in ``rejected-<pid>.jsonl`` (fsynced) and return its path."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"rejected-{os.getpid()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _write_all(fd, b"".join(encode_record(r) + b"\n" for r in records))
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    def files(self) -> list[Path]:
        """The spool files waiting to be replayed, oldest name first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(_SPOOL_GLOB))

    def pending(self) -> bool:
        """Whether any spool file (this process's or another's) is waiting."""
        return bool(self.files())

    def release(self) -> None:
        """Close this process's spool file so that it can be replayed."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's file descriptor (closing our copy keeps its lock)."""
        self._lock = threading.Lock()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def replay(
        self,
        storage: Storage,
        *,
        batch_size: int = 500,
        on_problem: ProblemHandler | None = None,
    ) -> ReplayResult:
        """Write every unlocked spool file to *storage* and delete it.

        Raises:
            Exception: whatever *storage* raised; the file being replayed stays for the next attempt.
        """
        self.release()
        records = files = skipped = 0
        for path in self.files():
            claimed = self._replay_file(path, storage, batch_size, on_problem or warn_problem)
            if claimed is not None:
                records, files, skipped = records + claimed[0], files + 1, skipped + claimed[1]
        return ReplayResult(records, files, skipped)

    def _replay_file(
        self, path: Path, storage: Storage, batch_size: int, on_problem: ProblemHandler
    ) -> tuple[int, int] | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # another process replayed it first
            return None
        try:
            if not _lock(fd, blocking=False) or not _same_file(fd, path):
                return None
            batch: list[AuditRecord] = []
            count = skipped = 0
            for record in _read_records(fd, path, on_problem):
                if record is None:
                    skipped += 1
                    continue
                batch.append(record)
                if len(batch) >= batch_size:
                    storage.write(batch)
                    count, batch = count + len(batch), []
            if batch:
                storage.write(batch)
                count += len(batch)
            path.unlink()
            return count, skipped
        finally:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), path.stat())
    except FileNotFoundError:
        return False


def _read_records(fd: int, path: Path, on_problem: ProblemHandler) -> Iterator[AuditRecord | None]:
    with os.fdopen(os.dup(fd), "rb") as stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                yield decode_record(line)
            except ValueError as exc:  # a line cut short by a crash: report it, keep the rest
                on_problem(f"{path}:{lineno}: skipped unreadable spool line: {exc}")
                yield None
