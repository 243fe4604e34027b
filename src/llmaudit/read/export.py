"""Export records to another storage, a JSON Lines file or a CSV file; idempotent and resumable.
(A Parquet file, for analysts, is written whole instead: see `parquet`.)

A storage URL gets batches through its own idempotent ``write`` (same id, one record). A file gets only
the records whose id it does not hold yet, appended in batches and fsynced, so an interrupted export
run again picks up where it stopped. JSONL lines are the canonical record JSON (what ``jsonl://`` and
the spool hold); CSV has one column per record field, JSON text for the structured ones.

CSV is opened by spreadsheets, which run a cell that starts like a formula: every text cell (session
key, user, client, model, error, JSON text…) whose first character, or first after leading
whitespace, is ``=``, ``+``, ``-`` or ``@`` (or their full-width forms), or that starts with a tab or
a carriage return, gets a leading ``'`` (OWASP's advice), so it is shown as text and never evaluated.
Numeric fields (tokens, cost, latency, status) are written as numbers and stay numbers.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from .._errors import ConfigurationError
from ..record.codec import FIELDS, decode_record, dumps, encode_record, record_to_dict
from ..record.model import AuditRecord
from ..storage import ChainStore, RegistryStore, open_storage

__all__ = ["encode", "export"]

_STRUCTURED = ("tags", "metadata", "headers", "request", "response", "notes", "tool_calls")
# what makes a spreadsheet evaluate a cell (OWASP CSV injection), also after leading whitespace; the
# full-width forms too, which some spreadsheets read as their ASCII twins
_FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
_FORMULA_CONTROLS = frozenset("\t\r")


def _batches(records: Iterable[AuditRecord], size: int) -> Iterator[list[AuditRecord]]:
    batch: list[AuditRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def export(
    records: Iterable[AuditRecord],
    destination: str,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    checkpoints: Mapping[str, tuple[int, str]] | None = None,
    *,
    chain_key: bytes | None = None,
) -> int:
    """Copy *records* to *destination*; returns how many were written (or handed to the storage).
    *checkpoints* (the source's prune checkpoints) go along to a storage, so the copy verifies too;
    the storage MACs heads and checkpoints with *chain_key* (the chain's own key)."""
    if "://" in destination:
        storage = open_storage(destination)
        if isinstance(storage, RegistryStore):
            storage.chain_key = chain_key
        try:
            if checkpoints and isinstance(storage, ChainStore):
                storage.delete([], checkpoints)
            count = 0
            for batch in _batches(records, batch_size):
                storage.write(batch)
                count += len(batch)
                if progress:
                    progress(len(batch))
            return count
        finally:
            storage.close()
    path = Path(destination).expanduser()
    if path.suffix == ".jsonl":
        return _to_file(records, path, batch_size, progress, _jsonl_ids, _jsonl_lines)
    if path.suffix == ".csv":
        return _to_file(records, path, batch_size, progress, _csv_ids, _csv_lines)
    if path.suffix == ".parquet":
        from .parquet import to_parquet  # noqa: PLC0415 - pyarrow is optional, and loaded only here

        return to_parquet(records, path, batch_size, progress)
    raise ConfigurationError(
        f"export destination {destination!r}: use a storage URL, FILE.jsonl, FILE.csv or FILE.parquet"
    )


def encode(records: Iterable[AuditRecord], fmt: str, batch_size: int = 500) -> Iterator[bytes]:
    """*records* as the bytes `export` writes to a ``.jsonl`` or ``.csv`` file (*fmt*), a batch at a
    time: for a download that streams the same file (the web viewer's).

    Raises:
        ConfigurationError: *fmt* is neither ``jsonl`` nor ``csv``.
    """
    if fmt not in ("jsonl", "csv"):
        raise ConfigurationError(f"export format {fmt!r}: use jsonl or csv")
    lines = _jsonl_lines if fmt == "jsonl" else _csv_lines
    fresh = True
    for batch in _batches(records, batch_size):
        yield lines(batch, fresh)
        fresh = False
    if fresh and fmt == "csv":  # no record: the header alone, as an export to a new file writes it
        yield lines([], True)


def _to_file(  # noqa: PLR0917 - one private caller, two call sites
    records: Iterable[AuditRecord],
    path: Path,
    batch_size: int,
    progress: Callable[[int], None] | None,
    read_ids: Callable[[Path], set[str]],
    encode: Callable[[list[AuditRecord], bool], bytes],
) -> int:
    done = read_ids(path) if path.exists() else set()
    fresh = not path.exists() or path.stat().st_size == 0
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    count = 0
    try:
        for batch in _batches(records, batch_size):
            new = [r for r in batch if r.id not in done]
            if new:
                data = encode(new, fresh)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                fresh = False
                done.update(r.id for r in new)
                count += len(new)
            if progress:
                progress(len(batch))
    finally:
        os.close(fd)
    return count


def _jsonl_ids(path: Path) -> set[str]:
    ids = set()
    with path.open("rb") as stream:
        for line in stream:
            if line.endswith(b"\n"):  # a line cut by an interrupted export is written again
                try:
                    ids.add(decode_record(line).id)
                except (ValueError, TypeError):
                    continue
    return ids


def _jsonl_lines(records: list[AuditRecord], fresh: bool) -> bytes:
    return b"".join(encode_record(r) + b"\n" for r in records)


def _formula_like(text: str) -> bool:
    return text[:1] in _FORMULA_CONTROLS or text.lstrip()[:1] in _FORMULA_STARTS


def _csv_cell(value: object) -> object:
    """A CSV cell for *value*: text that a spreadsheet would run as a formula gets a leading ``'``;
    numbers, booleans and safe text are written as they are."""
    if isinstance(value, str) and _formula_like(value):
        return "'" + value
    return value


def _csv_text(cell: str) -> str:
    """The text of a cell `_csv_cell` wrote (its ``'`` removed)."""
    return cell[1:] if cell.startswith("'") and _formula_like(cell[1:]) else cell


def _csv_ids(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8") as stream:
        return {_csv_text(row["id"]) for row in csv.DictReader(stream) if row.get("id")}


def _csv_lines(records: list[AuditRecord], fresh: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fresh:
        writer.writerow(FIELDS)
    for record in records:
        data = record_to_dict(record)
        writer.writerow(
            [
                _csv_cell(
                    dumps(data[name]).decode()
                    if name in _STRUCTURED
                    else ("" if data[name] is None else data[name])
                )
                for name in FIELDS
            ]
        )
    return buffer.getvalue().encode("utf-8")
