"""The transport suite runs over both httpx branches ({httpx, httpx2}) with each branch's MockTransport."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from llmaudit import Auditor, AuditRecord, Query


@pytest.fixture(params=["httpx", "httpx2"])
def hx(request: pytest.FixtureRequest) -> ModuleType:
    """The httpx branch under test."""
    return importlib.import_module(request.param)


class Recorder:
    """An Auditor on a private memory store, with a helper to read back what it wrote."""

    def __init__(self, tmp_path: Path) -> None:
        self.auditor = Auditor(f"memory://{uuid.uuid4().hex}", spool_dir=str(tmp_path / "spool"))

    def records(self) -> list[AuditRecord]:
        assert self.auditor.flush(10)
        return list(self.auditor.storage.read(Query()))

    def one(self) -> AuditRecord:
        (record,) = self.records()
        return record


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    rec = Recorder(tmp_path)
    yield rec
    rec.auditor.close()
