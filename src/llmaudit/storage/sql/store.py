"""The SQL store: `SQLStorage` writes, reads and maintains records in one table through SQLAlchemy 2 Core,
on SQLite (embedded default), PostgreSQL and MySQL/MariaDB.

One table (``llmaudit_records`` unless ``?table=`` says otherwise, see ``schema``) with a column per
record field. Inserts are batched in one transaction and idempotent on ``id``: ``ON CONFLICT DO
NOTHING`` on PostgreSQL and SQLite, ``ON DUPLICATE KEY UPDATE id = id`` on MySQL (never ``INSERT
IGNORE``, which would also silently truncate bad data); each writer's chain head is raised (never
lowered) and new writers registered in the same transaction. SQL is only ever built from SQLAlchemy
constructs with bound parameters.

Driver errors are translated here: connection failures become `StorageUnavailableError` (the writer
retries and spills), refused data becomes `StorageError`; both name the URL without its password.
This module must not build records, retry or spill (the writer does), nor describe the schema
(``schema``, ``migrations``), the summaries (``summaries``) or SQLite's pragmas (``sqlite``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..._errors import ConfigurationError, StorageError, StorageNotFoundError, StorageUnavailableError
from ...integrity.chain import ChainState, RegistryEntry, new_state, state_mac
from ...integrity.checkpoints import Checkpoint
from ...record.codec import dumps, loads, record_from_dict
from ...record.model import AuditRecord
from .._base import (
    ProblemHandler,
    Query,
    batch_heads,
    ordered_checkpoints,
    redact_url,
    registry_additions,
    sealed_head,
    unstored_checkpoints,
    warn_problem,
)
from .._summary import SessionSummary, StatsRow
from . import migrations, summaries
from . import sqlite as sqlite_file
from .engine import create_engine, is_unavailable, normalise_url, reason
from .query import select_records
from .schema import build_table, chain_table, checkpoints_table, meta_table, registry_table
from .statements import compiled_insert, head_upsert, idempotent_insert

__all__ = ["SQLStorage"]

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
        sa_url, table = normalise_url(url)
        self.url = redact_url(sa_url.render_as_string(hide_password=True))  # ?password= too
        self._table_name = table
        if not create:
            sqlite_file.require_file(sa_url, self.url)
        self._engine = create_engine(sa_url, self.url, create=create)
        self._pid = os.getpid()
        self.table = build_table(sa.MetaData(), table)
        self.chain = chain_table(self.table)
        self.registry_table = registry_table(self.table)
        self.checkpoints_table = checkpoints_table(self.table)
        #: The chain's HMAC key for heads, checkpoints and the registry (see ``RegistryStore``).
        self.chain_key: bytes | None = None
        self._registered: set[str] = set()  # writers known to be in the registry already
        dialect = self._engine.dialect
        self._raise_head = head_upsert(self.chain, dialect)
        self._insert_sql, self._to_params = compiled_insert(
            idempotent_insert(self.table, dialect), self.table, dialect
        )
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
                migrations.prepare(self._engine, self.table, migrate=migrate, create=create)
        except migrations.NoSchemaError:
            self._engine.dispose()
            raise StorageNotFoundError(
                f"no llmaudit store at {self.url}: the database has no table {table!r} "
                "(nothing was ever recorded there; check the URL and its ?table=)",
                url=self.url,
            ) from None

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> SQLStorage:
        return cls(url, create=create)

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
            kind = StorageUnavailableError if is_unavailable(exc) else StorageError
            raise kind(f"{self.url}: cannot {action}: {reason(exc)}") from exc
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
        meta = meta_table(self.table)
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
        self._next_checkpoint = time.monotonic() + sqlite_file.CHECKPOINT_INTERVAL_S
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

    def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        if not checkpoints:
            return
        t = self.checkpoints_table
        with self._translated("write checkpoints"), self._engine.begin() as conn:
            keys = {(c.writer_id, c.n) for c in checkpoints}
            writers = sorted({w for w, _ in keys})
            stored = conn.execute(sa.select(t.c.writer_id, t.c.n).where(t.c.writer_id.in_(writers)))
            known = {(row[0], row[1]) for row in stored}
            fresh = [c for c in unstored_checkpoints([], checkpoints) if (c.writer_id, c.n) not in known]
            if fresh:
                rows = [
                    {"writer_id": c.writer_id, "n": c.n, "body": dumps(c.to_json()).decode()} for c in fresh
                ]
                conn.execute(t.insert(), rows)

    def read_checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]:
        t = self.checkpoints_table
        query = sa.select(t.c.body).order_by(t.c.writer_id, t.c.n)
        if writer_id is not None:
            query = query.where(t.c.writer_id == writer_id)
        found = []
        with self._translated("read checkpoints"), self._engine.connect() as conn:
            for (body,) in conn.execute(query):
                try:
                    found.append(Checkpoint.from_json(loads(body)))
                except ValueError:
                    continue  # unreadable: verify reports the checkpoint missing (the witness has it)
        return ordered_checkpoints(found, writer_id)

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
                return sqlite_file.truncate_wal(conn, self._engine.url.database)
            if name == "postgresql":
                conn.exec_driver_sql(f"VACUUM FULL {quoted}")
            elif name in ("mysql", "mariadb"):
                conn.exec_driver_sql(f"OPTIMIZE TABLE {quoted}").fetchall()
        return ()

    def read(
        self, query: Query = Query(), *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        report = on_problem or warn_problem
        with (
            self._translated("read"),
            self._engine.connect() as conn,
            # closed with the connection when the caller stops early (`Reader.get`): psycopg warns
            # of a server-side cursor left open
            conn.execution_options(yield_per=1000).execute(select_records(self.table, query)) as result,
        ):
            for row in result:
                data = dict(row._mapping)
                try:
                    record = record_from_dict(data)
                except (ValueError, TypeError) as exc:
                    report(f"{self.url}: record {data.get('id')}: {exc}")
                    continue
                yield record

    # -- aggregates pushed down into the database (``SummaryStore``; see ``summaries``) ------------

    def summarize_sessions(self, query: Query, limit: int | None) -> Iterator[SessionSummary]:
        """`Reader.sessions` in one GROUP BY: each kind counted apart, totals of the LLM calls."""
        with self._translated("summarise sessions"), self._engine.connect() as conn:
            yield from summaries.session_summaries(conn, self.table, query, limit)

    def summarize(self, by: tuple[str, ...], query: Query) -> Iterator[StatsRow]:
        """`Reader.stats` in one GROUP BY computed by the database, latency percentiles included:
        nearest rank, which is PostgreSQL's ``percentile_disc``; on SQLite an aggregate function
        registered on each connection; elsewhere window functions (ranks in integer arithmetic)."""
        with self._translated("summarise"), self._engine.connect() as conn:
            yield from summaries.stats_rows(conn, self.table, by, query)

    def schema_version(self) -> int | None:
        """The schema version stamped in the database."""
        with self._translated("read the schema version"):
            return migrations.current_version(self._engine, self.table)

    def upgrade(self) -> int:
        """Apply pending migrations; returns the version reached (``llmaudit db upgrade``)."""
        with self._translated("upgrade"):
            return migrations.prepare(self._engine, self.table, migrate=True)

    def close(self) -> None:
        self._engine.dispose()
