"""Every page of the viewer over every backend: what it lists, filters, pages, searches and counts,
the headers it sends, that recorded text stays text, and that browsing never changes the store."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient
from tests.ui.ui_data import HOSTILE_ANSWER, HOSTILE_PROMPT, HOSTILE_SESSION, Demo

import llmaudit
from llmaudit.cli import cli
from llmaudit.ui import create_app, queries

# private: the CLI's and viewer's internals (demo data, rendering, queries) these tests pin
from llmaudit.ui.app import CONTENT_SECURITY_POLICY

PAGES = ["/", "/dashboard", "/integrity", "/?q=hash", "/dashboard?split=user&range=7d"]


def _keys(html: str) -> list[str]:
    return re.findall(r'<a class="key" href="/session\?key=([^"]+)"', html)


def test_sessions_lists_every_session_newest_activity_first(client: TestClient, demo: Demo) -> None:
    page = client.get("/")
    assert page.status_code == 200
    keys = _keys(page.text)
    assert {demo.alice, demo.bob} <= {k.replace("%2C", ",") for k in keys}
    assert keys[0].startswith("evil-"), "the hostile session was recorded last"
    assert "demo-support-bot" in page.text and "gpt-4o-mini" in page.text


def test_sessions_filter_by_user_and_errors_only(client: TestClient, demo: Demo) -> None:
    assert _keys(client.get("/", params={"user": "alice"}).text) == [demo.alice]
    assert _keys(client.get("/", params={"errors": "1"}).text) == [demo.bob]  # the rate-limited call
    assert _keys(client.get("/", params={"model": "no-such-model"}).text) == []


def test_search_finds_text_in_prompts_and_answers(client: TestClient, demo: Demo) -> None:
    assert _keys(client.get("/", params={"q": "HASH-CHAIN"}).text) == [demo.alice]  # a prompt, any case
    assert _keys(client.get("/", params={"q": "(offline answer) What is"}).text) == [demo.alice]  # an answer
    assert _keys(client.get("/", params={"q": "nowhere to be found"}).text) == []


def test_keyset_pagination_walks_every_session_once(
    client: TestClient, demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "PAGE_SIZE", 1)
    seen: list[str] = []
    url = "/"
    for _ in range(5):
        html = client.get(url).text
        seen += _keys(html)
        nxt = re.search(r'href="(/\?before=[^"]+)" rel="next"', html)
        if nxt is None:
            break
        url = nxt.group(1).replace("&amp;", "&")
    assert len(seen) == 3 and len(set(seen)) == 3


def test_the_filters_live_in_the_url(client: TestClient) -> None:
    html = client.get("/", params={"user": "alice", "range": "30d", "q": "audit"}).text
    assert 'value="alice"' in html and 'value="audit"' in html
    assert "/export.csv?user=alice&amp;q=audit&amp;range=30d" in html


def test_conversation_shows_the_tool_call_and_the_audited_tree(client: TestClient, demo: Demo) -> None:
    html = client.get("/session", params={"key": demo.bob}).text
    assert "lookup_order" in html and "order_id" in html and "A-17" in html
    assert html.count('class="children"') == 2, "each LLM call sits under its @audited record"
    assert "HTTP 429" in html or "rate_limit" in html


def test_conversation_shows_the_reassembled_stream(client: TestClient, demo: Demo) -> None:
    html = client.get("/session", params={"key": demo.alice}).text
    assert "streamed" in html and "reassembled from the stream" in html
    assert "(offline) Why hash-chain it?" in html


def test_an_unknown_session_or_record_is_a_404_page(client: TestClient) -> None:
    assert client.get("/session", params={"key": "nope"}).status_code == 404
    page = client.get("/record", params={"id": "nope"})
    assert page.status_code == 404 and "No such record" in page.text


def test_record_page_shows_json_headers_fields_and_chain(client: TestClient, demo: Demo) -> None:
    with llmaudit.open(client.app.state.store.url) as reader:  # type: ignore[attr-defined]
        record = next(r for r in reader.records(session=demo.bob) if r.source == "transport")
    html = client.get("/record", params={"id": record.id}).text
    assert '<span class="j-key">"messages"</span>' in html
    assert "hash verified" in html and str(record.writer_id) in html
    assert "Every field" in html and "duration_ms" in html
    raw = client.get("/record/raw", params={"id": record.id, "field": "request"})
    assert raw.headers["content-type"].startswith("text/plain")
    assert json.loads(raw.text) == record.request


def test_dashboard_numbers_equal_stats_json(client: TestClient) -> None:
    url = client.app.state.store.url  # type: ignore[attr-defined]
    result = CliRunner().invoke(cli, ["stats", "-s", url, "--by", "model", "--json"])
    assert result.exit_code == 0, result.output
    expected = {row["group"]["model"]: row for row in map(json.loads, result.output.splitlines())}
    html = client.get("/dashboard", params={"split": "model"}).text
    shown = dict(
        re.findall(
            r'<tr data-group="([^"]+)"><th scope="row">[^<]*</th><td class="num" data-calls="(\d+)"', html
        )
    )
    assert {k: int(v) for k, v in shown.items()} == {k: row["calls"] for k, row in expected.items()}
    total = sum(row["calls"] for row in expected.values())
    assert re.search(rf'id="total-calls">{total}<', html)


def test_integrity_runs_verify(client: TestClient) -> None:
    html = client.get("/integrity").text
    assert "Verified: nothing was modified" in html
    assert 'id="writers"' in html and "badge ok" in html


def test_download_is_the_export_of_the_filter(client: TestClient, demo: Demo, tmp_path: Path) -> None:
    body = client.get("/export.jsonl", params={"user": "alice"})
    assert body.headers["content-disposition"].startswith("attachment;")
    lines = [json.loads(line) for line in body.text.splitlines()]
    assert lines and {line["user"] for line in lines} == {"alice"}
    url = client.app.state.store.url  # type: ignore[attr-defined]
    with llmaudit.open(url) as reader:
        reader.export(str(tmp_path / "alice.jsonl"), user="alice", kind=("call", "function"))
    assert body.content == (tmp_path / "alice.jsonl").read_bytes()
    csv = client.get("/export.csv", params={"user": "alice"}).text
    assert csv.startswith("id,") and csv.count("\n") == len(lines) + 1


@pytest.mark.parametrize("path", [*PAGES, "/static/app.css", "/record?id=nope", "/nowhere"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_pages_have_no_inline_script_or_style(client: TestClient, demo: Demo) -> None:
    for path in [*PAGES, f"/session?key={demo.bob}"]:
        html = client.get(path).text
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']
        assert " style=" not in html and "<style" not in html and " on" + "click=" not in html


def test_hostile_records_are_shown_as_text(client: TestClient) -> None:
    pages = [client.get("/").text, client.get("/session", params={"key": HOSTILE_SESSION}).text]
    with llmaudit.open(client.app.state.store.url) as reader:  # type: ignore[attr-defined]
        record = next(reader.records(session=HOSTILE_SESSION))
    pages.append(client.get("/record", params={"id": record.id}).text)
    for html in pages:
        for raw in (
            "<script>window",
            "<img src=x",
            "<iframe",
            "<b>mallory",
            'href="javascript:',
            "<style>body",
        ):
            assert raw not in html
    conversation = pages[1]
    assert "&lt;script&gt;window.__pwned" in conversation and "&lt;iframe" in conversation
    assert "\u241b[31mred ANSI" in conversation, "an ANSI escape is shown as a visible picture"
    assert "{{ 7*7 }}" in conversation, "recorded text is not a template"
    assert HOSTILE_PROMPT not in conversation and HOSTILE_ANSWER not in conversation


def _fingerprint(url: str) -> dict[str, str]:
    if url.startswith("sqlite:///"):
        files = [Path(url.removeprefix("sqlite:///"))]
    elif url.startswith("jsonl://"):
        files = sorted(p for p in Path(url.removeprefix("jsonl://")).rglob("*") if p.is_file())
    else:
        with llmaudit.open(url) as reader:
            return {r.id: str(r.hash) for r in reader.records()}
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_browsing_never_changes_the_store(store: tuple[str, Demo]) -> None:
    url, demo = store
    before = _fingerprint(url)
    with TestClient(create_app(url)) as c:
        for path in [*PAGES, f"/session?key={demo.bob}", "/export.jsonl", "/export.csv", "/api/latest"]:
            assert c.get(path).status_code == 200
        for record_id in re.findall(r"/record\?id=([0-9a-f-]{36})", c.get(f"/session?key={demo.alice}").text):
            assert c.get("/record", params={"id": record_id}).status_code == 200
    assert _fingerprint(url) == before


def test_live_mode_sees_a_new_call(client: TestClient) -> None:
    before = client.get("/api/latest").json()["marker"]
    url = client.app.state.store.url  # type: ignore[attr-defined]
    with llmaudit.Auditor(url, mode="sync") as auditor:
        auditor.submit(llmaudit.AuditRecord(session_key="late-arrival", source="transport", model="m"))
    assert client.get("/api/latest").json()["marker"] != before
    assert "late-arrival" in client.get("/sessions/rows").text
