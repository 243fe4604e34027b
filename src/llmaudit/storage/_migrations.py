"""Schema version and migrations of the SQL records table.

``{table}_meta`` holds ``schema_version``; ``{table}_chain`` each writer's chain head and checkpoint.
Opening a fresh database creates the tables and stamps the
current `SCHEMA_VERSION`; an older stamp is migrated step by step (``MIGRATIONS[n]`` takes version n to
n + 1, each in its own transaction, the stamp bumped with it); a newer stamp is refused, since this
llmaudit would misread it. Several processes opening a fresh database at once are fine: creation uses
``checkfirst`` and a lost race is retried. Runs at open time only, never on the writer's hot loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .._errors import StorageError
from .._record import SCHEMA_VERSION

__all__ = ["MIGRATIONS", "chain_table", "current_version", "meta_table", "prepare"]


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


def _seal_legacy(conn: Connection, table: sa.Table, batch: int = 1000) -> None:
    """Seal the records written before the hash chain existed into one chain of their own (writer
    ``legacy-…``, in the order they were made), keyed with ``LLMAUDIT_CHAIN_KEY`` as set when the
    upgrade runs. From then on `verify` tells them apart from records inserted behind llmaudit's back."""
    from .._chain import Chain, chain_key  # noqa: PLC0415 - only this migration needs them
    from .._codec import forget_encodings, record_from_dict  # noqa: PLC0415
    from .._record import new_id  # noqa: PLC0415

    chain = Chain(chain_key(os.environ.get("LLMAUDIT_CHAIN_KEY")), writer_id=f"legacy-{new_id()}")
    order = (table.c.created_at, table.c.id)
    ids = (
        conn.execute(sa.select(table.c.id).where(table.c.writer_id.is_(None)).order_by(*order))
        .scalars()
        .all()
    )
    bind = {"writer_id": "w", "seq": "s", "prev_hash": "p", "hash": "h"}
    update = (
        table.update()
        .where(table.c.id == sa.bindparam("record_id"))
        .values({name: sa.bindparam(key) for name, key in bind.items()})
    )
    last = None
    for start in range(0, len(ids), batch):  # a batch of rows at a time: a large log never sits in memory
        chunk = ids[start : start + batch]
        rows = conn.execute(sa.select(table).where(table.c.id.in_(chunk)).order_by(*order)).mappings()
        records = []
        for row in rows:
            try:
                records.append(record_from_dict(dict(row)))
            except (ValueError, TypeError):
                continue  # unreadable: stays unchained, and verify says so
        sealed = chain.seal(records)
        forget_encodings()
        if sealed:
            params = [
                {key: getattr(r, name) for name, key in bind.items()} | {"record_id": r.id} for r in sealed
            ]
            conn.execute(update, params)
            last = sealed[-1]
    if last is not None:
        head = {"writer_id": last.writer_id, "head_seq": last.seq, "head_hash": last.hash}
        conn.execute(chain_table(table).insert().values(head))


def _v2_to_v3(conn: Connection, table: sa.Table) -> None:
    _add_column(conn, table, "headers")
    chain_table(table).create(conn, checkfirst=True)
    _seal_legacy(conn, table)
    existing = {ix["name"] for ix in sa.inspect(conn).get_indexes(table.name)}
    for index in table.indexes:  # the covering indexes of the summaries (SQLite only: see sql.py)
        if index.name not in existing and index.name and index.name.endswith(("_stats", "_sessions")):
            index.create(conn)


#: ``MIGRATIONS[n](connection, records_table)`` upgrades a database from version n to n + 1.
MIGRATIONS: dict[int, Callable[[Connection, sa.Table], None]] = {1: _v1_to_v2, 2: _v2_to_v3}
_KEY = "schema_version"
_ATTEMPTS = 3


def meta_table(table: sa.Table) -> sa.Table:
    """The key/value table beside *table* (created in the same MetaData)."""
    name = f"{table.name}_meta"
    if name in table.metadata.tables:
        return table.metadata.tables[name]
    return sa.Table(
        name,
        table.metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )


def chain_table(table: sa.Table) -> sa.Table:
    """Each writer's chain head and prune checkpoint (see ``_chain.ChainState``)."""
    name = f"{table.name}_chain"
    if name in table.metadata.tables:
        return table.metadata.tables[name]
    return sa.Table(
        name,
        table.metadata,
        sa.Column("writer_id", sa.String(64), primary_key=True),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(128), nullable=False),
        sa.Column("base_seq", sa.BigInteger()),
        sa.Column("base_hash", sa.String(128)),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mariadb_charset="utf8mb4",
        mariadb_collate="utf8mb4_bin",
    )


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
        table.metadata.create_all(conn, tables=[table, meta, chain_table(table)], checkfirst=True)
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


def _create_or_read(engine: Engine, table: sa.Table) -> int:
    for attempt in range(_ATTEMPTS):
        try:
            version = current_version(engine, table)
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


def prepare(engine: Engine, table: sa.Table, *, migrate: bool) -> int:
    """Create or check the schema; returns the version now in force.

    Raises:
        StorageError: the database is newer than this llmaudit, or older and *migrate* is False.
    """
    version = _create_or_read(engine, table)
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"database schema version {version} is newer than this llmaudit supports ({SCHEMA_VERSION}): "
            "upgrade llmaudit-sdk"
        )
    if version < SCHEMA_VERSION and not migrate:
        raise StorageError(
            f"database schema version {version} is older than {SCHEMA_VERSION}: run `llmaudit db upgrade`"
        )
    return _migrate(engine, table, version)
