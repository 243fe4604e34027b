"""The SQL schema: the records table (a column per `AuditRecord` field, its indexes, its column
types) and the tables beside it: ``{table}_meta`` (the schema version), ``{table}_chain`` (each
writer's chain head and prune checkpoint with their MACs) and ``{table}_registry`` (the chain
registry, see ``integrity.chain``).

Payload columns hold the canonical JSON text exactly. On PostgreSQL that means ``json``, not ``jsonb``:
``jsonb`` rewrites numbers (``1e16`` comes back as the integer ``10000000000000000``) and rejects
``\\u0000``, which would break the exact round trip that the tamper-evident hash chain depends on;
``json`` keeps the text and still supports the JSON operators. On MariaDB the tables are utf8mb4 with a
binary collation, so session keys compare exactly (``"ABC" != "abc"``) and emoji fit.

This module only describes tables: it must not connect, execute or migrate (``migrations`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from ...record.codec import FIELDS, dumps, loads
from ...record.model import STRING_LIMITS

__all__ = [
    "BOOL_FIELDS",
    "DEFAULT_TABLE",
    "JSON_FIELDS",
    "JSONText",
    "UTCDateTime",
    "build_table",
    "chain_table",
    "meta_table",
    "registry_table",
]

DEFAULT_TABLE = "llmaudit_records"
JSON_FIELDS = ("tags", "metadata", "headers", "request", "response", "notes", "tool_calls")
_FLOAT_FIELDS = ("duration_ms", "ttft_ms", "cost_usd")
_BIG_INT_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "seq")
_INT_FIELDS = ("schema_version", "status_code", "attempt")
BOOL_FIELDS = ("is_stream", "incomplete", "is_aggregation")
_TEXT_FIELDS = ("url", "error")
#: The conversation's flat text: up to 32,000 characters, longer once redaction markers are in, so
#: more than MySQL's TEXT (64 KiB) holds in utf8mb4.
_LONG_TEXT_FIELDS = ("input_text", "output_text")
_INDEXED = ("session_key", "client", "model", "created_at", "user", "parent_id")
_SUMMED = ("input_tokens", "output_tokens", "cost_usd", "status_code", "error")
# ``source`` tells a call from a function record (`query.kinds`); the names changed with it, so that an
# older database gets the new indexes on open (`migrations.refresh_covering_indexes`)
_COVERING = {
    "stats_by_kind": (
        "client",
        "model",
        "is_aggregation",
        "source",
        "provider",
        "user",
        *_SUMMED,
        "duration_ms",
        "created_at",
    ),
    "sessions_by_kind": ("session_key", "is_aggregation", "source", "created_at", "user", *_SUMMED),
}
_COVERED_ON_SQLITE = ("client", "session_key")


def _on_dialects(names: frozenset[str], *, among: bool) -> Callable[..., bool]:
    """A ``ddl_if`` callable: the DDL runs on the dialects *names* (*among*) or on all others."""

    def check(*_: Any, dialect: sa.Dialect, **__: Any) -> bool:
        return (dialect.name in names) is among

    return check


_not_sqlite = _on_dialects(frozenset({"sqlite"}), among=False)
_mysql_family = _on_dialects(frozenset({"mysql", "mariadb"}), among=True)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None or dialect.name == "postgresql":
            return value
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class JSONText(sa.types.TypeDecorator[Any]):
    """Canonical JSON in a TEXT column: SQLite's JSON type has NUMERIC affinity, which would turn the
    text ``1.0`` into the integer 1; TEXT keeps exactly what was written."""

    impl = sa.Text()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else dumps(value).decode()

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> Any:
        return None if value is None else loads(value)


def _json_type() -> sa.types.TypeEngine[Any]:
    return (
        sa.JSON(none_as_null=True)
        .with_variant(postgresql.JSON(none_as_null=True), "postgresql")
        .with_variant(JSONText(), "sqlite")
    )


def _column(name: str) -> sa.Column[Any]:  # noqa: PLR0911 - one return per field family
    if name == "id":
        return sa.Column("id", sa.String(36), primary_key=True)
    if name == "created_at":
        return sa.Column(name, UTCDateTime(), nullable=False)
    if name in STRING_LIMITS:
        return sa.Column(name, sa.String(STRING_LIMITS[name]))
    if name in JSON_FIELDS:
        return sa.Column(name, _json_type())
    if name in _FLOAT_FIELDS:
        return sa.Column(name, sa.Double())
    if name in _BIG_INT_FIELDS:
        return sa.Column(name, sa.BigInteger())
    if name in _INT_FIELDS:
        return sa.Column(name, sa.Integer())
    if name in BOOL_FIELDS:
        return sa.Column(name, sa.Boolean(), nullable=False)
    if name in _TEXT_FIELDS:
        return sa.Column(name, sa.Text())
    if name in _LONG_TEXT_FIELDS:
        return sa.Column(name, sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"))
    raise AssertionError(f"AuditRecord field {name!r} has no column type")  # a new field needs a type


def build_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """The records table, one column per `AuditRecord` field."""
    table = sa.Table(
        name,
        metadata,
        *(_column(f) for f in FIELDS),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mariadb_charset="utf8mb4",
        mariadb_collate="utf8mb4_bin",
    )
    for field in _INDEXED:
        index = sa.Index(f"ix_{name}_{field}", table.c[field])
        if field in _COVERED_ON_SQLITE:  # there the covering indexes below start with this column
            index.ddl_if(callable_=_not_sqlite)
    sa.Index(f"ix_{name}_writer_seq", table.c.writer_id, table.c.seq)
    # SQLite reads whole rows (payloads included) to aggregate; these covering indexes let `stats` by
    # client/model/provider/user and `sessions` scan ~150 bytes a record instead (1M records: ~12 s
    # -> under 2 s, see benchmarks/bench_read.py). PostgreSQL aggregates fast enough without them.
    for index_name, columns in _COVERING.items():
        sa.Index(f"ix_{name}_{index_name}", *(table.c[c] for c in columns)).ddl_if(dialect="sqlite")
    _text_indexes(table, name)
    return table


def _text_indexes(table: sa.Table, name: str) -> None:
    """Full-text indexes over the conversation's flat text, where the database has them built in:
    PostgreSQL a GIN index on ``to_tsvector('simple', input_text || ' ' || output_text)`` (used by a
    query with that very expression and ``@@``), MariaDB/MySQL a FULLTEXT index (``MATCH (input_text,
    output_text) AGAINST (...)``). A B-tree cannot index text this long; SQLite has no built-in
    full-text index on a plain table (its FTS5 is a table of its own), so there ``LIKE`` scans."""
    c = table.c
    text = sa.func.coalesce(c.input_text, "") + " " + sa.func.coalesce(c.output_text, "")
    vector = sa.func.to_tsvector(sa.cast(sa.literal("simple"), postgresql.REGCONFIG), text)
    sa.Index(f"ix_{name}_text", vector, postgresql_using="gin").ddl_if(dialect="postgresql")
    sa.Index(
        f"ix_{name}_fulltext", c.input_text, c.output_text, mysql_prefix="FULLTEXT", mariadb_prefix="FULLTEXT"
    ).ddl_if(callable_=_mysql_family)


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
    """Each writer's chain head and prune checkpoint (see ``integrity.chain.ChainState``)."""
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
        sa.Column("head_mac", sa.String(128)),
        sa.Column("base_mac", sa.String(128)),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mariadb_charset="utf8mb4",
        mariadb_collate="utf8mb4_bin",
    )


def registry_table(table: sa.Table) -> sa.Table:
    """The chain registry beside *table*: one row per ``integrity.chain.RegistryEntry``, never updated."""
    name = f"{table.name}_registry"
    if name in table.metadata.tables:
        return table.metadata.tables[name]
    return sa.Table(
        name,
        table.metadata,
        sa.Column("n", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("writer_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev", sa.String(128), nullable=False),
        sa.Column("mac", sa.String(128), nullable=False),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mariadb_charset="utf8mb4",
        mariadb_collate="utf8mb4_bin",
    )


def checkpoints_table(table: sa.Table) -> sa.Table:
    """The signed checkpoints beside *table* (``integrity.checkpoints.Checkpoint``): one row per
    ``(writer_id, n)``, the checkpoint's JSON in ``body`` (what is signed is in there too), never updated."""
    name = f"{table.name}_checkpoints"
    if name in table.metadata.tables:
        return table.metadata.tables[name]
    return sa.Table(
        name,
        table.metadata,
        sa.Column("writer_id", sa.String(64), primary_key=True),
        sa.Column("n", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("body", sa.Text(), nullable=False),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mariadb_charset="utf8mb4",
        mariadb_collate="utf8mb4_bin",
    )
