"""The storage contract runs over every backend: memory, JSONL, SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

BACKENDS = [
    "memory",
    "jsonl",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=BACKENDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store on each backend in turn."""
    kind = request.param
    if kind == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if kind == "jsonl":
        return f"jsonl://{tmp_path / 'log'}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    if kind == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("mariadb_url"))
