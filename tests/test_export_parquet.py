"""`export --to FILE.parquet`: one row per record, every field a typed column (the conversation's flat
text among them) that reads back as the record had it; written whole and private; without pyarrow, a
clear error naming the extra."""

from __future__ import annotations

import json
import stat
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import llmaudit
from llmaudit import AuditRecord, ConfigurationError
from llmaudit.cli import cli, main

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.codec import FIELDS

START = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def _records() -> list[AuditRecord]:
    return [
        AuditRecord(
            created_at=START + timedelta(seconds=i),
            session_key="s-1",
            user="ana",
            tags=("beta", "eu"),
            metadata={"ticket": i},
            client="support-bot",
            provider="openai",
            operation="chat.completions",
            model="gpt-4o-mini",
            request={"messages": [{"role": "user", "content": f"question ü {i}"}]},
            response={"choices": [{"message": {"content": f"answer {i}"}}]},
            input_text=f"user: question ü {i}",
            output_text=f"answer {i}",
            tool_calls=({"arguments": '{"q":1}', "id": "call_1", "name": "lookup"},) if i else None,
            status_code=200,
            duration_ms=12.5,
            input_tokens=10 + i,
            output_tokens=3,
            total_tokens=13 + i,
            cost_usd=0.0001 * i if i else None,
            notes=("n",),
        )
        for i in range(3)
    ]


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        for record in _records():
            auditor.submit(record)
    return url


def test_a_parquet_export_has_one_typed_row_per_record_that_reads_back_as_recorded(
    store: str, tmp_path: Path
) -> None:
    destination = tmp_path / "out" / "calls.parquet"
    result = CliRunner().invoke(
        cli, ["export", "-s", store, "--to", str(destination)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "exported 3 records" in result.output
    table = pq.read_table(destination)
    assert table.column_names == list(FIELDS)
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("input_tokens").type) == "int64"
    assert pa.types.is_list(table.schema.field("tags").type)
    rows = sorted(table.to_pylist(), key=lambda row: row["created_at"])
    with llmaudit.open(store) as reader:
        records = sorted(reader.records(), key=lambda r: r.created_at)
    for row, record in zip(rows, records, strict=True):
        assert row["id"] == record.id and row["created_at"] == record.created_at
        assert (row["input_text"], row["output_text"]) == (record.input_text, record.output_text)
        assert row["tool_calls"] == (
            None if record.tool_calls is None else json.dumps(list(record.tool_calls), separators=(",", ":"))
        )
        assert json.loads(row["request"]) == record.request and row["tags"] == ["beta", "eu"]
        assert (row["input_tokens"], row["cost_usd"], row["is_stream"]) == (
            record.input_tokens,
            record.cost_usd,
            False,
        )
        assert row["hash"] == record.hash and row["seq"] == record.seq
    assert stat.S_IMODE(destination.stat().st_mode) == 0o600
    again = CliRunner().invoke(cli, ["export", "-s", store, "--to", str(destination)], catch_exceptions=False)
    assert again.exit_code == 0 and pq.read_table(destination).num_rows == 3  # rewritten, not appended
    assert [p.name for p in destination.parent.iterdir()] == ["calls.parquet"]  # no temporary left


def test_an_empty_export_still_writes_a_file_with_the_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")):
        pass
    with llmaudit.open(url) as reader:
        assert reader.export(str(tmp_path / "none.parquet")) == 0
    table = pq.read_table(tmp_path / "none.parquet")
    assert table.num_rows == 0 and "output_text" in table.column_names


def test_without_pyarrow_the_export_names_the_extra(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with llmaudit.open(store) as reader, pytest.raises(ConfigurationError, match=r"llmaudit-sdk\[parquet\]"):
        reader.export(str(tmp_path / "x.parquet"))
    with pytest.raises(SystemExit) as info:
        main(["export", "-s", store, "--to", str(tmp_path / "x.parquet")])
    assert info.value.code == 1
    assert "pip install 'llmaudit-sdk[parquet]'" in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()
