"""The viewer in a real browser: headless Chromium (Debian's ``chromium``) through Playwright's sync
API, against `llmaudit ui`'s application served by uvicorn on 127.0.0.1 in a thread.

Without Chromium the tests skip with the reason; on CI (``CI`` set) they fail instead."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.ui.ui_data import Demo, populate

from llmaudit.ui import create_app


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the browser tests (.ci/run installs it)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module: Playwright's sync API runs an event loop on this thread while it is
    open, which the asyncio tests of later modules must not find running."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable)
        yield b
        b.close()


class Served:
    """A viewer running in a thread; ``url`` is its base address."""

    def __init__(self, storage_url: str) -> None:
        import uvicorn

        config = uvicorn.Config(create_app(storage_url), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the viewer did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.storage_url = storage_url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def start(storage_url: str) -> Served:
        served = Served(storage_url)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture(params=["sqlite", "jsonl"])
def viewer(request: pytest.FixtureRequest, tmp_path: Path, serve: Any) -> tuple[Served, Demo]:
    """The viewer over the demo data (and the hostile session), on SQLite and on JSON Lines."""
    url = f"sqlite:///{tmp_path / 'audit.db'}" if request.param == "sqlite" else f"jsonl://{tmp_path / 'log'}"
    demo = populate(url)
    return serve(url), demo


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(20_000)
    yield p
    context.close()
