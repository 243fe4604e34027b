"""The viewer's server-side tests run over SQLite, JSON Lines, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.ui.ui_data import Demo, populate

from llmaudit.ui import create_app

BACKENDS = [
    "sqlite",
    "jsonl",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Demo]:
    """A store on each backend holding the demo and the hostile session."""
    kind = request.param
    if kind == "jsonl":
        url = f"jsonl://{tmp_path / 'log'}"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    elif kind == "postgres":
        url = str(request.getfixturevalue("pg_url"))
    else:
        url = str(request.getfixturevalue("mariadb_url"))
    return url, populate(url)


@pytest.fixture
def client(store: tuple[str, Demo]) -> Iterator[TestClient]:
    with TestClient(create_app(store[0])) as c:
        yield c


@pytest.fixture
def demo(store: tuple[str, Demo]) -> Demo:
    return store[1]
