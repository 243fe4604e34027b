"""What only SQLite needs: the database file created 0600 before SQLite makes it with the umask, the
read side's check that the file exists, the connection pragmas (WAL, busy timeout, ``secure_delete``,
checkpoint backstop), the truncating checkpoint after an erasure, the ``llmaudit_percentiles``
aggregate, and the fast text form of timestamps.

Connection-level settings only: this module must not build statements over the records table
(``store`` and ``summaries`` do) nor decide what a failure means for the records.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..._errors import StorageError, StorageNotFoundError
from ...record.codec import format_timestamp
from .._files import make_private_directory
from .._summary import nearest_rank

__all__ = [
    "CHECKPOINT_INTERVAL_S",
    "ERASE_CHECKPOINT_ATTEMPTS",
    "ERASE_CHECKPOINT_WAIT_MS",
    "SQLITE_BUSY_TIMEOUT_S",
    "WAL_AUTOCHECKPOINT_PAGES",
    "Percentiles",
    "prepare_file",
    "require_file",
    "split_percentiles",
    "sqlite_timestamp",
    "truncate_wal",
]

#: SQLite: how often the writer's idle time is spent moving the write-ahead log into the database.
CHECKPOINT_INTERVAL_S = 0.5
#: SQLite: the log size (4 KiB pages) at which a commit checkpoints anyway, should the writer never idle.
WAL_AUTOCHECKPOINT_PAGES = 4000
#: SQLite, after an erasure: how many truncating checkpoints to try, each waiting this long for readers.
ERASE_CHECKPOINT_ATTEMPTS = 3
ERASE_CHECKPOINT_WAIT_MS = 1000
SQLITE_BUSY_TIMEOUT_S = 30.0


def sqlite_timestamp(process: Any) -> Any:
    """SQLAlchemy's SQLite DATETIME text (``2026-11-24 13:55:16.000123``), cut from the canonical
    timestamp the chain has just formatted for the same record (`format_timestamp` remembers it)
    instead of being formatted again field by field; anything unusual goes to SQLAlchemy's own."""

    def to_text(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is timezone.utc and value.year >= 1000:
            text = format_timestamp(value)
            return f"{text[:10]} {text[11:26]}"
        return process(value)

    return to_text


class Percentiles:
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


def split_percentiles(text: str | None) -> tuple[float | None, float | None]:
    if not text:
        return None, None
    low, high = text.split()
    return float(low), float(high)


def prepare_file(url: URL) -> None:
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
    # O_EXCL: an existing file is never opened here. Closing a descriptor of a file drops every POSIX
    # lock this process holds on it, those of SQLite connections already open on it included (another
    # store, Django's own connection): their next write would corrupt the database.
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageError(f"cannot create SQLite database {path}: {exc.strerror or exc}") from exc


def require_file(url: URL, shown: str) -> None:
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


def truncate_wal(conn: sa.Connection, database: str | None) -> tuple[str, ...]:
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
    return (
        f"another connection to {database} kept a read transaction open, so SQLite could not finish "
        f"its checkpoint ({done} of {log} log pages copied, {ERASE_CHECKPOINT_ATTEMPTS} tries): the "
        f"erased text may remain in {database} and {database}-wal. Close the other readers (a long "
        f"query, `llmaudit ui`, a stuck process) and run forget again with the same selector",
    )


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


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    _set_pragmas(dbapi_connection, wal=True)


def sqlite_read_pragmas(dbapi_connection: Any, _record: Any) -> None:
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
        dbapi_connection.create_aggregate("llmaudit_percentiles", 1, Percentiles)
    finally:
        cursor.close()
