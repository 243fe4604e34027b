"""Export to Apache Parquet, for analysts (pandas, DuckDB, Polars, Spark): one row per record.

Every field of the record is a column: the flat ones typed (text, integers, floats, booleans,
``created_at`` as a UTC timestamp in microseconds), the conversation's flat text as plain text
columns (``input_text``, ``output_text``), ``tags`` and ``notes`` as lists of strings, and the
structured ones (``request``, ``response``, ``metadata``, ``headers``, ``tool_calls``) as their
canonical JSON text, which DuckDB's and Spark's JSON functions read. A Parquet file cannot be appended
to: it is written whole, in row groups of one batch each, to a temporary file beside the destination
and renamed into place, so an interrupted export leaves no partial file and running it again rewrites
it. Needs pyarrow (the ``parquet`` extra), imported only here, only when asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from ..record.codec import FIELDS, dumps
from ..record.model import AuditRecord

__all__ = ["JSON_COLUMNS", "to_parquet"]

#: Fields written as their canonical JSON text.
JSON_COLUMNS = ("headers", "metadata", "request", "response", "tool_calls")
_LISTS = ("tags", "notes")
_FLOATS = ("duration_ms", "ttft_ms", "cost_usd")
_INTS = ("input_tokens", "output_tokens", "total_tokens", "seq", "schema_version", "status_code", "attempt")
_BOOLS = ("is_stream", "incomplete", "is_aggregation")


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # noqa: PLC0415 - an optional dependency, loaded on first use
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(
            f"exporting to Parquet needs pyarrow ({exc}): pip install 'llmaudit-sdk[parquet]'"
        ) from None
    return pa, pq


def _schema(pa: Any) -> Any:
    def kind(name: str) -> Any:
        if name == "created_at":
            return pa.timestamp("us", tz="UTC")
        if name in _LISTS:
            return pa.list_(pa.string())
        if name in _FLOATS:
            return pa.float64()
        if name in _INTS:
            return pa.int64()
        if name in _BOOLS:
            return pa.bool_()
        return pa.string()

    return pa.schema(
        [pa.field(name, kind(name), nullable=name not in ("id", "created_at")) for name in FIELDS]
    )


def _value(record: AuditRecord, name: str) -> Any:
    value = getattr(record, name)
    if name in JSON_COLUMNS:
        return None if value is None else dumps(value).decode()
    if name in _LISTS:
        return list(value)
    return value


def to_parquet(
    records: Iterable[AuditRecord],
    path: Path,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write *records* to the Parquet file *path* (replacing it); returns how many were written.

    Raises:
        ConfigurationError: pyarrow is not installed.
    """
    pa, pq = _pyarrow()
    schema = _schema(pa)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    count = 0
    # private from its first byte, as every file llmaudit writes
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as stream:
            with pq.ParquetWriter(stream, schema, compression="zstd") as writer:
                batch: list[AuditRecord] = []
                for record in records:
                    batch.append(record)
                    if len(batch) >= batch_size:
                        count += _write(pa, writer, schema, batch, progress)
                        batch = []
                if batch or not count:
                    count += _write(pa, writer, schema, batch, progress)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return count


def _write(pa: Any, writer: Any, schema: Any, batch: list[AuditRecord], progress: Any) -> int:
    columns = {name: [_value(r, name) for r in batch] for name in FIELDS}
    writer.write_table(pa.Table.from_pydict(columns, schema=schema))
    if progress and batch:
        progress(len(batch))
    return len(batch)
