"""The statements a write executes, built once per store: the idempotent insert of records, compiled
to driver SQL with a row converter (batches go straight to the driver's ``executemany``), and the
upsert that raises a writer's chain head and never lowers it, for each dialect.

Statement building only: nothing here connects or executes, and nothing decides what a failure means.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ...record.codec import FIELDS, dumps_known
from ...record.model import AuditRecord
from .schema import BOOL_FIELDS, JSON_FIELDS
from .sqlite import sqlite_timestamp

__all__ = ["compiled_insert", "head_upsert", "idempotent_insert"]


def _json_param(value: Any) -> str | None:
    if value is None:
        return None
    if not value and type(value) in (tuple, dict):  # no tags, no notes, no metadata: most records
        return "[]" if type(value) is tuple else "{}"
    return dumps_known(value).decode()


def idempotent_insert(table: sa.Table, dialect: sa.Dialect) -> Any:
    """The records insert that skips an id already stored (see the module docstring of ``store``)."""
    name = dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["id"])
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=["id"])
    if name in ("mysql", "mariadb"):
        stmt = mysql.insert(table)
        return stmt.on_duplicate_key_update(id=stmt.inserted.id)
    return table.insert()  # another dialect: duplicates raise IntegrityError


def head_upsert(chain: sa.Table, dialect: sa.Dialect) -> Any:
    """Insert a writer's head, or raise it, never lower it (a replayed spool brings old records)."""
    c, name = chain.c, dialect.name
    if name in ("postgresql", "sqlite"):
        insert = (postgresql if name == "postgresql" else sqlite).insert(chain)
        return insert.on_conflict_do_update(
            index_elements=["writer_id"],
            set_={
                "head_seq": insert.excluded.head_seq,
                "head_hash": insert.excluded.head_hash,
                "head_mac": insert.excluded.head_mac,
            },
            where=c.head_seq < insert.excluded.head_seq,
        )
    if name in ("mysql", "mariadb"):
        stmt = mysql.insert(chain)
        higher = stmt.inserted.head_seq > c.head_seq
        return stmt.on_duplicate_key_update(  # in this order: the hash is chosen before seq moves
            [
                ("head_hash", sa.case((higher, stmt.inserted.head_hash), else_=c.head_hash)),
                ("head_mac", sa.case((higher, stmt.inserted.head_mac), else_=c.head_mac)),
                ("head_seq", sa.case((higher, stmt.inserted.head_seq), else_=c.head_seq)),
            ]
        )
    return None  # another dialect: heads are kept with a read-then-write in `SQLStorage._raise_heads`


def compiled_insert(
    insert: Any, table: sa.Table, dialect: sa.Dialect
) -> tuple[str, Callable[[AuditRecord], Any]]:
    """The insert as driver SQL plus a row converter applying each column's bind processing.

    Batches go straight to the driver's ``executemany``: SQLAlchemy's per-row parameter
    construction cost more than the database itself (measured with benchmarks/bench_writer.py).
    """
    compiled = insert.compile(dialect=dialect, column_keys=list(FIELDS))
    names = tuple(compiled.positiontup or ()) if compiled.positional else FIELDS
    converters = []
    for index, name in enumerate(names):
        if name in JSON_FIELDS:  # every dialect takes the canonical JSON text as a string
            converters.append((index, _json_param))
        elif name not in BOOL_FIELDS:  # every driver here takes Python booleans as they are
            fn = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if fn is not None and name == "created_at" and dialect.name == "sqlite":
                fn = sqlite_timestamp(fn)
            if fn is not None:
                converters.append((index, fn))
    positional = compiled.positional
    fields_of = operator.attrgetter(*names)

    def to_params(record: AuditRecord) -> Any:
        values = list(fields_of(record))
        for index, fn in converters:
            values[index] = fn(values[index])
        return tuple(values) if positional else dict(zip(names, values, strict=True))

    return str(compiled), to_params
