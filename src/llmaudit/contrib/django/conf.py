"""The app's settings: one ``LLMAUDIT = {...}`` dict mapped onto `llmaudit.configure`, and the
project's own database turned into llmaudit's storage URL.

Every key of the dict is a `configure` keyword, upper- or lower-case (``"MODE": "sync"``,
``"CHAIN_KEY": ...``, ``"BATCH_SIZE": 200``; ``"BEFORE_WRITE"``, ``"PROCESSORS"`` and
``"REDACTOR"`` also take dotted paths), plus the app's own: ``"STORAGE"`` (a storage URL: the records
go elsewhere, and the models and admin, which read the database, see none of them), ``"DATABASE"``
(the alias whose database holds the records, default ``"default"``), ``"TABLE"`` (the records
table, default ``llmaudit_records``) and ``"CONFIGURE"`` (``False``: the app never calls
`configure`, the project does). Nothing here opens a connection: the writer opens the database on
its own thread when it first writes (`DatabaseStorage`), so that starting Django, ``makemigrations``
or ``collectstatic`` never needs the database, and a database that is down at start-up has the
records spooled and replayed, not lost.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from sqlalchemy.engine import URL, make_url

from ..._errors import ConfigurationError
from ...integrity.chain import ChainState, RegistryEntry
from ...record.model import AuditRecord
from ...storage import Query, redact_url
from ...storage._base import ProblemHandler

__all__ = [
    "DEFAULT_TABLE",
    "DatabaseStorage",
    "configure_from_settings",
    "database_alias",
    "database_url",
    "open_sql_store",
    "options",
    "shutdown",
    "storage_url",
    "table_name",
]

DEFAULT_TABLE = "llmaudit_records"
_EVERYTHING = Query()
#: The app's own keys of ``LLMAUDIT``; every other key is a `configure` keyword.
APP_KEYS = frozenset({"storage", "database", "table", "configure"})
_DOTTED = frozenset({"before_write", "redactor"})


def _settings() -> dict[str, Any]:
    value = getattr(settings, "LLMAUDIT", None) or {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"settings.LLMAUDIT must be a dict, not {type(value).__name__}")
    return {str(k).lower(): v for k, v in value.items()}


def database_alias() -> str:
    """The alias of the database that holds the records (``LLMAUDIT["DATABASE"]``, else ``default``)."""
    return str(_settings().get("database") or "default")


def table_name() -> str:
    """The records table (``LLMAUDIT["TABLE"]``, else ``llmaudit_records``)."""
    return str(_settings().get("table") or DEFAULT_TABLE)


def _sqlite_path(name: str) -> str:
    if not name or name == ":memory:" or "mode=memory" in name:
        raise ConfigurationError(
            f"the SQLite database {name!r} lives in memory, inside Django's own connection, where "
            "llmaudit's writer cannot reach it: use a database file (for tests, DATABASES[...]['TEST']"
            "['NAME'] = a path), or set LLMAUDIT['STORAGE'] to another store"
        )
    if name.startswith("file:"):
        raise ConfigurationError(
            f"the SQLite database {name!r} is a URI filename: give llmaudit a plain path"
        )
    from pathlib import Path  # noqa: PLC0415 - only SQLite needs it

    return str(Path(name).expanduser().resolve())


def _postgres_driver() -> str:
    try:
        import psycopg  # noqa: F401, PLC0415 - which driver Django itself would use
    except ImportError:
        return "psycopg2"
    return "psycopg"


def database_url(database: Mapping[str, Any]) -> str:
    """The llmaudit storage URL of one ``DATABASES`` entry (SQLite, PostgreSQL, MySQL/MariaDB).

    Raises:
        ConfigurationError: another engine, or a SQLite database in memory.
    """
    engine = str(database.get("ENGINE", ""))
    name = str(database.get("NAME") or "")
    options = database.get("OPTIONS") or {}
    table = table_name()
    if engine.endswith("sqlite3"):
        url = URL.create("sqlite", database=_sqlite_path(name))
    elif ".postgresql" in engine or ".postgis" in engine:
        query = {k: str(options[k]) for k in ("sslmode", "sslrootcert", "sslcert", "sslkey") if k in options}
        url = URL.create(
            f"postgresql+{_postgres_driver()}",
            username=database.get("USER") or None,
            password=database.get("PASSWORD") or None,
            host=database.get("HOST") or None,
            port=int(database["PORT"]) if database.get("PORT") else None,
            database=name,
            query=query,
        )
    elif ".mysql" in engine:
        query = {k: str(options[k]) for k in ("unix_socket", "charset") if k in options}
        url = URL.create(
            "mysql+pymysql",
            username=database.get("USER") or None,
            password=database.get("PASSWORD") or None,
            host=database.get("HOST") or "localhost",
            port=int(database["PORT"]) if database.get("PORT") else None,
            database=name,
            query=query,
        )
    else:
        raise ConfigurationError(
            f"llmaudit stores records in SQLite, PostgreSQL or MySQL/MariaDB, not in {engine!r}: "
            "set LLMAUDIT['STORAGE'] to a storage URL"
        )
    return url.update_query_dict({"table": table}).render_as_string(hide_password=False)


def storage_url(database: Mapping[str, Any] | None = None) -> str:
    """The configured store: ``LLMAUDIT["STORAGE"]``, else the records' database (*database*, by
    default ``DATABASES[database_alias()]``) as a storage URL."""
    explicit = _settings().get("storage")
    if explicit:
        return str(explicit)
    if database is None:
        alias = database_alias()
        if alias not in settings.DATABASES:
            raise ConfigurationError(f"LLMAUDIT['DATABASE'] names {alias!r}, which is not in DATABASES")
        database = settings.DATABASES[alias]
    return database_url(database)


def shown_url(url: str) -> str:
    """*url* as `SQLStorage` names itself (no password, no ``?table=``): the spool directory and
    every message are named after it."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - a malformed explicit URL: configure() reports it
        return redact_url(url)
    return redact_url(parsed.difference_update_query(["table"]).render_as_string(hide_password=True))


def _imported(name: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return import_string(value)
        except ImportError as exc:
            raise ConfigurationError(f"LLMAUDIT[{name.upper()!r}]: cannot import {value!r}: {exc}") from exc
    return value


def _configure_keywords() -> frozenset[str]:
    from ... import Auditor  # noqa: PLC0415

    return frozenset(inspect.signature(Auditor.__init__).parameters) - {"self", "storage"} | {"disabled"}


def options() -> dict[str, Any]:
    """The `configure` keywords of ``LLMAUDIT`` (dotted paths imported).

    Raises:
        ConfigurationError: a key is neither a `configure` keyword nor one of the app's.
    """
    given = _settings()
    known = _configure_keywords()
    unknown = sorted(name for name in given if name not in known and name not in APP_KEYS)
    if unknown:
        choices = ", ".join(sorted(n.upper() for n in known | APP_KEYS))
        raise ConfigurationError(f"unknown LLMAUDIT setting(s) {', '.join(unknown)}; known: {choices}")
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name in APP_KEYS:
            continue
        if name in _DOTTED:
            out[name] = _imported(name, value)
        elif name == "processors" and isinstance(value, Sequence) and not isinstance(value, str):
            out[name] = [_imported(name, v) for v in value]
        else:
            out[name] = value
    return out


def wants_configure() -> bool:
    return _settings().get("configure", True) is not False


class DatabaseStorage:
    """The records' database as a llmaudit `Storage`, opened (as `SQLStorage`) on first use.

    The writer calls it on its own thread: a database that cannot be reached there makes the write
    fail like any unreachable store's (retried, then spooled and replayed). The URL is read from
    ``DATABASES`` when it is opened, so a test runner's test database is the one written to.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: Any = None
        self._key: bytes | None = None
        self.url = shown_url(storage_url())

    @property
    def chain_key(self) -> bytes | None:
        return self._key

    @chain_key.setter
    def chain_key(self, value: bytes | None) -> None:
        self._key = value
        if self._store is not None:
            self._store.chain_key = value

    def opened(self) -> Any:
        """The `SQLStorage`, opened now if it is not yet."""
        with self._lock:
            if self._store is None:
                store = open_sql_store(storage_url())
                store.chain_key = self._key
                self._store = store
            return self._store

    def write(self, records: Sequence[AuditRecord]) -> None:
        self.opened().write(records)

    def read(
        self, query: Query = _EVERYTHING, *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        return self.opened().read(query, on_problem=on_problem)  # type: ignore[no-any-return]

    def maintain(self) -> None:
        if self._store is not None:
            self._store.maintain()

    def chain_states(self) -> dict[str, ChainState]:
        return self.opened().chain_states()  # type: ignore[no-any-return]

    def registry(self) -> list[RegistryEntry]:
        return self.opened().registry()  # type: ignore[no-any-return]

    def seal_legacy(self, records: Sequence[AuditRecord], detail: Mapping[str, Any]) -> None:
        self.opened().seal_legacy(records, detail)

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()


def open_sql_store(url: str) -> Any:
    """`SQLStorage` on *url*: an existing store opened as it is, a missing one created.

    Not ``SQLStorage(url)`` straight away: creating a SQLite store opens and closes a descriptor of
    the database file, and on POSIX closing any descriptor of a file drops every lock this process
    holds on it, those of Django's own connections included. A connection that has lost its locks
    can then see the write-ahead log checkpointed and removed under it: "disk I/O error", then
    "database disk image is malformed" (sqlite.org/howtocorrupt.html, section 2.2). So an existing
    store is opened without *create*, and the tables of an existing file are created through a
    ``file:`` URI, which SQLite alone opens.
    """
    from ..._errors import StorageNotFoundError  # noqa: PLC0415
    from ...storage.sql import SQLStorage  # noqa: PLC0415 - SQLAlchemy loads on first use

    try:
        return SQLStorage(url, create=False)
    except StorageNotFoundError:
        pass
    through_sqlite = _sqlite_uri(url)
    if through_sqlite is None:  # a server database, or no file yet (no connection can have it open)
        return SQLStorage(url)
    SQLStorage(through_sqlite).close()
    return SQLStorage(url, create=False)


def _sqlite_uri(url: str) -> str | None:
    """The ``file:`` URI form of an existing SQLite database's URL, else None."""
    from pathlib import Path  # noqa: PLC0415
    from urllib.parse import quote  # noqa: PLC0415

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database.startswith("file:") or not Path(database).is_file():
        return None
    uri = parsed.set(database=f"file:{quote(database)}").update_query_dict({"uri": "true"})
    return uri.render_as_string(hide_password=False)


_current: list[DatabaseStorage] = []


def configure_from_settings() -> Any:
    """Call `llmaudit.configure` with ``settings.LLMAUDIT``; the default store is the project's
    database (`DatabaseStorage`). Returns the new default auditor.

    Raises:
        ConfigurationError: a setting is invalid.
    """
    from ... import configure  # noqa: PLC0415 - the pipeline loads when the app is ready, not before

    chosen = options()
    explicit = _settings().get("storage")
    # a child process (writer="process") opens its own store, from the URL
    process = chosen.get("writer") == "process"
    storage: Any = storage_url() if explicit or process else DatabaseStorage()
    auditor = configure(storage, **chosen)
    while _current:  # the auditor these belonged to was closed (flushed) by configure
        _current.pop().close()
    if isinstance(storage, DatabaseStorage):
        _current.append(storage)
    return auditor


def shutdown(timeout: float | None = None) -> None:
    """`llmaudit.shutdown`, then close the connections of the database store it wrote to (before a
    test database is dropped, for instance)."""
    from ... import shutdown as stop  # noqa: PLC0415

    stop(timeout)
    while _current:
        _current.pop().close()
