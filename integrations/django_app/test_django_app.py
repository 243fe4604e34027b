"""Runs the Django app's suite (``suite/``) on SQLite, PostgreSQL and MariaDB, each in a process of its
own: Django is configured once per process, on one database, and the other integration tests of
this run configure it their own way. Each run makes its test database with ``migrate`` from empty
(under a unique name on the servers) and drops it at the end. The admin is loaded in headless
Chromium once, on SQLite (it skips without Chromium, and fails on CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import MARIADB_HOST, MARIADB_PORT, PG_HOST, PG_PORT, _require_server

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _run_suite(backend: str, tmp_path: Path, *extra: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMAUDIT_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="integrations.django_app.project.settings",
        DJANGO_APP_DB=backend,
        DJANGO_APP_DIR=str(tmp_path),
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(HERE / "suite")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"the Django suite failed on {backend}:\n{done.stdout}\n{done.stderr}"
    assert " passed" in done.stdout, done.stdout


def test_the_django_app_on_sqlite(tmp_path: Path) -> None:
    _run_suite("sqlite", tmp_path)


@pytest.mark.postgres
def test_the_django_app_on_postgresql(tmp_path: Path) -> None:
    _require_server("PostgreSQL", PG_HOST, PG_PORT)
    _run_suite("postgres", tmp_path, "-k", "not chromium")  # the browser's pages are the same


@pytest.mark.mariadb
def test_the_django_app_on_mariadb(tmp_path: Path) -> None:
    _require_server("MariaDB", MARIADB_HOST, MARIADB_PORT)
    _run_suite("mariadb", tmp_path, "-k", "not chromium")
