"""The viewer as a person uses it, in headless Chromium: the demo's sessions, filters and search,
a conversation with a tool call and a streamed answer, a record, the dashboard against `stats`,
the keyboard alone, hostile recorded text that must not run, an empty store and a store that is down."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
from tests.ui.ui_data import HOSTILE_SESSION, Demo

import llmaudit
from llmaudit.storage import open_storage

pytestmark = pytest.mark.integration


def test_the_sessions_list_shows_the_demo(viewer: tuple[Any, Demo], page: Any) -> None:
    served, demo = viewer
    page.goto(served.url + "/")
    keys = page.locator("table.sessions a.key").all_inner_texts()
    assert {demo.alice, demo.bob, HOSTILE_SESSION} == set(keys)
    assert page.locator("nav[aria-label=Main] a[aria-current=page]").inner_text() == "Sessions"


def test_filtering_and_search(viewer: tuple[Any, Demo], page: Any) -> None:
    served, demo = viewer
    page.goto(served.url + "/")
    page.fill("#f-user", "bob")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"user=bob"))
    assert page.locator("table.sessions a.key").all_inner_texts() == [demo.bob]
    page.goto(served.url + "/")
    page.fill("#f-q", "hash-chain")
    page.press("#f-q", "Enter")
    page.wait_for_url(re.compile(r"q=hash-chain"))
    assert page.locator("table.sessions a.key").all_inner_texts() == [demo.alice]


def test_a_conversation_with_a_tool_call_and_a_streamed_answer(viewer: tuple[Any, Demo], page: Any) -> None:
    served, demo = viewer
    page.goto(served.url + "/")
    page.get_by_role("link", name=demo.bob).click()
    assert page.locator(".msg.kind-tool_call pre").first.inner_text() == 'lookup_order({"order_id": "A-17"})'
    # each LLM call sits under the @audited function that made it (a tree, like a trace view)
    assert page.locator(".tree > li.kind-function").count() == 2
    assert page.locator(".tree > li.kind-function > .children > li.kind-call").count() == 2
    assert page.locator(".tree > li.kind-call").count() == 0
    page.goto(served.url + "/")
    page.get_by_role("link", name=demo.alice).click()
    assert page.locator(".badge", has_text="streamed").count() == 1
    assert "(offline) Why hash-chain it?" in page.locator(".msg.answer").last.inner_text()


def test_the_record_page(viewer: tuple[Any, Demo], page: Any) -> None:
    served, demo = viewer
    page.goto(served.url + "/session?key=" + demo.alice)
    page.locator(".kind-call .card-head a.button").first.click()
    page.wait_for_url(re.compile(r"/record\?id="))
    assert page.locator(".chain .value").inner_text() == "hash verified"
    tree = page.locator("section.panel .json > details").first
    assert tree.get_attribute("open") is not None
    tree.locator("> summary").click()
    assert tree.get_attribute("open") is None, "the JSON tree collapses"


def test_the_dashboard_shows_what_stats_computes(viewer: tuple[Any, Demo], page: Any) -> None:
    served, _ = viewer
    with llmaudit.open(served.storage_url) as reader:
        rows = reader.stats(("model",))
    page.goto(served.url + "/dashboard?split=model")
    assert page.locator("#total-calls").inner_text() == str(sum(r.calls for r in rows))
    for row in rows:
        cells = page.locator(f'#split-table tr[data-group="{row.group["model"]}"] td')
        assert cells.first.inner_text() == f"{row.calls:,}"
    assert page.locator("figure.chart svg rect.bar").count() > 0


def test_keyboard_alone_reaches_and_opens_a_session(viewer: tuple[Any, Demo], page: Any) -> None:
    served, demo = viewer
    page.goto(served.url + "/")
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement && document.activeElement.textContent")
        if focused == demo.alice:
            break
    else:
        pytest.fail("Tab never reached the session link")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/session\?key="))
    assert demo.alice in page.locator("h1").inner_text()
    summary = page.locator("details.earlier > summary, .json summary").first
    if summary.count():
        summary.focus()
        page.keyboard.press("Enter")


def test_hostile_recorded_text_never_runs(viewer: tuple[Any, Demo], page: Any) -> None:
    served, _ = viewer
    violations: list[str] = []
    page.on(
        "console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    page.goto(served.url + "/")
    page.get_by_role("link", name=HOSTILE_SESSION).click()
    page.wait_for_selector(".tree")
    record_link = page.locator(".card-head a.button").first.get_attribute("href")
    for path in (page.url, served.url + str(record_link)):
        page.goto(path)
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("script").count() == 1  # the viewer's own app.js
        assert page.locator("img, iframe").count() == 0
        assert page.locator("a[href^='javascript:' i]").count() == 0
        assert "<script>window.__pwned" in page.locator("main").inner_text()
    injected = page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
        " document.body.appendChild(s); return typeof window.__inline; }"
    )
    assert injected == "undefined", "the CSP blocks inline script"
    page.wait_for_timeout(200)
    assert any("script-src" in v for v in violations)


def test_an_empty_store(tmp_path: Path, serve: Any, page: Any) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_storage(url).close()
    served = serve(url)
    page.goto(served.url + "/")
    assert "No sessions match" in page.locator("tbody").inner_text()
    page.goto(served.url + "/dashboard")
    assert page.locator("#total-calls").inner_text() == "0"


def test_a_store_that_is_down(serve: Any, page: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = serve(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?connect_timeout=2")
    response = page.goto(served.url + "/")
    assert response.status == 503
    assert page.locator("h1").inner_text() == "The store cannot be reached"
    assert "Traceback" not in page.content()


def test_live_mode_shows_a_new_session_without_a_reload(viewer: tuple[Any, Demo], page: Any) -> None:
    served, _ = viewer
    page.goto(served.url + "/")
    page.get_by_role("button", name="Live").press("Enter")  # reachable and operable by keyboard
    assert page.get_by_role("button", name="Live").get_attribute("aria-pressed") == "true"
    page.wait_for_selector("#live-toggle[data-seen]", state="attached")  # the first poll is in
    with llmaudit.Auditor(served.storage_url, mode="sync") as auditor:
        auditor.submit(llmaudit.AuditRecord(session_key="arrived-live", source="transport", model="m"))
    page.wait_for_selector("table.sessions a.key:text-is('arrived-live')")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1, "no reload"
