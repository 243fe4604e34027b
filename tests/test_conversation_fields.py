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
from tests.conftest import SQL_KINDS, store_url_for

import llmaudit
from llmaudit import AuditRecord, Query

# private: the backend classes, built directly to inspect or tamper with their tables and files
from llmaudit.storage.sql import SQLStorage
from llmaudit.storage.sql import migrations as _migrations

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


@pytest.fixture(params=SQL_KINDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url_for(request.param, request, tmp_path)


def _as_schema_4(url: str) -> list[tuple[str, str | None, int | None, str | None]]:
    """Turn the store into what SQL schema 4 had (no conversation columns, stamp 4); its rows."""
    store = SQLStorage(url)
    rows = sorted((r.id, r.writer_id, r.seq, r.hash) for r in store.read(Query()))
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
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
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        assert upgraded.schema_version() == _migrations.SCHEMA_VERSION >= 5  # later steps may follow
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


def _text_indexes(url: str) -> set[str]:
    store = SQLStorage(url)
    try:
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        with store._engine.connect() as conn:
            names = {ix["name"] for ix in sa.inspect(conn).get_indexes(store.table.name)}
    finally:
        store.close()
    return {n for n in names if n and n.endswith(("_text", "_fulltext"))}


#: The queries the README gives, one per database with a full-text index.
SEARCHES = {
    "postgresql": (
        "SELECT id FROM {table} WHERE to_tsvector(CAST('simple' AS REGCONFIG), "
        "coalesce(input_text, '') || ' ' || coalesce(output_text, '')) @@ plainto_tsquery('simple', 'refund')"
    ),
    "mysql": "SELECT id FROM {table} WHERE MATCH (input_text, output_text) AGAINST ('refund')",
}


def _search(url: str) -> set[str | None]:
    """The session keys of the records the README's full-text query finds (and, on PostgreSQL,
    that the planner can answer it from the index)."""
    store = SQLStorage(url)
    try:
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        dialect = "postgresql" if store._engine.dialect.name == "postgresql" else "mysql"
        table = store._engine.dialect.identifier_preparer.format_table(store.table)
        query = SEARCHES[dialect].format(table=table)
        with store._engine.connect() as conn:
            found = {row[0] for row in conn.exec_driver_sql(query)}
            if dialect == "postgresql":
                conn.exec_driver_sql("SET enable_seqscan = off")  # a tiny table: show the index can serve
                plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + query))
                assert "Index Scan on ix_" in plan, plan
        return {r.session_key for r in store.read(Query()) if r.id in found}
    finally:
        store.close()


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("pg_url", marks=pytest.mark.postgres),
        pytest.param("mariadb_url", marks=pytest.mark.mariadb),
    ],
)
def test_the_flat_text_has_a_full_text_index_fresh_and_after_the_migration(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """PostgreSQL (GIN over a tsvector) and MariaDB (FULLTEXT): the README's query finds a word of
    the prompt or the answer through the index, in a new table and in one migrated from schema 4."""
    url = str(request.getfixturevalue(kind))
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(
            AuditRecord(session_key="a", input_text="user: where is my refund?", output_text="soon")
        )
        auditor.submit(AuditRecord(session_key="b", input_text="user: hello", output_text="hi"))
    fresh = _text_indexes(url)
    assert len(fresh) == 1
    assert _search(url) == {"a"}
    _as_schema_4(url)  # dropping the columns dropped their index too
    engine = sa.create_engine(url.split("?", maxsplit=1)[0])
    try:
        with engine.connect() as conn:
            table = url.partition("table=")[2]
            assert not {ix["name"] for ix in sa.inspect(conn).get_indexes(table)} & fresh
    finally:
        engine.dispose()
    assert _text_indexes(url) == fresh  # the migration made it again (on this open)
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool2")) as auditor:
        auditor.submit(AuditRecord(session_key="c", output_text="Your refund was sent"))
    assert _search(url) == {"c"}


def test_flat_text_from_json_with_nul_and_lone_surrogates_is_stored_on_every_sql_backend(
    sql_url: str, tmp_path: Path
) -> None:
    """JSON may escape NUL and lone surrogates (``\\u0000``, ``\\ud800``), which parse into the
    payloads; the flat text made from them must still fit every text column (PostgreSQL refuses
    NUL, no driver encodes a lone surrogate): both become U+FFFD, and the record is not lost."""
    from llmaudit.providers import flat_text

    # private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
    from llmaudit.record.bodies import parse_json

    request, _ = parse_json(b'{"messages": [{"role": "user", "content": "a\\u0000b\\ud800c"}]}')
    response, _ = parse_json(
        b'{"choices": [{"message": {"content": "d\\u0000e", "tool_calls": [{"id": "x\\u0000",'
        b' "function": {"name": "f\\udc00", "arguments": "{\\"k\\": \\"\\u0000\\"}"}}]}}]}'
    )
    inp, out, calls, _ = flat_text("openai", "chat.completions", request, response)
    # a lone surrogate's three UTF-8 bytes each become U+FFFD, as the codec makes them in the payloads
    assert (inp, out) == ("user: a\ufffdb" + "\ufffd" * 3 + "c", "d\ufffde")
    assert calls is not None and "\x00" not in str(calls) and "\udc00" not in calls[0]["name"]
    record = AuditRecord(
        provider="openai",
        operation="chat.completions",
        request=request,
        response=response,
        input_text=inp,
        output_text=out,
        tool_calls=calls,
    )
    with llmaudit.Auditor(sql_url, spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(record)
    with llmaudit.open(sql_url) as reader:
        stored = reader.get(record.id)
        assert reader.verify().ok
    assert stored is not None
    assert (stored.input_text, stored.output_text, stored.tool_calls) == (inp, out, calls)
