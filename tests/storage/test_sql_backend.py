"""SQL storage specifics: URLs and drivers, SQLite file and WAL, indexes, exact JSON on PostgreSQL,
exact keys on MariaDB, schema versions and migrations, and clear errors for unreachable servers."""

from __future__ import annotations

import builtins
import os
import stat
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

import llmaudit
from llmaudit import AuditRecord, ConfigurationError, StorageError, StorageUnavailableError

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.codec import FIELDS, dumps, encode_record
from llmaudit.storage import Query, open_storage
from llmaudit.storage.sql import SQLStorage
from llmaudit.storage.sql import migrations as _migrations
from llmaudit.storage.sql.engine import normalise_url as _normalise_url
from llmaudit.storage.sql.migrations import SCHEMA_VERSION
from llmaudit.storage.sql.sqlite import prepare_file


@pytest.mark.parametrize(
    ("url", "driver", "table"),
    [
        ("postgres://u@h/db", "postgresql+psycopg", "llmaudit_records"),
        ("postgresql://u@h/db?table=audit", "postgresql+psycopg", "audit"),
        ("mysql://root@h/db", "mysql+pymysql", "llmaudit_records"),
        ("mariadb://root@h/db", "mariadb+pymysql", "llmaudit_records"),
        ("postgresql+psycopg://u@h/db?sslmode=disable&table=x", "postgresql+psycopg", "x"),
        ("sqlite:////tmp/a.db", "sqlite", "llmaudit_records"),
    ],
)
def test_urls_get_our_default_drivers_and_lose_the_table_parameter(url: str, driver: str, table: str) -> None:
    """Plain schemes use psycopg 3 and PyMySQL (never psycopg2); ?table= is ours, not the driver's."""
    parsed, got_table = _normalise_url(url)
    assert (parsed.drivername, got_table) == (driver, table)
    assert "table" not in parsed.query
    if "sslmode" in url:
        assert parsed.query["sslmode"] == "disable"


@pytest.mark.parametrize("table", ["bad-name", "x;drop table y", "1abc"])
def test_table_names_must_be_plain_identifiers(table: str) -> None:
    """The table name reaches DDL, so only identifiers are accepted."""
    with pytest.raises(ConfigurationError, match="identifier"):
        _normalise_url(f"sqlite:////tmp/a.db?table={table}")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLStorage]:
    store = SQLStorage(f"sqlite:///{tmp_path / 'sub' / 'audit.db'}")
    yield store
    store.close()


def test_opening_a_store_keeps_the_locks_of_connections_already_open_on_its_file(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it: a store
    opened on an existing SQLite file must not open (and close) it itself, or the lock of a connection
    already inside a write transaction (Django's own, another store's) is lost and a second writer
    gets in (the corruption a Django test suite showed)."""
    import sqlite3
    import subprocess
    import sys

    path = tmp_path / "shared.db"
    holder = sqlite3.connect(path, isolation_level=None)  # the rollback journal: locks on the file
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        # what a store does to its file before SQLite opens it (a private helper: the store itself
        # would wait on the exclusive lock for its pragmas, so the lock is observed between the two)
        prepare_file(sa.engine.make_url(f"sqlite:///{path}"))
        probe = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
            "try:\n    c.execute('BEGIN IMMEDIATE')\nexcept sqlite3.OperationalError as e:\n"
            "    print(e)\nelse:\n    print('got in')\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
        )
        assert other.stdout.strip() == "database is locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_sqlite_file_is_private_and_in_wal_mode(sqlite_store: SQLStorage, tmp_path: Path) -> None:
    """The embedded database is created 0600 (its directory on demand) and uses WAL."""
    sqlite_store.write([AuditRecord()])
    path = tmp_path / "sub" / "audit.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with sqlite_store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_connections_converting_a_new_file_to_wal_at_once_all_succeed(tmp_path: Path) -> None:
    """Two connections that convert a new file to WAL at once: SQLite answers one "database is
    locked" at once, without its busy handler (3 threads: 114 failures in 300 tries before the
    retry; CI saw it with 4 processes starting on one file). Every connection must come up in WAL."""
    import sqlite3
    import threading

    # private: the backend classes, built directly to inspect or tamper with their tables and files
    from llmaudit.storage.sql.sqlite import sqlite_pragmas as _sqlite_pragmas

    errors: list[BaseException] = []
    for trial in range(60):
        path = tmp_path / f"{trial}.db"
        path.touch()
        barrier = threading.Barrier(3)

        def connect(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            conn = sqlite3.connect(path, timeout=5.0)
            try:
                barrier.wait()
                _sqlite_pragmas(conn, None)
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=connect) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_filter_columns_are_indexed(sqlite_store: SQLStorage) -> None:
    """Every filter column leads an index (session_key and client lead SQLite's covering indexes of
    sessions and stats), and the covering indexes hold every column those summaries read."""
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    indexes = sa.inspect(sqlite_store._engine).get_indexes("llmaudit_records")
    leading = {i["column_names"][0] for i in indexes}
    assert {"session_key", "client", "model", "created_at", "user", "parent_id", "writer_id"} <= leading
    by_name = {i["name"]: i["column_names"] for i in indexes}
    stats = set(by_name["ix_llmaudit_records_stats_by_kind"])
    sessions = set(by_name["ix_llmaudit_records_sessions_by_kind"])
    summed = {"input_tokens", "output_tokens", "cost_usd", "status_code", "error", "is_aggregation", "source"}
    assert summed | {"client", "model", "duration_ms", "created_at"} <= stats
    assert summed | {"session_key", "user", "created_at"} <= sessions


def test_json_payloads_keep_their_exact_text_on_sqlite(sqlite_store: SQLStorage) -> None:
    """SQLite's JSON affinity would turn 1.0 into 1: payloads are stored as TEXT instead."""
    record = AuditRecord(request=1.0, response={"a": 1.0, "b": 10**16})
    sqlite_store.write([record])
    (got,) = sqlite_store.read(Query(ids=(record.id,)))
    assert encode_record(got) == encode_record(record)


@pytest.mark.postgres
def test_postgres_payloads_round_trip_exactly_where_jsonb_would_not(pg_url: str) -> None:
    """PostgreSQL json (not jsonb) keeps 1e16 a float, 1e300 intact, NUL escapes and 1.0."""
    store = open_storage(pg_url)
    record = AuditRecord(request={"a": 1e16, "b": 1e300, "c": "x\u0000y", "d": 1.0}, metadata={"n": 1e-7})
    store.write([record])
    (got,) = store.read(Query(ids=(record.id,)))
    store.close()
    assert encode_record(got) == encode_record(record)
    assert isinstance(got.request["a"], float)  # type: ignore[index]


@pytest.mark.mariadb
def test_mariadb_session_keys_compare_exactly_and_hold_emoji(mariadb_url: str) -> None:
    """utf8mb4 with a binary collation: "ABC" and "abc" are different sessions; 4-byte characters fit."""
    store = open_storage(mariadb_url)
    upper, lower = AuditRecord(session_key="ABC 🚀"), AuditRecord(session_key="abc 🚀")
    store.write([upper, lower])
    assert [r.id for r in store.read(Query(session_key="ABC 🚀"))] == [upper.id]
    assert [r.session_key for r in store.read(Query(session_key="abc 🚀"))] == ["abc 🚀"]
    store.close()


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("pg", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_idempotent_insert_on_each_dialect_counts_one_row(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The same id written in two batches is one row (counted in SQL, not through our reader)."""
    url = {"sqlite": f"sqlite:///{tmp_path / 'i.db'}"}.get(kind) or request.getfixturevalue(
        "pg_url" if kind == "pg" else "mariadb_url"
    )
    store = SQLStorage(url)
    record = AuditRecord()
    store.write([record])
    store.write([record, AuditRecord()])
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with store._engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.table)).scalar() == 2
    store.close()


def test_schema_is_stamped_and_a_newer_one_refused(tmp_path: Path) -> None:
    """A fresh database gets the current version; one from a newer llmaudit is refused clearly."""
    url = f"sqlite:///{tmp_path / 'v.db'}"
    store = SQLStorage(url)
    assert store.schema_version() == SCHEMA_VERSION
    meta = _migrations.meta_table(store.table)
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with store._engine.begin() as conn:
        conn.execute(meta.update().values(value=str(SCHEMA_VERSION + 1)))
    store.close()
    with pytest.raises(StorageError, match="newer than this llmaudit"):
        SQLStorage(url)


def test_migrations_run_once_in_order_and_bump_the_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older database is migrated step by step on open (or refused with migrate=False)."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    SQLStorage(url).close()
    runs: list[int] = []

    def add_index(conn: sa.Connection, table: sa.Table) -> None:
        runs.append(SCHEMA_VERSION)
        conn.exec_driver_sql(f"CREATE INDEX ix_test_migration ON {table.name} (model, client)")

    monkeypatch.setattr(_migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(_migrations.MIGRATIONS, SCHEMA_VERSION, add_index)
    with pytest.raises(StorageError, match="llmaudit db upgrade"):
        SQLStorage(url, migrate=False)
    store = SQLStorage(url)
    assert runs == [SCHEMA_VERSION]
    assert store.schema_version() == SCHEMA_VERSION + 1
    store.close()
    SQLStorage(url).close()
    assert runs == [SCHEMA_VERSION]  # not run again


def test_unreachable_server_is_unavailable_naming_the_url_without_password() -> None:
    """A refused connection is one clear StorageUnavailableError: URL shown, password hidden."""
    with pytest.raises(StorageUnavailableError) as info:
        open_storage("postgresql+psycopg://bob:secretpw@127.0.0.1:1/audit?connect_timeout=2")
    message = str(info.value)
    assert "secretpw" not in message
    assert "127.0.0.1:1" in message
    assert "\n" not in message


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed the error says which extra to install."""
    real_import = builtins.__import__

    def no_psycopg(name: str, *args: object, **kwargs: object) -> object:
        if name == "psycopg" or name.startswith("psycopg."):
            raise ImportError("No module named 'psycopg'", name="psycopg")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(ConfigurationError, match=r"llmaudit-sdk\[postgres\]"):
        SQLStorage("postgresql://u@127.0.0.1:1/x")


def test_unwritable_sqlite_location_is_a_storage_error(tmp_path: Path) -> None:
    """A database path under a regular file fails at open, naming the path."""
    blocker = tmp_path / "f"
    blocker.write_text("x")
    with pytest.raises(StorageError, match=r"f/db/a\.db"):
        SQLStorage(f"sqlite:///{blocker}/db/a.db")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_child_does_not_reuse_the_parents_connections(tmp_path: Path) -> None:
    """After fork the child disposes the inherited pool and opens its own connection."""
    store = SQLStorage(f"sqlite:///{tmp_path / 'fork.db'}")
    store.write([AuditRecord(session_key="parent")])
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            store.write([AuditRecord(session_key="child")])
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(r.session_key or "" for r in store.read(Query())) == ["child", "parent"]
    store.close()


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("pg", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_records(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A store written by schema 1 (no parent_session_key or headers column, no chain table) is
    migrated step by step on open: old records read back, new ones store the new fields and the
    chain head, on every SQL dialect."""
    url = {"sqlite": f"sqlite:///{tmp_path / 'v1.db'}"}.get(kind) or request.getfixturevalue(
        "pg_url" if kind == "pg" else "mariadb_url"
    )
    store = SQLStorage(url)
    old = AuditRecord(session_key="from-v1")
    store.write([old])
    meta = _migrations.meta_table(store.table)
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with store._engine.begin() as conn:  # turn it into what schema 1 looked like
        conn.exec_driver_sql(f"ALTER TABLE {store.table.name} DROP COLUMN parent_session_key")
        conn.exec_driver_sql(f"ALTER TABLE {store.table.name} DROP COLUMN headers")
        for column in ("input_text", "output_text", "tool_calls"):
            conn.exec_driver_sql(f"ALTER TABLE {store.table.name} DROP COLUMN {column}")
        conn.exec_driver_sql(f"DROP TABLE {store.chain.name}")
        conn.execute(meta.update().values(value="1"))
    store.close()
    upgraded = SQLStorage(url)
    assert upgraded.schema_version() == SCHEMA_VERSION
    new = AuditRecord(
        session_key="inner",
        parent_session_key="outer",
        headers={"response": {"x-request-id": "req_1"}},
        writer_id="w1",
        seq=1,
        prev_hash="0" * 64,
        hash="a" * 64,
    )
    upgraded.write([new])
    got = {r.id: r for r in upgraded.read(Query())}
    assert got[old.id].parent_session_key is None
    assert got[old.id].headers == {}
    assert got[new.id].parent_session_key == "outer"
    assert got[new.id].headers == {"response": {"x-request-id": "req_1"}}
    states = upgraded.chain_states()
    assert states["w1"][:4] == (1, "a" * 64, None, None)
    assert list(states) == ["w1"]  # no legacy chain: migrations never seal (`Reader.seal_legacy` does)
    assert got[old.id].writer_id is None and got[old.id].seq is None
    report = llmaudit.open(upgraded).verify()
    assert report.unchained == [old.id] and not report.ok
    upgraded.close()


def test_sqlite_checkpoints_in_maintain_not_in_the_commit(sqlite_store: SQLStorage, tmp_path: Path) -> None:
    """A commit leaves the rows in the write-ahead log; `maintain()` (the writer's idle time) moves
    them into the database file, then waits `CHECKPOINT_INTERVAL_S` before the next checkpoint."""
    path = tmp_path / "sub" / "audit.db"
    sqlite_store.write([AuditRecord(session_key="first-marker-7c1f")])
    assert b"first-marker-7c1f" in (tmp_path / "sub" / "audit.db-wal").read_bytes()
    assert b"first-marker-7c1f" not in path.read_bytes()
    sqlite_store.maintain()
    assert b"first-marker-7c1f" in path.read_bytes()

    sqlite_store.write([AuditRecord(session_key="second-marker-90ab")])
    sqlite_store.maintain()  # still inside the interval set by the first checkpoint
    assert b"second-marker-90ab" not in path.read_bytes()
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    sqlite_store._next_checkpoint = 0.0
    sqlite_store.maintain()
    assert b"second-marker-90ab" in path.read_bytes()
    assert [r.session_key for r in sqlite_store.read()] == ["first-marker-7c1f", "second-marker-90ab"]


def test_the_background_writer_checkpoints_sqlite_once_its_queue_is_empty(tmp_path: Path) -> None:
    """After a flush the records are committed (in the log), and the writer's idle time moves them
    into the database file without anyone asking."""
    auditor = llmaudit.Auditor(f"sqlite:///{tmp_path / 'a.db'}", spool_dir=tmp_path / "spool")
    try:
        auditor.submit(AuditRecord(session_key="idle-marker-55e2"))
        assert auditor.flush(10)
        deadline = time.monotonic() + 10
        while b"idle-marker-55e2" not in (tmp_path / "a.db").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"idle-marker-55e2" in (tmp_path / "a.db").read_bytes()
    finally:
        auditor.close()


def test_memory_and_jsonl_storages_need_no_maintenance(tmp_path: Path) -> None:
    """The writer only calls ``maintain`` where a storage has it (plug-ins need not)."""
    auditor = llmaudit.Auditor(f"jsonl://{tmp_path / 'log'}", spool_dir=tmp_path / "spool")
    try:
        assert not hasattr(auditor.storage, "maintain")
        auditor.submit(AuditRecord(session_key="k"))
        assert auditor.flush(10)
        assert auditor.stats().written == 1
    finally:
        auditor.close()


@pytest.mark.parametrize(
    "created",
    [
        datetime(2026, 11, 24, 13, 55, 16, 123, tzinfo=timezone.utc),
        datetime(2026, 11, 24, 13, 55, 16, tzinfo=timezone.utc),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(0))),
        datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_sqlite_rows_hold_what_sqlalchemy_itself_would_bind(
    sqlite_store: SQLStorage, created: datetime
) -> None:
    """The insert's own parameter building (timestamps cut from the canonical one, empty containers
    as constants) gives exactly the column values of SQLAlchemy's bind processing and `dumps`."""
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    dialect = sqlite_store._engine.dialect
    records = [
        AuditRecord(created_at=created),
        AuditRecord(
            created_at=created, tags=("a", "b"), metadata={"k": [1]}, notes=("n",), headers={"x": {}}
        ),
    ]
    for record in records:
        params = dict(zip(FIELDS, sqlite_store._to_params(record), strict=True))
        for name in FIELDS:
            value = getattr(record, name)
            if name in ("tags", "metadata", "headers", "request", "response", "notes"):
                expected = None if value is None else dumps(value).decode()
            elif isinstance(value, bool):
                expected = value
            else:
                process = sqlite_store.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                expected = value if process is None else process(value)
            assert params[name] == expected, name
