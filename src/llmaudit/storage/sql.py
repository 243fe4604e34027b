"""SQL storage through SQLAlchemy 2 Core: SQLite (embedded default), PostgreSQL, MySQL/MariaDB.

One table (``llmaudit_records`` unless ``?table=`` says otherwise) with a column per record field:
indexed text columns for everything people filter on, JSON columns for the payloads, and a
``{table}_meta`` table holding the schema version (see ``_migrations.py``). Inserts are batched in one
transaction and idempotent on ``id``: ``ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite,
``ON DUPLICATE KEY UPDATE id = id`` on MySQL (never ``INSERT IGNORE``, which would also silently
truncate bad data). SQL is only ever built from SQLAlchemy constructs with bound parameters.

Payload columns hold the canonical JSON text exactly. On PostgreSQL that means ``json``, not ``jsonb``:
``jsonb`` rewrites numbers (``1e16`` comes back as the integer ``10000000000000000``) and rejects
``\\u0000``, which would break the exact round trip that the tamper-evident hash chain depends on;
``json`` keeps the text and still supports the JSON operators. On MariaDB the table is utf8mb4 with a
binary collation, so session keys compare exactly (``"ABC" != "abc"``) and emoji fit.

Driver errors are translated here: connection failures become `StorageUnavailableError` (the writer
retries and spills), refused data becomes `StorageError`; both name the URL without its password.
"""

from __future__ import annotations

import contextlib
import operator
import os
import random
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url

from .._errors import ConfigurationError, StorageError, StorageNotFoundError, StorageUnavailableError
from ..integrity.chain import ChainState, RegistryEntry, new_state, state_mac
from ..read.summary import SessionSummary, StatsRow, nearest_rank, round_cost
from ..record.codec import FIELDS, dumps, dumps_known, format_timestamp, loads, record_from_dict
from ..record.model import AGGREGATE_SOURCE, FUNCTION_SOURCE, KINDS, STRING_LIMITS, AuditRecord
from . import _migrations
from ._base import (
    ProblemHandler,
    Query,
    batch_heads,
    redact_url,
    registry_additions,
    sealed_head,
    warn_problem,
)
from ._files import make_private_directory

__all__ = ["DEFAULT_TABLE", "SQLStorage"]

DEFAULT_TABLE = "llmaudit_records"
#: SQLite: how often the writer's idle time is spent moving the write-ahead log into the database.
CHECKPOINT_INTERVAL_S = 0.5
#: SQLite: the log size (4 KiB pages) at which a commit checkpoints anyway, should the writer never idle.
WAL_AUTOCHECKPOINT_PAGES = 4000
#: SQLite, after an erasure: how many truncating checkpoints to try, each waiting this long for readers.
ERASE_CHECKPOINT_ATTEMPTS = 3
ERASE_CHECKPOINT_WAIT_MS = 1000

#: Where a server database keeps erased text that llmaudit cannot reach (see SECURITY.md).
_RESIDUAL_COPIES = {
    "postgresql": (
        "PostgreSQL keeps the erased text in its write-ahead log (pg_wal) until those segments are "
        "recycled, and in any WAL archive, base backup and replica: expire or rebuild them (SECURITY.md)"
    ),
    "mysql": (
        "MariaDB/MySQL keeps the erased text in its binary log, redo and undo logs until they are purged "
        "or overwritten, and in any backup and replica: purge or rebuild them (SECURITY.md)"
    ),
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,50}$")
_DRIVERS = {"postgresql": "psycopg", "postgres": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_JSON_FIELDS = ("tags", "metadata", "headers", "request", "response", "notes", "tool_calls")
_FLOAT_FIELDS = ("duration_ms", "ttft_ms", "cost_usd")
_BIG_INT_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "seq")
_INT_FIELDS = ("schema_version", "status_code", "attempt")
_BOOL_FIELDS = ("is_stream", "incomplete", "is_aggregation")
_TEXT_FIELDS = ("url", "error")
#: The conversation's flat text: up to 32,000 characters, longer once redaction markers are in, so
#: more than MySQL's TEXT (64 KiB) holds in utf8mb4.
_LONG_TEXT_FIELDS = ("input_text", "output_text")
_INDEXED = ("session_key", "client", "model", "created_at", "user", "parent_id")
_SUMMED = ("input_tokens", "output_tokens", "cost_usd", "status_code", "error")
# ``source`` tells a call from a function record (`_kinds`); the names changed with it, so that an
# older database gets the new indexes on open (`_migrations.refresh_covering_indexes`)
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


def _json_param(value: Any) -> str | None:
    if value is None:
        return None
    if not value and type(value) in (tuple, dict):  # no tags, no notes, no metadata: most records
        return "[]" if type(value) is tuple else "{}"
    return dumps_known(value).decode()


def _sqlite_timestamp(process: Any) -> Any:
    """SQLAlchemy's SQLite DATETIME text (``2026-11-24 13:55:16.000123``), cut from the canonical
    timestamp the chain has just formatted for the same record (`format_timestamp` remembers it)
    instead of being formatted again field by field; anything unusual goes to SQLAlchemy's own."""

    def to_text(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is timezone.utc and value.year >= 1000:
            text = format_timestamp(value)
            return f"{text[:10]} {text[11:26]}"
        return process(value)

    return to_text


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
    if name in _JSON_FIELDS:
        return sa.Column(name, _json_type())
    if name in _FLOAT_FIELDS:
        return sa.Column(name, sa.Double())
    if name in _BIG_INT_FIELDS:
        return sa.Column(name, sa.BigInteger())
    if name in _INT_FIELDS:
        return sa.Column(name, sa.Integer())
    if name in _BOOL_FIELDS:
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


def _normalise_url(url: str) -> tuple[URL, str]:
    """SQLAlchemy URL with our default drivers, and the table named by ``?table=``."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError with a terse message
        raise ConfigurationError(f"invalid SQL storage URL: {exc}") from None
    backend, _, driver = parsed.drivername.partition("+")
    backend = "postgresql" if backend == "postgres" else backend
    driver = driver or _DRIVERS.get(backend, "")
    table = parsed.query.get("table", DEFAULT_TABLE)
    if not isinstance(table, str) or not _IDENTIFIER.match(table):
        raise ConfigurationError(f"table name {table!r} must be a plain identifier (letters, digits, _)")
    if backend == "sqlite" and not parsed.database:
        # SQLAlchemy (and SQLite) would open a private in-memory database that vanishes with the
        # connection: every record "written" there is lost, every read finds nothing
        raise ConfigurationError(
            f"SQLite URL {url!r} names no database file: use sqlite:///path/to/audit.db "
            "(sqlite:////abs/path for an absolute path), or memory:// for a store that lives in memory"
        )
    parsed = parsed.set(drivername=f"{backend}+{driver}" if driver else backend)
    return parsed.difference_update_query(["table"]), table


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


class SQLStorage:
    """Records in one SQL table; see the module docstring.

    Args:
        url: any SQLAlchemy URL of SQLite, PostgreSQL or MySQL/MariaDB, optionally with ``?table=``.
        migrate: bring an older schema up to date on open (else raise, asking for ``llmaudit db upgrade``).
        create: create the SQLite file (and its directory) and the tables when they do not exist.
            ``False`` (the read side) opens an existing store only: no file or no llmaudit table
            raises `StorageNotFoundError`, and nothing is created.

    Raises:
        ConfigurationError: the URL is malformed or the driver is not installed.
        StorageUnavailableError: the database cannot be reached.
        StorageNotFoundError: *create* is False and the database or its llmaudit table does not exist.
        StorageError: the database refused to create or check the schema.
    """

    def __init__(self, url: str, *, migrate: bool = True, create: bool = True) -> None:
        sa_url, table = _normalise_url(url)
        self.url = redact_url(sa_url.render_as_string(hide_password=True))  # ?password= too
        self._table_name = table
        if not create:
            _require_sqlite_file(sa_url, self.url)
        self._engine = self._create_engine(sa_url, create=create)
        self._pid = os.getpid()
        self.table = build_table(sa.MetaData(), table)
        self.chain = _migrations.chain_table(self.table)
        self.registry_table = _migrations.registry_table(self.table)
        #: The chain's HMAC key for heads, checkpoints and the registry (see ``RegistryStore``).
        self.chain_key: bytes | None = None
        self._registered: set[str] = set()  # writers known to be in the registry already
        self._insert = self._idempotent_insert()
        self._raise_head = self._head_upsert()
        self._insert_sql, self._to_params = self._compile_insert()
        self._is_sqlite = sa_url.get_backend_name() == "sqlite"
        self._unchecked = False  # rows committed to SQLite's write-ahead log since the last checkpoint
        self._next_checkpoint = 0.0
        #: What the last `erase` or `delete` could not remove from the database's files (SQLite: a
        #: checkpoint kept busy by another connection); empty when it removed everything it can reach.
        self.erase_caveats: tuple[str, ...] = ()
        #: Copies of erased text the server keeps beyond llmaudit's reach, whatever it does.
        backend = sa_url.get_backend_name()
        note = _RESIDUAL_COPIES.get("mysql" if backend == "mariadb" else backend)
        self.residual_copies: tuple[str, ...] = (note,) if note else ()
        try:
            with self._translated("open"):
                _migrations.prepare(self._engine, self.table, migrate=migrate, create=create)
        except _migrations.NoSchemaError:
            self._engine.dispose()
            raise StorageNotFoundError(
                f"no llmaudit store at {self.url}: the database has no table {table!r} "
                "(nothing was ever recorded there; check the URL and its ?table=)",
                url=self.url,
            ) from None

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> SQLStorage:
        return cls(url, create=create)

    def _create_engine(self, url: URL, *, create: bool = True) -> Engine:
        options: dict[str, Any] = {"json_serializer": lambda v: dumps(v).decode(), "json_deserializer": loads}
        if url.get_backend_name() == "sqlite" and create:
            _prepare_sqlite_file(url)
        else:
            options["pool_pre_ping"] = True
        connect_args: dict[str, Any] = {}
        if url.get_driver_name() == "psycopg" and "prepare_threshold" not in url.query:
            # Prepare the insert on first use: unprepared, psycopg re-parses it for every row of the
            # first five batches, each ten times slower (?prepare_threshold=5 restores psycopg's
            # default, e.g. behind a connection pooler without prepared-statement support).
            connect_args["prepare_threshold"] = 0
        if url.get_driver_name() == "psycopg":
            # libpq waits forever for a server that accepts the connection and never answers, and for
            # a peer that vanished without closing: the writer would hang instead of spilling. Bound
            # both (each overridable in the URL's query string).
            defaults = {
                "connect_timeout": 10,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
            }
            defaults |= {"keepalives_count": 3, "tcp_user_timeout": 30_000}
            connect_args.update({k: v for k, v in defaults.items() if k not in url.query})
        if connect_args:
            options["connect_args"] = connect_args
        try:
            engine = sa.create_engine(url, **options)
        except ImportError as exc:
            extra = _EXTRAS.get(url.get_backend_name(), "")
            hint = f": pip install 'llmaudit-sdk[{extra}]'" if extra else ""
            raise ConfigurationError(
                f"the driver for {self.url} is not installed ({exc.name}){hint}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - e.g. an unknown dialect: one clear line
            raise ConfigurationError(f"cannot use SQL storage {self.url}: {exc}") from None
        if url.get_backend_name() == "sqlite":
            # WAL is a property of the file, set by whoever created it: a reader (create=False)
            # does not convert a file it merely opens (an empty or foreign file stays as it is)
            sa.event.listen(engine, "connect", _sqlite_pragmas if create else _sqlite_read_pragmas)
        return engine

    def _idempotent_insert(self) -> Any:
        name = self._engine.dialect.name
        if name == "postgresql":
            return postgresql.insert(self.table).on_conflict_do_nothing(index_elements=["id"])
        if name == "sqlite":
            return sqlite.insert(self.table).on_conflict_do_nothing(index_elements=["id"])
        if name in ("mysql", "mariadb"):
            stmt = mysql.insert(self.table)
            return stmt.on_duplicate_key_update(id=stmt.inserted.id)
        return self.table.insert()  # another dialect: duplicates raise IntegrityError

    def _head_upsert(self) -> Any:
        """Insert a writer's head, or raise it, never lower it (a replayed spool brings old records)."""
        c, name = self.chain.c, self._engine.dialect.name
        if name in ("postgresql", "sqlite"):
            insert = (postgresql if name == "postgresql" else sqlite).insert(self.chain)
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
            stmt = mysql.insert(self.chain)
            higher = stmt.inserted.head_seq > c.head_seq
            return stmt.on_duplicate_key_update(  # in this order: the hash is chosen before seq moves
                [
                    ("head_hash", sa.case((higher, stmt.inserted.head_hash), else_=c.head_hash)),
                    ("head_mac", sa.case((higher, stmt.inserted.head_mac), else_=c.head_mac)),
                    ("head_seq", sa.case((higher, stmt.inserted.head_seq), else_=c.head_seq)),
                ]
            )
        return None  # another dialect: heads are kept with a read-then-write in `_raise_heads`

    def _raise_heads(self, conn: sa.Connection, heads: Mapping[str, tuple[int, str]]) -> None:
        if not heads:
            return
        key = self.chain_key
        rows = [
            {"writer_id": w, "head_seq": seq, "head_hash": h, "head_mac": state_mac("head", w, seq, h, key)}
            for w, (seq, h) in heads.items()
        ]
        if self._raise_head is not None:
            conn.execute(self._raise_head, rows)
            return
        c = self.chain.c
        for row in rows:
            known = conn.execute(sa.select(c.head_seq).where(c.writer_id == row["writer_id"])).scalar()
            if known is None:
                conn.execute(self.chain.insert(), row)
            elif known < row["head_seq"]:
                conn.execute(self.chain.update().where(c.writer_id == row["writer_id"]).values(**row))

    def _compile_insert(self) -> tuple[str, Any]:
        """The insert as driver SQL plus a row converter applying each column's bind processing.

        Batches go straight to the driver's ``executemany``: SQLAlchemy's per-row parameter
        construction cost more than the database itself (measured with benchmarks/bench_writer.py).
        """
        dialect = self._engine.dialect
        compiled = self._insert.compile(dialect=dialect, column_keys=list(FIELDS))
        names = tuple(compiled.positiontup or ()) if compiled.positional else FIELDS
        converters = []
        for index, name in enumerate(names):
            if name in _JSON_FIELDS:  # every dialect takes the canonical JSON text as a string
                converters.append((index, _json_param))
            elif name not in _BOOL_FIELDS:  # every driver here takes Python booleans as they are
                fn = self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                if fn is not None and name == "created_at" and dialect.name == "sqlite":
                    fn = _sqlite_timestamp(fn)
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

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Driver errors become ours, naming the URL without password; forked children reconnect."""
        if os.getpid() != self._pid:  # forked: never share the parent's pooled connections
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        try:
            yield
        except (StorageError, ConfigurationError):
            raise
        except sa.exc.SQLAlchemyError as exc:
            kind = StorageUnavailableError if _is_unavailable(exc) else StorageError
            raise kind(f"{self.url}: cannot {action}: {_reason(exc)}") from exc
        except OSError as exc:
            raise StorageUnavailableError(f"{self.url}: cannot {action}: {exc}") from exc

    # -- the protocol ---------------------------------------------------------------------------

    def write(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        rows = [self._to_params(r) for r in records]
        heads = batch_heads(records)
        new = {w: head for w, head in heads.items() if w not in self._registered}
        with self._translated("write"), self._engine.begin() as conn:
            conn.exec_driver_sql(self._insert_sql, rows)
            self._raise_heads(conn, heads)
            if new:
                self._register(conn, "writer", new)
        self._registered.update(new)
        self._unchecked = self._is_sqlite

    def _register(
        self, conn: sa.Connection, kind: str, items: Mapping[str, tuple[int, str]], detail: Any = None
    ) -> None:
        """Append registry entries (a ``writer`` entry only for writers not listed yet). The schema
        row of the meta table is locked first, so concurrent appends from other processes queue up
        behind this transaction and every entry links to the one before it."""
        meta = _migrations.meta_table(self.table)
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=meta.c.value))
        r = self.registry_table.c
        if kind == "writer":
            listed = conn.execute(
                sa.select(r.writer_id).where(
                    r.writer_id.in_(list(items)), r.kind.in_(("writer", "seal-legacy"))
                )
            )
            known = set(listed.scalars())
            items = {w: head for w, head in items.items() if w not in known}
            if not items:
                return
        last = conn.execute(
            sa.select(self.registry_table).order_by(r.n.desc()).limit(1).with_for_update()
        ).first()
        tail = None if last is None else RegistryEntry(*last)
        added = registry_additions(tail, kind, items, self.chain_key, detail)
        conn.execute(self.registry_table.insert(), [entry._asdict() for entry in added])

    def maintain(self) -> None:
        """Housekeeping for the writer to run when its queue is empty. On SQLite: copy the write-ahead
        log into the database (a passive checkpoint, at most every `CHECKPOINT_INTERVAL_S`), which
        SQLite would otherwise do inside a commit every 1,000 pages, waiting for two fsyncs there:
        a ``flush()`` or a batch would pay for it. Other databases need nothing."""
        if not self._unchecked or time.monotonic() < self._next_checkpoint:
            return
        self._unchecked = False
        self._next_checkpoint = time.monotonic() + CHECKPOINT_INTERVAL_S
        with self._translated("checkpoint"), self._engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def chain_states(self) -> dict[str, ChainState]:
        c = self.chain.c
        columns = (c.head_seq, c.head_hash, c.base_seq, c.base_hash, c.head_mac, c.base_mac)
        with self._translated("read the chain state"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(c.writer_id, *columns))
            return {row[0]: ChainState(*row[1:]) for row in rows}

    def registry(self) -> list[RegistryEntry]:
        with self._translated("read the chain registry"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(self.registry_table).order_by(self.registry_table.c.n))
            return [RegistryEntry(*row) for row in rows]

    def seal_legacy(self, records: Sequence[AuditRecord], detail: Mapping[str, Any]) -> None:
        if not records:
            return
        t = self.table
        bind = {"writer_id": "w", "seq": "s", "prev_hash": "p", "hash": "h"}
        update = (
            t.update()
            .where(t.c.id == sa.bindparam("record_id"), t.c.writer_id.is_(None))
            .values({name: sa.bindparam(key) for name, key in bind.items()})
        )
        params = [
            {key: getattr(r, name) for name, key in bind.items()} | {"record_id": r.id} for r in records
        ]
        writer, seq, digest = sealed_head(records)
        state = new_state(writer, seq, digest, self.chain_key)
        with self._translated("seal legacy records"), self._engine.begin() as conn:
            changed = conn.execute(update, params).rowcount
            if changed is not None and changed not in (-1, len(records)):
                raise StorageError(f"{self.url}: records changed while being sealed; nothing was sealed")
            head = {"writer_id": writer, **state._asdict()}
            conn.execute(self.chain.insert().values(head))
            self._register(conn, "seal-legacy", {writer: (seq, digest)}, detail)

    def erase(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        """Overwrite payloads, then make the database drop the old text from its files: SQLite
        with ``secure_delete`` and a truncating WAL checkpoint, PostgreSQL with ``VACUUM FULL``,
        MariaDB with ``OPTIMIZE TABLE`` (both rewrite the table; erasure is rare)."""
        t = self.table
        changed = 0
        with self._translated("erase"), self._engine.begin() as conn:
            for record_id, fields in payloads.items():
                update = t.update().where(t.c.id == record_id).values(**fields)
                changed += conn.execute(update).rowcount or 0
        self.erase_caveats = self._compact()
        return changed

    def delete(self, ids: Sequence[str], checkpoints: Mapping[str, tuple[int, str]]) -> int:
        t, c = self.table, self.chain.c
        removed = 0
        with self._translated("delete"), self._engine.begin() as conn:
            for start in range(0, len(ids), 500):
                removed += conn.execute(t.delete().where(t.c.id.in_(ids[start : start + 500]))).rowcount or 0
            key = self.chain_key
            for writer, (seq, digest) in checkpoints.items():
                values = {
                    "base_seq": seq,
                    "base_hash": digest,
                    "base_mac": state_mac("checkpoint", writer, seq, digest, key),
                }
                updated = conn.execute(self.chain.update().where(c.writer_id == writer).values(**values))
                if not updated.rowcount:
                    head = new_state(writer, seq, digest, key)
                    conn.execute(
                        self.chain.insert().values(
                            writer_id=writer, head_seq=seq, head_hash=digest, head_mac=head.head_mac, **values
                        )
                    )
            if checkpoints:
                self._register(conn, "prune", checkpoints)
        if ids:
            self.erase_caveats = self._compact()
        return removed

    def _compact(self) -> tuple[str, ...]:
        """Make the database drop old text from its files; returns what it could not make sure of."""
        name = self._engine.dialect.name
        quoted = self._engine.dialect.identifier_preparer.format_table(self.table)
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if name == "sqlite":
                return self._truncate_wal(conn)
            if name == "postgresql":
                conn.exec_driver_sql(f"VACUUM FULL {quoted}")
            elif name in ("mysql", "mariadb"):
                conn.exec_driver_sql(f"OPTIMIZE TABLE {quoted}").fetchall()
        return ()

    def _truncate_wal(self, conn: sa.Connection) -> tuple[str, ...]:
        """Copy the write-ahead log into the database file and truncate it, so that neither file holds
        the old text (``secure_delete`` zeroes freed space). SQLite answers busy, without finishing,
        while another connection reads an older snapshot: retry a few times, then say so."""
        conn.exec_driver_sql(f"PRAGMA busy_timeout={ERASE_CHECKPOINT_WAIT_MS}")
        try:
            for _ in range(ERASE_CHECKPOINT_ATTEMPTS):
                busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                if not busy:
                    return ()
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        database = self._engine.url.database
        return (
            f"another connection to {database} kept a read transaction open, so SQLite could not finish "
            f"its checkpoint ({done} of {log} log pages copied, {ERASE_CHECKPOINT_ATTEMPTS} tries): the "
            f"erased text may remain in {database} and {database}-wal. Close the other readers (a long "
            f"query, `llmaudit ui`, a stuck process) and run forget again with the same selector",
        )

    def read(
        self, query: Query = Query(), *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        report = on_problem or warn_problem
        with (
            self._translated("read"),
            self._engine.connect() as conn,
            # closed with the connection when the caller stops early (`Reader.get`): psycopg warns
            # of a server-side cursor left open
            conn.execution_options(yield_per=1000).execute(self._select(query)) as result,
        ):
            for row in result:
                data = dict(row._mapping)
                try:
                    record = record_from_dict(data)
                except (ValueError, TypeError) as exc:
                    report(f"{self.url}: record {data.get('id')}: {exc}")
                    continue
                yield record

    def _where(self, query: Query) -> list[Any]:
        t = self.table
        conditions = []
        for name in ("session_key", "user", "client", "provider", "model", "source"):
            value = getattr(query, name)
            if value is not None:
                conditions.append(t.c[name] == value)
        if query.ids is not None:
            conditions.append(t.c.id.in_(query.ids))
        if query.since is not None:
            conditions.append(t.c.created_at >= query.since)
        if query.until is not None:
            conditions.append(t.c.created_at < query.until)
        if query.errors_only:
            conditions.append(_is_error(t))
        if query.is_aggregation is not None:
            conditions.append(t.c.is_aggregation == query.is_aggregation)
        if query.kind is not None:
            kinds = _kinds(t)
            conditions.append(sa.or_(sa.false(), *(kinds[k] for k in dict.fromkeys(query.kind))))
        return conditions

    def _select(self, query: Query) -> Any:
        t = self.table
        stmt = sa.select(t).where(*self._where(query))
        order = (t.c.created_at, t.c.id) if query.order == "asc" else (t.c.created_at.desc(), t.c.id.desc())
        stmt = stmt.order_by(*order)
        return stmt if query.limit is None else stmt.limit(query.limit)

    # -- aggregates pushed down into the database (the reader falls back to Python elsewhere) ------

    def summarize_sessions(self, query: Query, limit: int | None) -> Iterator[SessionSummary]:
        """`Reader.sessions` in one GROUP BY: each kind counted apart, totals of the LLM calls."""
        t = self.table
        kinds = _kinds(t)
        call, aggregation = kinds["call"], kinds["aggregation"]
        # the span of the calls and function records; of the aggregation records when that is all
        first = sa.func.coalesce(
            sa.func.min(sa.case((~aggregation, t.c.created_at))), sa.func.min(t.c.created_at)
        )
        last = sa.func.coalesce(
            sa.func.max(sa.case((~aggregation, t.c.created_at))), sa.func.max(t.c.created_at)
        )
        stmt = (
            sa.select(
                t.c.session_key,
                sa.func.min(t.c.user),
                first,
                last,
                *(_count(kinds[k]) for k in KINDS),
                sa.func.sum(sa.case((call, t.c.input_tokens))),
                sa.func.sum(sa.case((call, t.c.output_tokens))),
                sa.func.sum(sa.case((call, t.c.cost_usd))),
                _count(sa.and_(call, _is_error(t))),
            )
            .where(t.c.session_key.is_not(None), *self._where(query))
            .group_by(t.c.session_key)
            .order_by(last.desc(), t.c.session_key.desc())
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        utc = UTCDateTime()
        with self._translated("summarise sessions"), self._engine.connect() as conn:
            for row in conn.execute(stmt):
                calls, functions, aggregations = (int(n or 0) for n in row[4:7])
                yield SessionSummary(
                    row[0],
                    row[1],
                    _as_utc(utc, row[2], conn.dialect),
                    _as_utc(utc, row[3], conn.dialect),
                    calls,
                    int(row[7] or 0),
                    int(row[8] or 0),
                    round_cost(None if row[9] is None else float(row[9])),
                    int(row[10] or 0),
                    functions=functions,
                    aggregations=aggregations,
                )

    def summarize(self, by: tuple[str, ...], query: Query) -> Iterator[StatsRow]:
        """`Reader.stats` in one GROUP BY computed by the database, latency percentiles included:
        nearest rank, which is PostgreSQL's ``percentile_disc``; on SQLite an aggregate function
        registered on each connection; elsewhere window functions (ranks in integer arithmetic)."""
        t = self.table
        keys = [self._group_column(name).label(f"g{i}") for i, name in enumerate(by)]
        where = self._where(query)
        dialect = self._engine.dialect.name
        extra: list[Any]
        if dialect == "postgresql":
            extra = [
                sa.func.percentile_disc(0.5).within_group(t.c.duration_ms),
                sa.func.percentile_disc(0.95).within_group(t.c.duration_ms),
            ]
        elif dialect == "sqlite":
            extra = [sa.func.llmaudit_percentiles(t.c.duration_ms)]
        else:
            extra = []
        kinds = _kinds(t)
        totals = sa.select(
            *keys,
            *(_count(kinds[k]) for k in KINDS),
            sa.func.sum(t.c.input_tokens),
            sa.func.sum(t.c.output_tokens),
            sa.func.sum(t.c.cost_usd),
            sa.func.sum(sa.case((_is_error(t), 1), else_=0)),
            *extra,
        ).where(*where)
        if keys:
            totals = totals.group_by(*keys)
        with self._translated("summarise"), self._engine.connect() as conn:
            windowed = self._windowed_percentiles(conn, by, where) if not extra else {}
            for row in conn.execute(totals):
                key = tuple(row[: len(by)])
                calls, functions, aggregations, inp, out, cost, errors = row[len(by) : len(by) + 7]
                if dialect == "postgresql":
                    p50, p95 = row[-2], row[-1]
                elif dialect == "sqlite":
                    p50, p95 = _split_percentiles(row[-1])
                else:
                    p50, p95 = windowed.get(key, (None, None))
                yield StatsRow(
                    dict(zip(by, key, strict=True)),
                    int(calls or 0),
                    int(inp or 0),
                    int(out or 0),
                    round_cost(None if cost is None else float(cost)),
                    None if p50 is None else float(p50),
                    None if p95 is None else float(p95),
                    int(errors or 0),
                    functions=int(functions or 0),
                    aggregations=int(aggregations or 0),
                )

    def _windowed_percentiles(
        self, conn: sa.Connection, by: tuple[str, ...], where: list[Any]
    ) -> dict[tuple[Any, ...], tuple[float | None, float | None]]:
        t = self.table
        keys = [self._group_column(name).label(f"g{i}") for i, name in enumerate(by)]
        parts = [self._group_column(name) for name in by]
        ranked = (
            sa.select(
                *keys,
                t.c.duration_ms,
                sa.func.row_number().over(partition_by=parts, order_by=t.c.duration_ms).label("rn"),
                sa.func.count(t.c.duration_ms).over(partition_by=parts).label("n"),
            )
            .where(t.c.duration_ms.is_not(None), *where)
            .subquery()
        )
        rn, n = ranked.c.rn, ranked.c.n
        p50, p95 = (n + 1) // 2, (n * 95 + 99) // 100
        picks = sa.select(
            *[ranked.c[f"g{i}"] for i in range(len(by))], ranked.c.duration_ms, rn, p50, p95
        ).where(sa.or_(rn == p50, rn == p95))
        found: dict[tuple[Any, ...], list[float | None]] = defaultdict(lambda: [None, None])
        for row in conn.execute(picks):
            key = tuple(row[: len(by)])
            value, rank, at50, at95 = float(row[len(by)]), row[-3], row[-2], row[-1]
            if rank == at50:
                found[key][0] = value
            if rank == at95:
                found[key][1] = value
        return {key: (v[0], v[1]) for key, v in found.items()}

    def _group_column(self, name: str) -> Any:
        if name != "day":
            return self.table.c[name]
        created = self.table.c.created_at
        dialect = self._engine.dialect.name
        if dialect == "sqlite":
            return sa.func.substr(created, 1, 10)
        if dialect == "postgresql":
            return sa.func.to_char(sa.func.timezone("UTC", created), "YYYY-MM-DD")
        return sa.func.date_format(created, "%Y-%m-%d")

    def schema_version(self) -> int | None:
        """The schema version stamped in the database."""
        with self._translated("read the schema version"):
            return _migrations.current_version(self._engine, self.table)

    def upgrade(self) -> int:
        """Apply pending migrations; returns the version reached (``llmaudit db upgrade``)."""
        with self._translated("upgrade"):
            return _migrations.prepare(self._engine, self.table, migrate=True)

    def close(self) -> None:
        self._engine.dispose()


class _Percentiles:
    """SQLite aggregate ``llmaudit_percentiles(x)``: the nearest-rank p50 and p95 of the non-null
    values, as the text ``"p50 p95"`` (``repr`` of each float, so they come back exactly)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> str | None:
        if not self.values:
            return None
        self.values.sort()
        return f"{nearest_rank(self.values, 0.5)!r} {nearest_rank(self.values, 0.95)!r}"


def _split_percentiles(text: str | None) -> tuple[float | None, float | None]:
    if not text:
        return None, None
    low, high = text.split()
    return float(low), float(high)


def _is_error(t: sa.Table) -> Any:
    return sa.or_(t.c.error.is_not(None), t.c.status_code >= 400)


def _kinds(t: sa.Table) -> dict[str, Any]:
    """`record_kind` in SQL: one condition per kind, true for exactly one of them on every row."""
    source = sa.func.coalesce(t.c.source, "")
    aggregation = sa.or_(t.c.is_aggregation == sa.true(), source == AGGREGATE_SOURCE)
    function = sa.and_(~aggregation, source == FUNCTION_SOURCE)
    call = sa.and_(~aggregation, source != FUNCTION_SOURCE)
    return {"call": call, "function": function, "aggregation": aggregation}


def _count(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _as_utc(kind: UTCDateTime, value: Any, dialect: sa.Dialect) -> datetime:
    """A timestamp from an aggregate: SQLite hands back text, the others a datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    result = kind.process_result_value(value, dialect)
    assert result is not None
    return result


def _prepare_sqlite_file(url: URL) -> None:
    """Create the database file 0600 (and its directory) before SQLite does it with the umask."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    # SQLite makes its -wal, -shm and -journal files at predictable names beside the database
    try:
        make_private_directory(path.parent, "directory")
    except StorageError as exc:
        raise StorageError(f"cannot use SQLite database {path}: {exc}") from exc
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StorageError(f"cannot create SQLite database {path}: {exc.strerror or exc}") from exc


def _require_sqlite_file(url: URL, shown: str) -> None:
    """The read side's check: an existing SQLite file, or `StorageNotFoundError` (nothing created)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # a URI filename: SQLite's own ?mode=ro decides
        return
    path = Path(database).expanduser()
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        if not path.parent.is_dir():
            problem = f"does not exist (nor does its directory {path.parent})"
        raise StorageNotFoundError(f"no llmaudit store at {shown}: {path} {problem}", url=shown)


SQLITE_BUSY_TIMEOUT_S = 30.0


def _enable_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another connection converts the file too.

    Two processes opening a new database at once both convert it: each holds a shared lock and
    wants an exclusive one, and SQLite answers one of them "database is locked" at once, without
    waiting in the busy handler (waiting could deadlock). Measured: 3 threads on a fresh file,
    114 failures in 300 tries; seen on CI with 4 processes starting on one SQLite file. The loser
    retries with a short random back-off and then finds the file in WAL mode already.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        else:
            return
        time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not cryptography
        delay = min(delay * 2, 0.1)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    _set_pragmas(dbapi_connection, wal=True)


def _sqlite_read_pragmas(dbapi_connection: Any, _record: Any) -> None:
    _set_pragmas(dbapi_connection, wal=False)


def _set_pragmas(dbapi_connection: Any, *, wal: bool) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if wal:
            _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")  # erased and pruned text is zeroed, not left in free pages
        # Checkpoints belong to the writer's idle time (`SQLStorage.maintain`); this is the backstop
        # for a writer that is never idle (16 MB of log).
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA cache_size=-32768")  # 32 MiB: index upkeep on a large log stays in memory
        dbapi_connection.create_aggregate("llmaudit_percentiles", 1, _Percentiles)
    finally:
        cursor.close()
