"""The reliability suite (issue 7, RELIABILITY.md): every test here is marked ``stress``.

They are left out of a plain ``pytest`` run (see ``addopts``) and run by ``make stress``, which
``make test`` and CI include.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.stress)
