"""The local spool: where records go when the storage backend cannot take them, until it can.

Each writer appends to its own file ``spool-<pid>-<token>.jsonl`` (mode 0600, directory 0700) and holds
an exclusive ``flock`` on it while it is open, so that another process never replays a file that is
still being written; an append that fails part-way (a full disk) is cut off again. Replay claims each
unlocked file with a non-blocking lock, writes its records to the storage in batches and deletes the
file; because storage writes are idempotent on id, a file replayed twice (two processes racing, or a
crash between write and delete) never duplicates a record.
Records the backend refuses outright go to ``rejected-<pid>.jsonl``, which is kept for the operator and
never replayed automatically. Runs on the writer thread (or the caller's, only when the queue is full).

Trust: the directory must be private (`storage._files`), no file is opened through a symbolic link, and
replay takes only regular files of this user with mode 0600 (what llmaudit creates); anything else at a
spool name is renamed ``refused-…`` and reported, never replayed. A process running as the same user can
still plant a spool file: the spool is no boundary against that user (SECURITY.md).

Erasure: `Reader.forget` cannot replay a file a running writer holds, so it records the erasure in
``forget-list.jsonl`` (digests of the session key and user, the ids, and when), and every replay erases
the payloads of the listed records it finds before writing them. A replay holds a shared lock on the
list for each file, and forget an exclusive one while it adds to it, so a record is either replayed
before forget reads the storage or replayed already erased.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from .._errors import StorageError
from ..integrity.chain import erasure_changes
from ..record.codec import decode_record, dumps, encode_record, format_timestamp, loads, parse_timestamp
from ..record.model import AuditRecord, utcnow
from ..storage._base import ProblemHandler, Storage, warn_problem
from ..storage._files import (
    UnsafeFileError,
    check_directory,
    make_private_directory,
    open_private,
    replace_file,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; replay relies on idempotency
    fcntl = None  # type: ignore[assignment]

__all__ = ["ReplayResult", "Spool"]

_SPOOL_GLOB = "spool-*.jsonl"
_FORGET_LIST = "forget-list.jsonl"
_REFUSED_PREFIX = "refused-"

#: An erasure stays in the forget list this long, and longer while any spool file is waiting.
FORGET_LIST_RETENTION = timedelta(days=1)


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
        """Raises:
        StorageError: *directory* exists and is not private (another user's, or group/other-writable).
        """
        self.directory = Path(directory)
        if self.directory.is_dir():  # anything else fails when a record is spilled (and is counted)
            check_directory(self.directory, "spool directory")
        #: The chain key replayed records are erased with when the forget list selects them (a
        #: writer sets its own, `Reader.forget` the one it erases with).
        self.chain_key: bytes | None = None
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._rejected = 0

    def _make_directory(self) -> None:
        try:
            make_private_directory(self.directory, "spool directory")
        except StorageError as exc:  # as an OSError: the callers count the records lost or report it
            raise UnsafeFileError(str(exc)) from exc

    def _open_own_file(self) -> int:
        self._make_directory()
        name = f"spool-{os.getpid()}-{os.urandom(8).hex()}.jsonl"
        fd = open_private(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND)
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
        self._make_directory()
        path = self.directory / f"rejected-{os.getpid()}.jsonl"
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
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
        report = on_problem or warn_problem
        records = files = skipped = 0
        for path in self.files():
            with self._forget_list(shared=True) as erasures:
                claimed = self._replay_file(path, storage, batch_size, report, erasures)
            if claimed is not None:
                records, files, skipped = records + claimed[0], files + 1, skipped + claimed[1]
        if files:
            self._trim_forget_list()
        return ReplayResult(records, files, skipped)

    def record_erasure(
        self,
        *,
        session: str | None,
        user: str | None,
        ids: Sequence[str],
        at: datetime,
    ) -> None:
        """Add an erasure to the forget list (fsynced): every later replay erases the payloads of the
        records it selects that were created up to *at*. Hold-up: waits while a replay of a file that
        read the list before is still writing, so that what it wrote is in the storage on return.

        Raises:
            OSError: the list cannot be written (the message says why).
        """
        self._make_directory()
        entry = {
            "at": format_timestamp(at),
            "session_sha256": None if session is None else _selector_digest(session),
            "user_sha256": None if user is None else _selector_digest(user),
            "ids": sorted(set(ids)),
        }
        with self._forget_list(shared=False, create=True) as _:
            fd = open_private(self.directory / _FORGET_LIST, os.O_WRONLY | os.O_APPEND, private_mode=True)
            try:
                _append_whole(fd, dumps(entry) + b"\n", durable=True)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _forget_list(self, *, shared: bool, create: bool = False) -> Iterator[list[_Erasure]]:
        """The forget list's erasures, under a shared or exclusive ``flock`` on the list file (the
        very file at its name: one trimmed meanwhile is opened again)."""
        path = self.directory / _FORGET_LIST
        while True:
            flags = os.O_RDONLY | (os.O_CREAT if create else 0)
            try:
                fd = open_private(path, flags, private_mode=True)
            except FileNotFoundError:
                yield []
                return
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
            os.close(fd)
        try:
            with os.fdopen(os.dup(fd), "rb") as stream:
                yield list(_parse_erasures(stream.read()))
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _trim_forget_list(self) -> None:
        """Drop erasures older than `FORGET_LIST_RETENTION` once no spool file is waiting (none can
        hold a record they select any more, bar one a running writer still has in memory)."""
        path = self.directory / _FORGET_LIST
        with contextlib.suppress(OSError), self._forget_list(shared=False) as erasures:
            if not erasures or self.files():
                return
            cutoff = utcnow() - FORGET_LIST_RETENTION
            kept = [e for e in erasures if e.at > cutoff]
            if len(kept) < len(erasures):
                replace_file(path, b"".join(e.line for e in kept))

    def _replay_file(
        self,
        path: Path,
        storage: Storage,
        batch_size: int,
        on_problem: ProblemHandler,
        erasures: list[_Erasure],
    ) -> tuple[int, int] | None:
        try:
            fd = open_private(path, os.O_RDONLY, private_mode=True)
        except FileNotFoundError:  # another process replayed it first
            return None
        except UnsafeFileError as exc:  # not a file llmaudit wrote: keep it for the operator, out of the way
            _set_aside(path, exc, on_problem)
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
                batch.append(_erase_listed(record, erasures, self.chain_key))
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
    replace_file(path, bytes(rest))


def _set_aside(path: Path, problem: Exception, on_problem: ProblemHandler) -> None:
    """Rename what sits at a spool name but is not llmaudit's (a link, another user's file) so that it
    is never replayed, and say so; the operator decides what it was."""
    target = path.with_name(f"{_REFUSED_PREFIX}{path.name}")
    try:
        os.rename(path, target)
    except OSError as exc:
        on_problem(f"{problem}; could not move it aside: {exc}")
        return
    on_problem(f"{problem}; it was not replayed and is now {target}")


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


@dataclass(frozen=True, slots=True)
class _Erasure:
    """One erasure of the forget list: which records (ids, or digests of a session key or user)
    created up to when."""

    at: datetime
    session_sha256: str | None
    user_sha256: str | None
    ids: frozenset[str]
    line: bytes

    def selects(self, record: AuditRecord) -> bool:
        if record.created_at > self.at:
            return False
        if record.id in self.ids:
            return True
        if (
            self.session_sha256 is not None
            and any(  # a session's nested sessions go with it, as in `Reader.forget`
                value is not None and _selector_digest(value) == self.session_sha256
                for value in (record.session_key, record.parent_session_key)
            )
        ):
            return True
        return (
            self.user_sha256 is not None
            and record.user is not None
            and _selector_digest(record.user) == self.user_sha256
        )


def _selector_digest(value: str) -> str:
    """The forget list keeps digests, not session keys (which may be credentials) or user names."""
    return hashlib.sha256(b"llmaudit-forget\0" + value.encode("utf-8", "surrogatepass")).hexdigest()


def _parse_erasures(data: bytes) -> Iterator[_Erasure]:
    for line in data.splitlines(keepends=True):
        try:
            entry = loads(line)
            yield _Erasure(
                parse_timestamp(entry["at"]),
                entry.get("session_sha256"),
                entry.get("user_sha256"),
                frozenset(entry.get("ids") or ()),
                line if line.endswith(b"\n") else line + b"\n",
            )
        except (ValueError, TypeError, KeyError):  # a line cut short by a crash: it never took effect
            continue


def _erase_listed(record: AuditRecord, erasures: list[_Erasure], key: bytes | None) -> AuditRecord:
    """*record* erased when an erasure of the forget list selects it (the same fields, tombstones and
    markers as `Reader.forget` writes into the storage: `erasure_changes`)."""
    for erasure in erasures:
        if erasure.selects(record):
            fields = erasure_changes(record, erasure.at, key)
            return replace(record, **fields) if fields else record
    return record
