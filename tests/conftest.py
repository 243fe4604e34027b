"""Shared fixtures: real database servers, isolated tables, and internal errors turned into failures."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import llmaudit

# private: internal-error accounting (the guard) and the internal error classes
from llmaudit import _guard

PG_HOST, PG_PORT = "127.0.0.1", 5432
MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _require_server(name: str, host: str, port: int) -> None:
    """Skip on a user's machine without the server; fail on CI, which must never skip it."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must test against it (.ci/run starts it)")
    pytest.skip(f"{message}; start it to run these tests")


def unique_table() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL storage URL on a fresh table, dropped afterwards."""
    _require_server("PostgreSQL", PG_HOST, PG_PORT)
    table = unique_table()
    yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test?table={table}"
    _drop("postgresql+psycopg://postgres@127.0.0.1:5432/test", table)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A MariaDB storage URL on a fresh table, dropped afterwards."""
    _require_server("MariaDB", MARIADB_HOST, MARIADB_PORT)
    table = unique_table()
    yield f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/test?table={table}"
    _drop("mysql+pymysql://root@127.0.0.1:3306/test", table)


# -- one place for "this test runs over every backend" -------------------------------------------
# The kinds of store a test can run over; the SQL servers carry their markers (``-m "not mariadb"``
# deselects them) and their fixtures skip, or fail on CI, when the server is not reachable.
_MARKS = {"postgres": pytest.mark.postgres, "mariadb": pytest.mark.mariadb}
ALL_KINDS = ("memory", "jsonl", "sqlite", "postgres", "mariadb")


def backends(*kinds: str) -> list[object]:
    """Parameters for ``@pytest.fixture(params=...)`` / ``parametrize`` over *kinds* (default: all),
    each SQL server with its marker."""
    chosen = kinds or ALL_KINDS
    unknown = set(chosen) - set(ALL_KINDS)
    assert not unknown, f"unknown backend kinds {sorted(unknown)}"
    return [pytest.param(k, marks=_MARKS[k]) if k in _MARKS else k for k in chosen]


SQL_KINDS = backends("sqlite", "postgres", "mariadb")


def store_url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty store of *kind* (SQL servers: a table of its own, dropped after the
    test, through the ``pg_url`` / ``mariadb_url`` fixtures)."""
    if kind == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if kind == "jsonl":
        return f"jsonl://{tmp_path / 'log'}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    if kind == "postgres":
        return str(request.getfixturevalue("pg_url"))
    if kind == "mariadb":
        return str(request.getfixturevalue("mariadb_url"))
    raise AssertionError(f"unknown backend kind {kind!r}")


def _drop(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for suffix in ("_checkpoints", "_registry", "_chain", "_meta", ""):
                name = f"{table}{suffix}"
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """No test reads the developer's LLMAUDIT_* settings or writes into their real data directory."""
    for name in list(os.environ):
        if name.startswith("LLMAUDIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    yield
    llmaudit.shutdown(timeout=5)


class _FailOnInternalError(logging.Handler):
    """llmaudit logs internal failures at ERROR on logger ``llmaudit``; in tests they are failures
    unless the test declares it expects them (``expect_internal_errors`` fixture)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _internal_errors() -> Iterator[_FailOnInternalError]:
    # private: the guard's warn-once counters, reset so each test sees a first failure at ERROR
    _guard._counts.clear()  # each test sees the first failure of a site at ERROR again
    handler = _FailOnInternalError()
    logger = logging.getLogger("llmaudit")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    if not getattr(handler, "expected", False) and handler.records:
        messages = "\n".join(r.getMessage() for r in handler.records)
        pytest.fail(f"llmaudit logged internal errors:\n{messages}")


@pytest.fixture
def expect_internal_errors(_internal_errors: _FailOnInternalError) -> list[logging.LogRecord]:
    """Declare that this test provokes internal errors on purpose; returns them for assertions."""
    _internal_errors.expected = True  # type: ignore[attr-defined]
    return _internal_errors.records
