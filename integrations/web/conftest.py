"""An auditor on a private memory store, and a decorated "LLM step" each handler calls."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import llmaudit
from llmaudit import Auditor, AuditRecord, Query


class Recorded:
    def __init__(self, tmp_path: Path, url: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.auditor = Auditor(url or f"memory://{uuid.uuid4().hex}", spool_dir=str(tmp_path / "spool"))

        @llmaudit.audited(auditor=self.auditor, name="handler.llm_step")
        def llm_step(tag: str) -> str | None:
            ctx = llmaudit.current_session()
            return ctx.session_key if ctx else None

        self.llm_step: Callable[[str], str | None] = llm_step

    def records(self) -> list[AuditRecord]:
        assert self.auditor.flush(10)
        return list(self.auditor.storage.read(Query()))

    def keys_by_tag(self) -> dict[str, str | None]:
        return {r.request["arguments"]["tag"]: r.session_key for r in self.records()}  # type: ignore[index]

    def stored_bytes(self) -> bytes:
        """Every byte the auditor left on disk (database, WAL, spool), once it is closed."""
        self.auditor.close()
        return b"".join(p.read_bytes() for p in sorted(self.tmp_path.rglob("*")) if p.is_file())


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[Recorded]:
    """Like `recorded`, on a real SQLite file, so a test can grep what reached the disk."""
    (tmp_path / "store").mkdir()
    rec = Recorded(tmp_path / "store", f"sqlite:///{tmp_path / 'store' / 'audit.db'}")
    yield rec
    rec.auditor.close()


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    rec = Recorded(tmp_path)
    yield rec
    rec.auditor.close()
