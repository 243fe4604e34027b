"""Shared pieces of the SDK suites: an isolated auditor, SSE/gzip wire helpers, and the secret check."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmaudit import Auditor, AuditRecord, Query

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.codec import encode_record

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


def sse(*events: tuple[str | None, Any], done: bool = False) -> bytes:
    """Server-sent events exactly as the providers frame them."""
    out = b""
    for name, data in events:
        if name:
            out += f"event: {name}\n".encode()
        out += b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
    return out + (b"data: [DONE]\n\n" if done else b"")


def chunks(data: bytes, size: int = 37) -> list[bytes]:
    """Split a body at arbitrary points, as TCP would, so framing is really exercised."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def gzipped(value: Any) -> bytes:
    return gzip.compress(json.dumps(value).encode())
