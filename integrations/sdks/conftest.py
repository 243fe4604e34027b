"""Shared pieces of the SDK suites: an isolated auditor, SSE/gzip wire helpers, and the secret check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.wire import chunks, gzipped, sse

from llmaudit import Auditor, AuditRecord, Query

# private: the stored encoding of a record, checked for the API key
from llmaudit.record.codec import encode_record

__all__ = ["FAKE_KEY", "Recorder", "chunks", "gzipped", "recorder", "sse"]  # the wire helpers: tests/wire.py

FAKE_KEY = "sk-test-FAKE-0123456789abcdef"


class Recorder:
    def __init__(self, tmp_path: Path) -> None:
        self.auditor = Auditor(f"memory://{uuid.uuid4().hex}", spool_dir=str(tmp_path / "spool"))

    def records(self) -> list[AuditRecord]:
        assert self.auditor.flush(10)
        records = list(self.auditor.storage.read(Query()))
        for record in records:
            assert FAKE_KEY not in encode_record(record).decode(), "an API key reached storage"
        return records

    def one(self) -> AuditRecord:
        (record,) = self.records()
        return record


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    rec = Recorder(tmp_path)
    yield rec
    rec.auditor.close()
