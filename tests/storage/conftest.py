"""The storage contract runs over every backend: memory, JSONL, SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import backends, store_url_for

BACKENDS = backends()


@pytest.fixture(params=BACKENDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store on each backend in turn."""
    return store_url_for(request.param, request, tmp_path)
