"""The viewer's server-side tests run over SQLite, JSON Lines, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.conftest import backends, store_url_for
from tests.ui.ui_data import Demo, populate

from llmaudit.ui import create_app

BACKENDS = backends("sqlite", "jsonl", "postgres", "mariadb")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Demo]:
    """A store on each backend holding the demo and the hostile session."""
    url = store_url_for(request.param, request, tmp_path)
    return url, populate(url)


@pytest.fixture
def client(store: tuple[str, Demo]) -> Iterator[TestClient]:
    with TestClient(create_app(store[0])) as c:
        yield c


@pytest.fixture
def demo(store: tuple[str, Demo]) -> Demo:
    return store[1]
