"""The local spool: where records go when the storage backend cannot take them, until it can.

Each writer appends to its own file ``spool-<pid>-<token>.jsonl`` (mode 0600, directory 0700) and holds
an exclusive ``flock`` on it while it is open, so that another process never replays a file that is
still being written; an append that fails part-way (a full disk) is cut off again. Replay claims each
unlocked file with a non-blocking lock, writes its records to the storage in batches and deletes the
file; because storage writes are idempotent on id, a file replayed twice (two processes racing, or a
crash between write and delete) never duplicates a record.
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


def _append_whole(fd: int, data: bytes, *, durable: bool) -> None:
    """Append *data* (and fsync it if *durable*), or nothing: a write cut short by a full disk is cut
    off again, so that the next append does not glue its first record onto half a line (replay would
    skip that line, losing a record counted as spilled) and the records counted lost are not replayed."""
    size = os.fstat(fd).st_size
    try:
        _write_all(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


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
            _append_whole(self._fd, data, durable=durable)

    def reject(self, records: Sequence[AuditRecord]) -> Path:
        """Keep records the backend refused in ``rejected-<pid>.jsonl`` (fsynced) and return its path."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"rejected-{os.getpid()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _append_whole(fd, b"".join(encode_record(r) + b"\n" for r in records), durable=True)
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
        locked = False
        try:
            locked = _lock(fd, blocking=False)
            if not locked or not _same_file(fd, path):
                return None
            batch: list[AuditRecord] = []
            count = skipped = done = 0  # done: the offset up to which records are in the storage
            for record, end in _read_records(fd, path, on_problem):
                if record is None:
                    skipped += 1
                    continue
                batch.append(record)
                if len(batch) >= batch_size:
                    self._write_or_keep_rest(storage, batch, path, fd, done)
                    count, batch, done = count + len(batch), [], end
            if batch:
                self._write_or_keep_rest(storage, batch, path, fd, done)
                count += len(batch)
            path.unlink()
            return count, skipped
        finally:
            if locked and fcntl is not None:  # unlock first: a forked child may hold a copy of fd
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write_or_keep_rest(
        self, storage: Storage, batch: list[AuditRecord], path: Path, fd: int, done: int
    ) -> None:
        """Write one batch; when it fails after earlier batches of the file went in, the file is
        replaced by what is left, so the next replay does not write those again (a JSONL store is
        not idempotent on id)."""
        try:
            storage.write(batch)
        except BaseException:
            if done:
                with contextlib.suppress(OSError):
                    _keep_from(path, fd, done)
            raise


def _keep_from(path: Path, fd: int, offset: int) -> None:
    """Atomically replace the spool file *path* (open as *fd*) by its bytes from *offset* on."""
    rest = bytearray()
    while chunk := os.pread(fd, 1 << 20, offset + len(rest)):
        rest += chunk
    temporary = path.with_name(f".{path.name}.rest")
    out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(out, bytes(rest))
        os.fsync(out)
    finally:
        os.close(out)
    os.replace(temporary, path)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), path.stat())
    except FileNotFoundError:
        return False


def _read_records(
    fd: int, path: Path, on_problem: ProblemHandler
) -> Iterator[tuple[AuditRecord | None, int]]:
    """Each record (None for an unreadable line) with the file offset where its line ends."""
    offset = 0
    with os.fdopen(os.dup(fd), "rb") as stream:
        stream.seek(0)
        for lineno, line in enumerate(stream, 1):
            offset += len(line)
            if not line.strip():
                continue
            try:
                yield decode_record(line), offset
            except ValueError as exc:  # a line cut short by a crash: report it, keep the rest
                on_problem(f"{path}:{lineno}: skipped unreadable spool line: {exc}")
                yield None, offset
