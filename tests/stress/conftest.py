"""The reliability suite (issue 7, RELIABILITY.md): every test here is marked ``stress``.

They are left out of a plain ``pytest`` run (see ``addopts``) and run by ``make stress``, which
``make test`` and CI include.
"""

from __future__ import annotations

from typing import ClassVar

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.stress)


class Figures:
    """What the stress tests measured, printed at the end of the run (and copied to RELIABILITY.md)."""

    lines: ClassVar[list[tuple[str, str]]] = []

    def add(self, topic: str, line: str) -> None:
        self.lines.append((topic, line))


@pytest.fixture
def figures() -> Figures:
    return Figures()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if Figures.lines:
        terminalreporter.section("reliability figures")
        for topic, line in Figures.lines:
            terminalreporter.write_line(f"{topic}: {line}")
