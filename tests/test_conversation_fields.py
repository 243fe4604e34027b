"""The conversation fields of record schema 4 (``input_text``, ``output_text``, ``tool_calls``) and the
logs written before them: a log sealed without them still verifies, on JSONL and after the SQL
migration from schema 4 to 5 (which adds the columns and rewrites no row), and `forget` still erases
it; a record that has them stores and reads back the same values on every backend."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import llmaudit
from llmaudit import AuditRecord, Query
from llmaudit.storage import _migrations
from llmaudit.storage.sql import SQLStorage

FIXTURES = Path(__file__).parent / "fixtures" / "chain_v2"
FIXTURE_KEY = "fixture-chain-key-FAKE"
NEW_COLUMNS = ("input_text", "output_text", "tool_calls")


def _fixture(kind: str, tmp_path: Path) -> tuple[str, str | None]:
    root = tmp_path / kind
    shutil.copytree(FIXTURES / kind, root)
    return f"jsonl://{root}", FIXTURE_KEY if kind == "keyed" else None


@pytest.mark.parametrize("kind", ["keyed", "unkeyed"])
def test_a_log_sealed_before_the_flat_text_existed_still_verifies_and_forgets(
    kind: str, tmp_path: Path
) -> None:
    """Written by llmaudit before record schema 4 (its lines have no such keys): absent fields enter
    no hash, so every record verifies; `forget` erases it as before."""
    url, key = _fixture(kind, tmp_path)
    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        before = reader.verify(key)
        records = list(reader.records())
        reader.forget(user="v2-alice", key=key)
        after = reader.verify(key)
    assert before.ok and before.totals()["verified"] == 4, before.to_json()
    assert all(
        (r.schema_version, r.input_text, r.output_text, r.tool_calls) == (3, None, None, None)
        for r in records
    )
    assert after.ok and after.totals()["erased"] == 4, after.to_json()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return str(request.getfixturevalue("pg_url" if request.param == "postgres" else "mariadb_url"))


def _as_schema_4(url: str) -> list[tuple[str, str | None, int | None, str | None]]:
    """Turn the store into what SQL schema 4 had (no conversation columns, stamp 4); its rows."""
    store = SQLStorage(url)
    rows = sorted((r.id, r.writer_id, r.seq, r.hash) for r in store.read(Query()))
    quote = store._engine.dialect.identifier_preparer.format_table
    with store._engine.begin() as conn:
        for column in NEW_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE {quote(store.table)} DROP COLUMN {column}")
        meta = _migrations.meta_table(store.table)
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value="4"))
    store.close()
    return rows


@pytest.mark.parametrize("kind", ["keyed", "unkeyed"])
def test_the_migration_to_sql_schema_5_adds_the_columns_and_old_rows_still_verify(
    sql_url: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows sealed before the conversation fields (the fixture, copied into SQL schema 4) are
    untouched by the migration, verify after it, and sit beside new rows that have the fields."""
    source, key = _fixture(kind, tmp_path)
    if key:
        monkeypatch.setenv("LLMAUDIT_CHAIN_KEY", key)
    with llmaudit.open(source) as reader:
        assert reader.export(sql_url) == 4
    before = _as_schema_4(sql_url)
    upgraded = SQLStorage(sql_url)  # migrates 4 -> 5 on open
    try:
        assert upgraded.schema_version() == _migrations.SCHEMA_VERSION == 5
        with upgraded._engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns(upgraded.table.name)}
        assert set(NEW_COLUMNS) <= columns
        assert sorted((r.id, r.writer_id, r.seq, r.hash) for r in upgraded.read(Query())) == before
        assert upgraded.registry() == [] or all(e.kind != "seal" for e in upgraded.registry())
    finally:
        upgraded.close()
    new = AuditRecord(
        session_key="after-migration",
        input_text="user: hello",
        output_text="hi",
        tool_calls=({"arguments": '{"a":1}', "id": "call_1", "name": "f"},),
    )
    with llmaudit.Auditor(sql_url, spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(new)
    with llmaudit.open(sql_url) as reader:
        report = reader.verify(key)
        stored = reader.get(new.id)
    assert report.ok and report.totals()["verified"] == 5, report.to_json()
    assert stored is not None
    assert (stored.input_text, stored.output_text, stored.tool_calls) == (
        new.input_text,
        new.output_text,
        new.tool_calls,
    )


@pytest.mark.parametrize("name", ["memory", "jsonl", "sqlite"])
def test_an_absent_field_reads_back_as_none_and_a_present_one_as_it_was(name: str, tmp_path: Path) -> None:
    """None stays None (not an empty string or list), text and tool calls come back equal."""
    url = {
        "memory": f"memory://{uuid.uuid4().hex}",
        "jsonl": f"jsonl://{tmp_path / 'log'}",
        "sqlite": f"sqlite:///{tmp_path / 'a.db'}",
    }[name]
    empty = AuditRecord(session_key="s")
    full = AuditRecord(
        session_key="s",
        input_text="user: ünïcødé \u0000 text",
        output_text="",
        tool_calls=({"arguments": "", "id": None, "name": None},),
    )
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(empty)
        auditor.submit(full)
    with llmaudit.open(url) as reader:
        got = {r.id: r for r in reader.records()}
        assert reader.verify().ok
    assert (got[empty.id].input_text, got[empty.id].output_text, got[empty.id].tool_calls) == (
        None,
        None,
        None,
    )
    assert (got[full.id].input_text, got[full.id].output_text, got[full.id].tool_calls) == (
        full.input_text,
        "",
        full.tool_calls,
    )
