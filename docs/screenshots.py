"""Regenerate the web viewer's screenshots in docs/ (the README shows them).

    python docs/screenshots.py

Records the offline demo (`llmaudit demo`) into a temporary SQLite store, serves `llmaudit ui` on it
on 127.0.0.1 (a free port, in a thread) and has headless Chromium (Debian's ``chromium``, driven by
Playwright) take the conversation and dashboard pages. Nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from llmaudit.cli._demo import run_demo
from llmaudit.ui import create_app

DOCS = Path(__file__).resolve().parent


@contextlib.contextmanager
def serving(storage_url: str) -> Iterator[str]:
    """The viewer over *storage_url* on 127.0.0.1, in a thread; yields its base URL."""
    config = uvicorn.Config(create_app(storage_url), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the viewer did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/demo.db"
        with contextlib.redirect_stdout(io.StringIO()):
            run_demo(url, echo=lambda _line: None)
        with serving(url) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            page.goto(base + "/")
            page.screenshot(path=str(DOCS / "ui-sessions.png"))
            bob = page.locator("a.key", has_text=re.compile("demo-bob")).first
            bob.click()
            page.wait_for_selector(".tree")
            page.screenshot(path=str(DOCS / "ui-conversation.png"), full_page=True)
            page.goto(base + "/dashboard")
            page.screenshot(path=str(DOCS / "ui-dashboard.png"), full_page=True)
            browser.close()
    for name in ("ui-sessions.png", "ui-conversation.png", "ui-dashboard.png"):
        print(DOCS / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
