"""JSON Lines files at the byte level, for the JSONL store and for anything else llmaudit keeps as
JSON Lines (the spool's rejected-records files): writing lines whole with ``writev``, reading a file's
records while reporting the lines that cannot be read, and rewriting a file's records atomically.

It must not lock, rotate or decide where files are (``jsonl`` does), nor trust a path it was not given
through `._files` (every file is opened with `open_private`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

from ..record.codec import decode_record, encode_record
from ..record.model import AuditRecord
from ._base import ProblemHandler
from ._files import open_private, read_private, replace_file

__all__ = ["changed_lines", "read_records", "rewrite_records", "write_all", "write_lines"]

#: Given a stored record, the record to keep in its place, or None to drop it.
Change = Callable[[AuditRecord], "AuditRecord | None"]


def write_all(fd: int, data: bytes) -> None:
    """Write all of *data* to *fd*, going on after a short write."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


#: At most this many buffers per ``writev`` (Linux's IOV_MAX is 1024).
_IOV_MAX = 1024
_NEWLINE = b"\n"


def write_lines(fd: int, lines: Sequence[bytes]) -> None:
    """Write each of *lines* followed by a newline, with ``writev``: no copy of the batch is made
    (joining half a megabyte per batch costs fresh pages from the kernel each time: the allocator
    maps and unmaps a block that size). A short write goes on from where it stopped."""
    parts = [_NEWLINE] * (2 * len(lines))
    parts[::2] = lines
    start = 0
    while start < len(parts):
        chunk = parts[start : start + _IOV_MAX]
        written = os.writev(fd, chunk)
        for part in chunk:
            if written < len(part):
                write_all(fd, part[written:])
                start += 1
                break
            written -= len(part)
            start += 1


def changed_lines(data: bytes, ids: Collection[str], change: Change) -> tuple[list[bytes], int]:
    """The lines of *data* with each record whose id is in *ids* replaced by ``change(record)``
    (dropped when it returns None), every other line (an unreadable one too) byte for byte; and
    how many records were changed or dropped."""
    lines, count = [], 0
    for line in data.splitlines(keepends=True):
        try:
            record = decode_record(line) if line.strip() else None
        except (ValueError, TypeError):
            record = None  # an unreadable line is kept as it is (read() reports it)
        if record is None or record.id not in ids:
            lines.append(line)
            continue
        new = change(record)
        count += 1
        if new is not None:
            lines.append(encode_record(new) + b"\n")
    return lines, count


def rewrite_records(path: Path, ids: Collection[str], change: Change, *, data: bytes | None = None) -> int:
    """Rewrite the JSON Lines file *path* (whose content is *data* when the caller has read it
    already) with `changed_lines`, atomically (`replace_file`: readers see the old file or the new),
    and only when a record changed. Returns how many records were changed or dropped.

    Raises:
        OSError: the file cannot be read or replaced (an `UnsafeFileError` for a file that is not
            llmaudit's); it is left as it was.
    """
    if data is None:
        data = read_private(path)
    lines, count = changed_lines(data, ids, change)
    if count:
        replace_file(path, b"".join(lines), write=write_all)
    return count


def read_records(path: Path, report: ProblemHandler) -> Iterator[AuditRecord]:
    """The records of the JSON Lines file *path*, in file order; a file that cannot be opened, a
    truncated last line and an unreadable line are told to *report* (with file and line) and skipped."""
    try:
        stream = os.fdopen(open_private(path, os.O_RDONLY), "rb")
    except OSError as exc:
        report(f"{path}: cannot open: {exc}")
        return
    with stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            if not line.endswith(b"\n"):
                report(f"{path}:{lineno}: skipped a truncated last line ({len(line)} bytes)")
                continue
            try:
                yield decode_record(line)
            except (ValueError, TypeError) as exc:
                report(f"{path}:{lineno}: skipped an unreadable line: {exc}")
