"""Connecting to a SQL database: the storage URL normalised (default drivers, ``?table=``), the
engine created with the driver options llmaudit relies on, and driver errors told apart
(unavailable: the writer retries and spills; refused: a `StorageError`).

It must not touch the records table (``store`` does) and must never put a password in a message.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from ..._errors import ConfigurationError
from ...record.codec import dumps, loads
from .schema import DEFAULT_TABLE
from .sqlite import prepare_file, sqlite_pragmas, sqlite_read_pragmas

__all__ = ["create_engine", "is_unavailable", "normalise_url", "reason"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,50}$")
_DRIVERS = {"postgresql": "psycopg", "postgres": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def normalise_url(url: str) -> tuple[URL, str]:
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


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


def create_engine(url: URL, shown: str, *, create: bool = True) -> Engine:
    """The engine for *url* (*shown*: the URL without its password, for messages), with the
    driver options llmaudit relies on and, on SQLite, the pragmas on every connection.

    Raises:
        ConfigurationError: the driver is not installed, or SQLAlchemy cannot use the URL.
        StorageError: the SQLite file (or its directory) cannot be created private.
    """
    options: dict[str, Any] = {"json_serializer": lambda v: dumps(v).decode(), "json_deserializer": loads}
    if url.get_backend_name() == "sqlite" and create:
        prepare_file(url)
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
        raise ConfigurationError(f"the driver for {shown} is not installed ({exc.name}){hint}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. an unknown dialect: one clear line
        raise ConfigurationError(f"cannot use SQL storage {shown}: {exc}") from None
    if url.get_backend_name() == "sqlite":
        # WAL is a property of the file, set by whoever created it: a reader (create=False)
        # does not convert a file it merely opens (an empty or foreign file stays as it is)
        sa.event.listen(engine, "connect", sqlite_pragmas if create else sqlite_read_pragmas)
    return engine
