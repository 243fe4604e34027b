"""Replaying a store into an OTLP endpoint: `export`, resumable with ``after=``.

Records are read in ``(created_at, id)`` order and sent in batches through the OTLP sink; their span
ids are derived from their record ids, so sending a batch again (an interrupted export run again)
gives the backend the same spans. ``after=ID`` starts after that record, the cursor `export`
reports through *progress* and returns. Metrics are not sent (``metrics=False``): a replay would
count the calls again; the live sink sends them as calls happen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from ..read.reader import Reader
from ..record.model import AuditRecord
from ._sink import OTLPStorage

__all__ = ["ExportResult", "export", "is_otlp_url"]


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What `export` sent: how many records, and the id of the last one (the ``after=`` cursor)."""

    count: int
    last_id: str | None


def is_otlp_url(destination: str) -> bool:
    """Whether *destination* names an OTLP endpoint (``otlp://``, ``otlp+grpc://``...)."""
    return urlsplit(destination).scheme.lower().split("+", 1)[0] == "otlp"


def _after(records: Iterator[AuditRecord], cursor: AuditRecord | None) -> Iterator[AuditRecord]:
    if cursor is None:
        yield from records
        return
    key = (cursor.created_at, cursor.id)
    for record in records:
        if (record.created_at, record.id) > key:
            yield record


def export(
    reader: Reader,
    destination: str,
    *,
    after: str | None = None,
    batch_size: int = 500,
    progress: Callable[[int, str], None] | None = None,
    metrics: bool = False,
    content: bool | None = None,
    **filters: Any,
) -> ExportResult:
    """Send the records of *reader* matching *filters* (those of `Reader.records`: ``since=``,
    ``session=``...) to the OTLP endpoint *destination*, oldest first.

    Args:
        after: the id of the last record an earlier run sent: start after it.
        progress: called after each batch with its size and the id of its last record.
        metrics: also send ``gen_ai.client.*`` metrics (counted again on every replay).
        content: send message content (None: as ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says).

    Raises:
        ConfigurationError: *destination* is not an OTLP URL, or *after* names no record.
        StorageUnavailableError: the endpoint did not take a batch (run again with ``after=``
            the last id reported to resume).
    """
    if not is_otlp_url(destination):
        raise ConfigurationError(f"{destination!r} is not an otlp:// or otlp+grpc:// URL")
    cursor = None
    if after is not None:
        cursor = reader.get(after)
        if cursor is None:
            raise ConfigurationError(f"--after {after!r}: no such record in {reader.storage.url}")
        since = filters.get("since")
        if since is None or since < cursor.created_at:
            filters["since"] = cursor.created_at
    filters.pop("order", None)
    sink = OTLPStorage.from_url(destination)
    sink.metrics = metrics
    if content is not None:
        sink.content = content
    count, last = 0, None
    batch: list[AuditRecord] = []
    try:
        for record in _after(reader.records(order="asc", **filters), cursor):
            batch.append(record)
            if len(batch) >= batch_size:
                count, last = _send(sink, batch, count, progress)
                batch = []
        if batch:
            count, last = _send(sink, batch, count, progress)
    finally:
        sink.close()
    return ExportResult(count, last if last is not None else after)


def _send(
    sink: OTLPStorage, batch: list[AuditRecord], count: int, progress: Callable[[int, str], None] | None
) -> tuple[int, str]:
    sink.write(batch)
    if progress is not None:
        progress(len(batch), batch[-1].id)
    return count + len(batch), batch[-1].id
