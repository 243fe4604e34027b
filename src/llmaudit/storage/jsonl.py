"""JSON Lines storage: one file per UTC day, rotated by size, safe for many processes appending at once.

``jsonl:///var/log/llm`` writes ``llmaudit-2026-11-24.jsonl`` (then ``.1.jsonl``, ``.2.jsonl``… once a
file reaches ``max_bytes``) under that directory; each line is a record's canonical JSON. Every batch
is appended under an exclusive ``flock`` on ``.llmaudit.lock`` with one ``O_APPEND`` write per file, so
processes never interleave or split a line; under the same lock each writer's chain head is kept in
``.chain/<writer_id>.json``. A batch lands whole or not at all: when a write fails part-way (a full
disk), every file it touched is cut back to its earlier size and the chain heads are put back, so the
writer's retry or spill never duplicates a record or leaves a cut line. Erasure and pruning rewrite
whole files atomically (temporary file, fsync, rename), also under the lock. Files are created 0600 in
a 0700 directory; a directory others can write to is refused, and no file is opened through a symbolic
link (see `._files`). Nothing is held open between batches, and the lock is released explicitly (not just
by closing), so a child forked in the middle of a batch never keeps it. Reading streams day by day and
never loads the whole log; unreadable lines are reported with file and line and skipped (the
byte-level line work is in `._lines`). It must not build, seal or retry records (the writer does),
and never holds a file open or the lock between calls.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._errors import ConfigurationError, StorageError, StorageNotFoundError, StorageUnavailableError
from ..integrity.chain import ChainState, RegistryEntry, new_state
from ..integrity.checkpoints import Checkpoint
from ..record.codec import dumps, encode_record, format_day, loads
from ..record.model import AuditRecord
from ._base import (
    ProblemHandler,
    Query,
    batch_heads,
    matches,
    ordered_checkpoints,
    raise_head,
    registered_writers,
    registry_additions,
    sealed_head,
    unstored_checkpoints,
    warn_problem,
)
from ._files import make_private_directory, open_private, read_private, replace_file
from ._lines import changed_lines, read_records, rewrite_records
from ._lines import write_all as _write_all
from ._lines import write_lines as _write_lines

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: single-process appends only
    fcntl = None  # type: ignore[assignment]

__all__ = ["DEFAULT_MAX_BYTES", "JSONLStorage", "rewrite_records"]

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
_FSYNC_POLICIES = ("never", "batch")
_NAME = re.compile(r"^llmaudit-(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.jsonl$")
_LOCK_NAME = ".llmaudit.lock"
_CHAIN_DIR = ".chain"  # one small file per writer: [head_seq, head_hash, base_seq, base_hash, macs…]
_REGISTRY_NAME = "registry.jsonl"  # in _CHAIN_DIR: one `RegistryEntry` a line, appended under the lock
_CHECKPOINTS_NAME = "checkpoints.jsonl"  # beside the day files: one signed checkpoint a line
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class JSONLStorage:
    """Append-only JSON Lines files; see the module docstring.

    Args:
        directory: where the day files are.
        max_bytes: size at which a day's file rotates.
        fsync: ``"never"``, ``"batch"``, … (see ``_FSYNC_POLICIES``).
        create: create the directory when it does not exist (a writer); ``False`` (the read side)
            opens an existing directory only and creates nothing in it.

    Raises:
        ConfigurationError: ``max_bytes`` or ``fsync`` is invalid.
        StorageNotFoundError: *create* is False and the directory does not exist.
        StorageError: the directory cannot be created or written.
    """

    #: Each line is a record's canonical JSON: the writer may hand over encodings it already made.
    writes_record_json = True

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        fsync: str = "never",
        create: bool = True,
    ) -> None:
        if fsync not in _FSYNC_POLICIES:
            raise ConfigurationError(f"jsonl fsync must be one of {_FSYNC_POLICIES}, not {fsync!r}")
        if max_bytes <= 0:
            raise ConfigurationError(f"jsonl max_bytes must be positive, not {max_bytes}")
        self.directory = Path(directory).expanduser()
        self.url = f"jsonl://{self.directory}"
        self.max_bytes, self.fsync = max_bytes, fsync
        #: The chain's HMAC key for heads, checkpoints and the registry (see ``RegistryStore``).
        self.chain_key: bytes | None = None
        self._index: dict[str, int] = {}
        self._registered: set[str] = set()  # writers known to be in the registry already
        if create:
            self._open_directory()
        elif not self.directory.is_dir():
            problem = "is not a directory" if self.directory.exists() else "does not exist"
            raise StorageNotFoundError(
                f"no llmaudit store at {self.url}: {self.directory} {problem}", url=self.url
            )

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> JSONLStorage:
        parts = urlsplit(url)
        path = parts.netloc + parts.path
        if not path:
            raise ConfigurationError(f"jsonl URL {url!r} names no directory, e.g. jsonl:///var/log/llm")
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - {"max_bytes", "fsync"}
        if unknown:
            raise ConfigurationError(f"unknown jsonl option(s) in {url!r}: {', '.join(sorted(unknown))}")
        try:
            max_bytes = int(options.get("max_bytes", DEFAULT_MAX_BYTES))
        except ValueError:
            raise ConfigurationError(f"jsonl max_bytes must be an integer in {url!r}") from None
        return cls(path, max_bytes=max_bytes, fsync=options.get("fsync", "never"), create=create)

    def _open_directory(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise StorageError(f"jsonl storage path {self.directory} exists and is not a directory")
        make_private_directory(self.directory, "jsonl storage directory")
        try:
            os.close(open_private(self.directory / _LOCK_NAME, os.O_WRONLY | os.O_CREAT))
        except OSError as exc:
            raise StorageError(f"cannot write jsonl storage {self.directory}: {exc.strerror or exc}") from exc

    # -- writing --------------------------------------------------------------------------------

    def write(self, records: Sequence[AuditRecord]) -> None:
        """Append *records* and move their writers' chain heads, all or nothing.

        Raises:
            StorageUnavailableError: the files cannot be written now (a full disk, an I/O error);
                nothing of the batch was kept, and the writer retries or spills it.
        """
        by_day: dict[str, list[bytes]] = defaultdict(list)
        for record in records:
            by_day[format_day(record.created_at)].append(encode_record(record))
        try:
            with self._locked():
                undo = _Undo()
                try:
                    for day, lines in by_day.items():
                        self._append(day, lines, undo)
                    self._save_heads(records, undo)
                except BaseException:
                    undo.rollback()
                    raise
        except OSError as exc:  # a file cannot refuse a record: whatever failed may work later
            raise StorageUnavailableError(f"cannot append to jsonl storage {self.directory}: {exc}") from exc

    def _save_heads(self, records: Sequence[AuditRecord], undo: _Undo) -> None:
        heads = batch_heads(records)
        for writer, (seq, digest) in heads.items():
            state = raise_head(self._chain_state(writer), writer, seq, digest, self.chain_key)
            if state is not None:
                self._save_chain_state(writer, state, undo)
        new = {w: head for w, head in heads.items() if w not in self._registered and _SAFE_NAME.match(w)}
        if new:
            known = registered_writers(self._read_registry())
            self._append_registry("writer", {w: h for w, h in new.items() if w not in known}, undo)
            self._registered.update(new)

    def _registry_path(self) -> Path:
        return self.directory / _CHAIN_DIR / _REGISTRY_NAME

    def _read_registry(self) -> list[RegistryEntry]:
        try:
            data = read_private(self._registry_path())
        except FileNotFoundError:
            return []
        entries = []
        for line in data.splitlines():
            try:
                entries.append(RegistryEntry(*loads(line)))
            except (ValueError, TypeError):
                continue  # an unreadable line: the links of the next entry tell verify
        return entries

    def _append_registry(
        self, kind: str, items: Mapping[str, tuple[int, str]], undo: _Undo | None, detail: Any = None
    ) -> None:
        """Append entries to the registry (under the lock); *undo* cuts them off again on failure."""
        if not items:
            return
        registry = self._read_registry()
        added = registry_additions(registry[-1] if registry else None, kind, items, self.chain_key, detail)
        path = self._registry_path()
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        try:
            if undo is not None:
                undo.sizes.setdefault(path, os.fstat(fd).st_size)
            _write_lines(fd, [dumps(list(entry)) for entry in added])
            if self.fsync == "batch" or undo is None:
                os.fsync(fd)
        finally:
            os.close(fd)

    def registry(self) -> list[RegistryEntry]:
        with self._locked():
            return self._read_registry()

    def _read_checkpoints(self) -> list[Checkpoint]:
        try:
            data = read_private(self.directory / _CHECKPOINTS_NAME)
        except FileNotFoundError:
            return []
        found = []
        for line in data.splitlines():
            try:
                found.append(Checkpoint.from_json(loads(line)))
            except ValueError:
                continue  # an unreadable line: verify reports the checkpoint missing (the witness has it)
        return found

    def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        with self._translated_os("write checkpoints"), self._locked():
            fresh = unstored_checkpoints(self._read_checkpoints(), checkpoints)
            if not fresh:
                return
            fd = open_private(self.directory / _CHECKPOINTS_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                _write_lines(fd, [dumps(c.to_json()) for c in fresh])
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]:
        with self._translated_os("read checkpoints"), self._locked():
            return ordered_checkpoints(self._read_checkpoints(), writer_id)

    @contextlib.contextmanager
    def _translated_os(self, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StorageError(f"cannot {action} in {self.directory}: {exc.strerror or exc}") from exc

    # -- chain state, erasure, pruning ----------------------------------------------------------

    def _chain_path(self, writer: str) -> Path:
        return self.directory / _CHAIN_DIR / f"{writer}.json"

    def _chain_state(self, writer: str) -> ChainState | None:
        if not _SAFE_NAME.match(writer):
            return None
        try:
            data = loads(read_private(self._chain_path(writer)))
            return ChainState(*data)
        except (OSError, ValueError, TypeError):
            return None

    def _save_chain_state(self, writer: str, state: ChainState, undo: _Undo | None = None) -> None:
        if not _SAFE_NAME.match(writer):  # writer ids come from records: never a path
            return
        path = self._chain_path(writer)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        before = _read_if_any(path) if undo is not None else None
        # A head moved by a batch is as durable as the batch's lines (the fsync policy): an fsync per
        # batch for a few bytes of head would cost more than the batch's own writes. A prune
        # checkpoint is always synced: it is rare, and losing it would fail verify on what remains.
        durable = self.fsync == "batch" or state.base_seq is not None
        _replace_file(path, dumps(list(state)) + b"\n", durable=durable)
        if undo is not None:
            undo.heads.setdefault(path, before)

    def chain_states(self) -> dict[str, ChainState]:
        states = {}
        folder = self.directory / _CHAIN_DIR
        if folder.is_dir():
            for path in folder.glob("*.json"):
                state = self._chain_state(path.stem)
                if state is not None:
                    states[path.stem] = state
        return states

    def erase(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        """Rewrite each file holding one of the records (atomically, under the lock), the other lines
        byte for byte as they were."""

        def change(record: AuditRecord) -> AuditRecord | None:
            return replace(record, **payloads[record.id]) if record.id in payloads else record

        return self._rewrite(set(payloads), change)

    def delete(self, ids: Sequence[str], checkpoints: Mapping[str, tuple[int, str]]) -> int:
        removed = self._rewrite(set(ids), lambda record: None)
        key = self.chain_key
        with self._locked():
            for writer, (seq, digest) in checkpoints.items():
                known = self._chain_state(writer) or new_state(writer, seq, digest, key)
                self._save_chain_state(writer, known.cut(writer, seq, digest, key))
            self._append_registry(
                "prune", {w: c for w, c in checkpoints.items() if _SAFE_NAME.match(w)}, None
            )
        return removed

    def seal_legacy(self, records: Sequence[AuditRecord], detail: Mapping[str, Any]) -> None:
        if not records:
            return
        sealed = {r.id: r for r in records}
        self._rewrite(set(sealed), lambda record: sealed.get(record.id, record))
        writer, seq, digest = sealed_head(records)
        with self._locked():
            self._save_chain_state(writer, new_state(writer, seq, digest, self.chain_key))
            self._append_registry("seal-legacy", {writer: (seq, digest)}, None, detail)

    def _rewrite(self, ids: set[str], change: Callable[[AuditRecord], AuditRecord | None]) -> int:
        changed = 0
        needles = [i.encode() for i in ids]
        try:
            with self._locked():
                for path in self.files():
                    data = read_private(path)
                    if not any(n in data for n in needles):
                        continue
                    lines, count = changed_lines(data, ids, change)
                    if count:
                        _replace_file(path, b"".join(lines))
                        changed += count
        except OSError as exc:
            raise StorageError(f"cannot rewrite jsonl storage {self.directory}: {exc}") from exc
        return changed

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = open_private(self.directory / _LOCK_NAME, os.O_WRONLY | os.O_CREAT)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            try:
                if fcntl is not None:  # unlock first: a child forked meanwhile holds a copy of fd, and
                    fcntl.flock(fd, fcntl.LOCK_UN)  # closing ours alone would keep the lock for ever
            finally:
                os.close(fd)

    def _path(self, day: str, index: int) -> Path:
        return self.directory / (f"llmaudit-{day}.jsonl" if index == 0 else f"llmaudit-{day}.{index}.jsonl")

    def _current(self, day: str) -> Path:
        """The file to append to: other processes may have rotated since, so move up while full."""
        index = self._index.get(day, 0)
        while True:
            path = self._path(day, index)
            try:
                if path.stat().st_size < self.max_bytes:
                    break
            except FileNotFoundError:
                break
            index += 1
        self._index[day] = index
        return path

    def _append(self, day: str, lines: list[bytes], undo: _Undo) -> None:
        path = self._current(day)
        created = not path.exists()
        fd = open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            undo.sizes.setdefault(path, None if created else size)
            if size and os.pread(fd, 1, size - 1) != b"\n":
                _write_all(fd, b"\n")  # a writer died mid-line: never glue our first record onto it
            _write_lines(fd, lines)
            if self.fsync == "batch":
                os.fsync(fd)
        finally:
            os.close(fd)
        if created and self.fsync == "batch":
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    # -- reading --------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The data files, oldest day first and in rotation order within a day."""
        return [path for _, paths in sorted(self._days().items()) for path in paths]

    def _days(self) -> dict[date, list[Path]]:
        days: dict[date, list[tuple[int, Path]]] = defaultdict(list)
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                m = _NAME.match(path.name)
                if m:
                    days[date.fromisoformat(m.group(1))].append((int(m.group(2) or 0), path))
        return {day: [p for _, p in sorted(paths)] for day, paths in days.items()}

    def read(
        self, query: Query = Query(), *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        report = on_problem or warn_problem
        seen: set[str] = set()
        remaining = query.limit
        days = sorted(self._days().items(), reverse=query.order == "desc")
        for day, paths in days:
            if not _day_in_range(day, query):
                continue
            chosen = self._read_day(paths, query, seen, report)
            for record in chosen:
                if remaining is not None and remaining <= 0:
                    return
                yield record
                if remaining is not None:
                    remaining -= 1

    def _read_day(
        self, paths: list[Path], query: Query, seen: set[str], report: ProblemHandler
    ) -> list[AuditRecord]:
        chosen = []
        for path in paths:
            for record in read_records(path, report):
                if record.id in seen:
                    continue
                seen.add(record.id)
                if matches(record, query):
                    chosen.append(record)
        chosen.sort(key=lambda r: (r.created_at, r.id), reverse=query.order == "desc")
        return chosen if query.limit is None else chosen[: query.limit]

    def close(self) -> None:
        """Nothing is held open between batches."""


class _Undo:
    """What a batch has changed so far, to put back when it fails part-way (under the lock)."""

    def __init__(self) -> None:
        self.sizes: dict[Path, int | None] = {}  # data file: its size before (None: the batch made it)
        self.heads: dict[Path, bytes | None] = {}  # chain file replaced: its content before (None: none)

    def rollback(self) -> None:
        """Cut the data files back first (that frees the space), then restore the chain files.
        Best effort: the error that brought us here is on its way to the caller."""
        for path, size in self.sizes.items():
            with contextlib.suppress(OSError):
                if size is None:
                    path.unlink()
                else:
                    os.truncate(path, size)
        for path, old in self.heads.items():
            with contextlib.suppress(OSError):
                if old is None:
                    path.unlink()
                else:
                    _replace_file(path, old)


def _read_if_any(path: Path) -> bytes | None:
    try:
        return read_private(path)
    except FileNotFoundError:
        return None


def _replace_file(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Atomically replace *path* by *data* through an unpredictable temporary name (`replace_file`)."""
    replace_file(path, data, durable=durable, write=_write_all)


def _day_in_range(day: date, query: Query) -> bool:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    if query.until is not None and start >= query.until:
        return False
    return query.since is None or start + timedelta(days=1) > query.since
