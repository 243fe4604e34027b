"""Django set up once for the suite, on a test database made by ``migrate`` from empty (Django's own
test database creation), dropped at the end; llmaudit configured from the settings for each test."""

from __future__ import annotations

from collections.abc import Iterator

import django
import pytest

django.setup()

from django.db import connection
from django.test.utils import setup_test_environment, teardown_test_environment

from llmaudit.contrib.django.conf import configure_from_settings, shutdown


@pytest.fixture(scope="session", autouse=True)
def _test_database() -> Iterator[None]:
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        shutdown(timeout=5)  # its connections to the test database too, or it cannot be dropped
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


@pytest.fixture(autouse=True)
def _configured(_isolated_environment: None) -> None:
    """The app configures llmaudit when Django starts; the unit suite's safety net shuts the default
    auditor down after every test, so each test starts from the settings again."""
    configure_from_settings()
