"""Schema version and migrations of the SQL tables (described in ``schema``).

``{table}_meta`` holds ``schema_version``. Migrations change the schema only: they must never write
records, chain fields, heads or registry entries, and never seal anything.
Opening a fresh database creates the tables and stamps the
current `SCHEMA_VERSION`; an older stamp is migrated step by step (``MIGRATIONS[n]`` takes version n to
n + 1, each in its own transaction, the stamp bumped with it); a newer stamp is refused, since this
llmaudit would misread it. Several processes opening a fresh database at once are fine: creation uses
``checkfirst`` and a lost race is retried. Runs at open time only, never on the writer's hot loop.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..._errors import StorageError
from .schema import chain_table, checkpoints_table, meta_table, registry_table

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "NoSchemaError",
    "chain_table",
    "current_version",
    "meta_table",
    "prepare",
    "refresh_covering_indexes",
    "registry_table",
]

#: The version of the SQL schema (tables and columns), stamped in ``{table}_meta``. Versions 1 to 3
#: matched the record format's (``record.model.SCHEMA_VERSION``); version 4 added the chain's MACs and
#: registry without changing a record, so the two numbers part here. Version 5 added the columns of
#: record schema 4 (the conversation's flat text). Version 6 added the signed checkpoints' table.
SCHEMA_VERSION = 6


class NoSchemaError(Exception):
    """`prepare` with ``create=False`` found no llmaudit tables (the caller says so, naming the URL)."""


def _add_column(conn: Connection, table: sa.Table, name: str) -> None:
    """``ALTER TABLE … ADD COLUMN`` for a column of the current table definition, quoted and typed
    for the connection's dialect."""
    column = table.c[name]
    quote = conn.dialect.identifier_preparer
    kind = column.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(
        f"ALTER TABLE {quote.format_table(table)} ADD COLUMN {quote.format_column(column)} {kind}"
    )


def _v1_to_v2(conn: Connection, table: sa.Table) -> None:
    _add_column(conn, table, "parent_session_key")


def _v2_to_v3(conn: Connection, table: sa.Table) -> None:
    """Headers, the chain table and the summaries' indexes. Records written before the chain existed
    stay unchained (verify reports them) until an operator seals them explicitly with
    ``llmaudit db seal-legacy``: a migration runs unattended at open time, and sealing whatever rows
    lack a chain would launder a row inserted behind llmaudit's back together with its
    ``schema_version`` lowered."""
    _add_column(conn, table, "headers")
    _create_chain_table(conn, table, authenticated=False)
    existing = {ix["name"] for ix in sa.inspect(conn).get_indexes(table.name)}
    for index in table.indexes:  # the covering indexes of the summaries (SQLite only: see schema.py)
        if index.name not in existing and index.name and index.name.endswith(("_stats", "_sessions")):
            index.create(conn)


def _create_chain_table(conn: Connection, table: sa.Table, *, authenticated: bool) -> None:
    """The chain table as version 3 made it (without the MAC columns), or as it is now."""
    chain = chain_table(table)
    if authenticated:
        chain.create(conn, checkfirst=True)
        return
    legacy = sa.Table(
        chain.name,
        sa.MetaData(),
        *(c._copy() for c in chain.columns if c.name not in _MAC_COLUMNS),
        **chain.dialect_kwargs,
    )
    legacy.create(conn, checkfirst=True)


def _v3_to_v4(conn: Connection, table: sa.Table) -> None:
    """MACs on heads and checkpoints, and the registry of writers and prunes. Heads already stored
    keep no MAC (no key is at hand here, and this must seal nothing): verify reports them as
    unauthenticated, and a writer that writes again MACs its head and registers itself then."""
    chain = chain_table(table)
    for name in _MAC_COLUMNS:
        _add_column(conn, chain, name)
    registry_table(table).create(conn, checkfirst=True)


_MAC_COLUMNS = ("head_mac", "base_mac")


def _v4_to_v5(conn: Connection, table: sa.Table) -> None:
    """The conversation's flat text (``input_text``, ``output_text``, ``tool_calls``). Rows already
    stored keep NULL there: they were sealed without these fields, and a NULL one enters no hash,
    so they verify as before; filling them in would rewrite sealed rows, which a migration never
    does. Columns already there are left alone: MySQL commits each ``ALTER TABLE`` at once, so a
    step that failed halfway is run again over what it added."""
    inspector = sa.inspect(conn)
    existing = {c["name"] for c in inspector.get_columns(table.name)}
    for name in ("input_text", "output_text", "tool_calls"):
        if name not in existing:
            _add_column(conn, table, name)
    indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
    for index in table.indexes:  # the full-text indexes (PostgreSQL and MariaDB only: see schema.py)
        if index.name not in indexes and index.name and index.name.endswith(("_text", "_fulltext")):
            index.create(conn)


def _add_checkpoints_table(conn: Connection, table: sa.Table) -> None:
    """The signed checkpoints' table (``{table}_checkpoints``); one already there is left alone."""
    checkpoints_table(table).create(conn, checkfirst=True)


#: ``MIGRATIONS[n](connection, records_table)`` upgrades a database from version n to n + 1.
MIGRATIONS: dict[int, Callable[[Connection, sa.Table], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _add_checkpoints_table,
}
_KEY = "schema_version"
_ATTEMPTS = 3


def current_version(engine: Engine, table: sa.Table) -> int | None:
    """The stamped schema version, or None when the database has no llmaudit tables yet."""
    meta = meta_table(table)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(meta.name):
            return None
        value = conn.execute(sa.select(meta.c.value).where(meta.c.key == _KEY)).scalar()
    return None if value is None else int(value)


def _create(engine: Engine, table: sa.Table) -> None:
    meta = meta_table(table)
    with engine.begin() as conn:
        tables = [table, meta, chain_table(table), registry_table(table), checkpoints_table(table)]
        table.metadata.create_all(conn, tables=tables, checkfirst=True)
        stamped = conn.execute(sa.select(meta.c.value).where(meta.c.key == _KEY)).scalar()
        if stamped is None:
            conn.execute(meta.insert().values(key=_KEY, value=str(SCHEMA_VERSION)))


def _migrate(engine: Engine, table: sa.Table, version: int) -> int:
    meta = meta_table(table)
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StorageError(f"no migration from schema version {version} to {version + 1}")
        with engine.begin() as conn:
            step(conn, table)
            conn.execute(meta.update().where(meta.c.key == _KEY).values(value=str(version + 1)))
        version += 1
    return version


def _create_or_read(engine: Engine, table: sa.Table, *, create: bool) -> int:
    for attempt in range(_ATTEMPTS):
        try:
            version = current_version(engine, table)
            if version is None and not create:
                raise NoSchemaError(table.name)
            if version is None:
                _create(engine, table)
                version = current_version(engine, table)
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError) as exc:
            # another process created it first (SQLite says so with an OperationalError)
            racing = not isinstance(exc, sa.exc.OperationalError) or "already exists" in str(exc)
            if not racing or attempt == _ATTEMPTS - 1:
                raise
        else:
            return SCHEMA_VERSION if version is None else version
    raise AssertionError("unreachable")


def prepare(engine: Engine, table: sa.Table, *, migrate: bool, create: bool = True) -> int:
    """Create (unless *create* is False) or check the schema; returns the version now in force.

    Raises:
        NoSchemaError: *create* is False and the database has no llmaudit tables.
        StorageError: the database is newer than this llmaudit, or older and *migrate* is False.
    """
    version = _create_or_read(engine, table, create=create)
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"database schema version {version} is newer than this llmaudit supports ({SCHEMA_VERSION}): "
            "upgrade llmaudit-sdk"
        )
    if version < SCHEMA_VERSION and not migrate:
        raise StorageError(
            f"database schema version {version} is older than {SCHEMA_VERSION}: run `llmaudit db upgrade`"
        )
    version = _migrate(engine, table, version)
    if engine.dialect.name == "sqlite":
        refresh_covering_indexes(engine, table)
    return version


#: Covering indexes of the summaries that an earlier llmaudit made (without ``source``).
_LEGACY_COVERING = ("stats", "sessions")


def refresh_covering_indexes(engine: Engine, table: sa.Table) -> None:
    """SQLite: create the summaries' covering indexes of the current table definition that the
    database lacks, and drop the ones they replace. Indexes only (no schema version): without
    them the summaries read whole rows (about ten times slower), so a database that cannot be
    written to (read-only file) is left as it is."""
    wanted = [ix for ix in table.indexes if ix.name and ix.name.endswith("_by_kind")]
    try:
        with engine.begin() as conn:
            existing = {ix["name"] for ix in sa.inspect(conn).get_indexes(table.name)}
            missing = [ix for ix in wanted if ix.name not in existing]
            legacy = [f"ix_{table.name}_{name}" for name in _LEGACY_COVERING]
            stale = [name for name in legacy if name in existing]
            if not missing and not stale:
                return
            quote = conn.dialect.identifier_preparer
            for index in missing:
                conn.exec_driver_sql(
                    f"CREATE INDEX IF NOT EXISTS {quote.quote(str(index.name))} ON "
                    f"{quote.format_table(table)} ({', '.join(quote.quote(c.name) for c in index.columns)})"
                )
            for name in stale:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {quote.quote(name)}")
    except sa.exc.OperationalError as exc:
        if "readonly" not in str(exc).replace("-", "").replace(" ", ""):
            raise
