"""Private files and directories: what llmaudit checks before it trusts a path on disk.

A directory llmaudit writes into (a JSONL store, a spool, a SQLite database's directory) must belong
to the user running it (or to root) and be writable by nobody else: whoever can write there can plant
a symbolic link at a name llmaudit is about to open (redirecting its appends or rewrites), or a file
it would read back as its own (a forged spool file). New directories are created 0700. Files in them
are opened without following a final symbolic link and must be regular files of that user (or root)
with a single link; temporary files get unpredictable names and are created exclusively (``mkstemp``).
This module only refuses: it neither logs nor decides what a refusal means for the records.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from .._errors import StorageError

__all__ = [
    "UnsafeFileError",
    "check_directory",
    "make_private_directory",
    "open_private",
    "read_private",
    "replace_file",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # 0 on Windows
# O_NONBLOCK: opening a FIFO planted at a file's name must not hang (regular files ignore the flag)
_OPEN_FLAGS = _NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


class UnsafeFileError(OSError):
    """A file llmaudit was about to open is a symbolic link, not a regular file, hard-linked elsewhere,
    or not its user's: someone else may be redirecting or forging its files. An ``OSError``, so the
    callers' existing handling (spill, report, skip) applies; the message names the path and the fix."""


def _owners() -> tuple[int, ...] | None:
    """The owners a file or directory may have (the effective user, and root); None: no POSIX ids."""
    geteuid = getattr(os, "geteuid", None)
    return None if geteuid is None else (geteuid(), 0)


def check_directory(path: Path, what: str) -> None:
    """Refuse an existing *path* not owned by the effective user (or root) or writable by group or
    others. A missing *path* passes (the caller creates it private).

    Raises:
        StorageError: naming the directory, what is wrong and the commands that fix it.
    """
    owners = _owners()
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot check {what} {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"{what} {path} exists and is not a directory")
    if owners is None:  # pragma: no cover - Windows: ACLs, not modes
        return
    problems = []
    if st.st_uid not in owners:
        problems.append(f"owned by uid {st.st_uid}, not by you (uid {owners[0]})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        bits = (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
        writers = " and ".join(who for who, bit in bits if st.st_mode & bit)
        problems.append(f"writable by {writers} (mode {stat.S_IMODE(st.st_mode):04o})")
    if problems:
        raise StorageError(
            f"refusing {what} {path}: it is {' and '.join(problems)}, so someone else could plant links "
            f"or files there that llmaudit would write through or read back as its own; make it yours "
            f"and private (chown {owners[0]} '{path}' && chmod go-w '{path}') or choose another directory"
        )


def make_private_directory(path: Path, what: str) -> None:
    """Create *path* and any missing parent 0700, then `check_directory` it.

    Raises:
        StorageError: it cannot be created, or it is not private (see `check_directory`).
    """
    missing = []
    current = path
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    try:
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                directory.mkdir(mode=0o700)
    except OSError as exc:
        raise StorageError(f"cannot create {what} {path}: {exc.strerror or exc}") from exc
    check_directory(path, what)


def open_private(path: Path, flags: int, *, private_mode: bool = False) -> int:
    """``os.open(path, flags, 0o600)`` refusing a symbolic link, anything but a regular file, a file
    with more than one link, or one owned by another user (and, with *private_mode*, one readable or
    writable by group or others: llmaudit never creates such a file).

    Raises:
        UnsafeFileError: one of the above; nothing is left open.
        OSError: the file cannot be opened.
    """
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, 0o600)
    except OSError as exc:
        if _NOFOLLOW and os.path.islink(path):
            raise UnsafeFileError(
                f"refusing {path}: it is a symbolic link (to {os.readlink(path)!r}) where llmaudit keeps "
                f"its own file; remove it and check who can write to {path.parent}"
            ) from exc
        raise
    try:
        problem = _file_problem(os.fstat(fd), private_mode=private_mode)
    except BaseException:
        os.close(fd)
        raise
    if problem is not None:
        os.close(fd)
        raise UnsafeFileError(f"refusing {path}: it is {problem}, not a file llmaudit created; move it away")
    return fd


def _file_problem(st: os.stat_result, *, private_mode: bool) -> str | None:
    owners = _owners()
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_nlink != 1:
        return f"hard-linked ({st.st_nlink} names)"
    if owners is not None and st.st_uid not in owners:
        return f"owned by uid {st.st_uid}, not by you (uid {owners[0]})"
    if private_mode and owners is not None and st.st_mode & 0o077:
        return f"accessible to group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def read_private(path: Path) -> bytes:
    """The bytes of *path*, opened with `open_private`.

    Raises:
        UnsafeFileError, OSError: as `open_private`.
    """
    fd = open_private(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as stream:
        return stream.read()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def replace_file(
    path: Path, data: bytes, *, durable: bool = True, write: Callable[[int, bytes], None] | None = None
) -> None:
    """Write *data* to a new 0600 temporary file beside *path* (an unpredictable name, created
    exclusively, so a link planted there is never written through), fsync it (if *durable*), and
    rename it over *path*: readers see the old content or the new, never a mix. *write* writes all
    of the bytes to the file descriptor (``os.write`` in a loop by default).

    Raises:
        OSError: it cannot be written; no temporary file is left behind.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        try:
            (write or _write_all)(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # never leave a half-written temporary file behind
            tmp.unlink()
        raise
