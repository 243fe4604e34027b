"""The viewer's safety rules: the token, the Host check, bad URLs and databases that are down as
clear pages (never a traceback), huge and deeply nested bodies, unreadable lines, and the command."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient
from tests.ui.ui_data import populate

from llmaudit import Auditor, AuditRecord
from llmaudit.cli import cli

# private: the CLI's and viewer's internals (demo data, rendering, queries) these tests pin
from llmaudit.cli._ui import is_loopback
from llmaudit.ui import create_app
from llmaudit.ui.app import TOKEN_COOKIE
from llmaudit.ui.queries import read_only_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    populate(url)
    return url


def test_a_token_is_required_by_header_cookie_or_query_once(sqlite_url: str) -> None:
    with TestClient(create_app(sqlite_url, token="s3cret")) as c:
        assert c.get("/").status_code == 401
        assert c.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/static/app.css").status_code == 401
        assert c.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        first = c.get("/dashboard?token=s3cret&range=7d", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/dashboard?range=7d"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and f"{TOKEN_COOKIE}=s3cret" in cookie
        assert c.get("/dashboard?range=7d").status_code == 200  # the client kept the cookie


def test_only_the_allowed_hosts_are_served(sqlite_url: str) -> None:
    with TestClient(create_app(sqlite_url, allowed_hosts=["127.0.0.1"]), base_url="http://127.0.0.1") as c:
        assert c.get("/").status_code == 200
        assert c.get("/", headers={"host": "rebound.example"}).status_code == 400


def test_a_missing_store_is_a_clear_page_and_nothing_is_created(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'none.db'}", f"jsonl://{tmp_path / 'none'}"):
        with TestClient(create_app(url)) as c:
            page = c.get("/")
        assert page.status_code == 404 and "No store there" in page.text
        assert "Traceback" not in page.text
    assert list(tmp_path.iterdir()) == []


def test_a_bad_url_is_a_clear_page() -> None:
    with TestClient(create_app("nosuchscheme://x")) as c:
        page = c.get("/")
    assert page.status_code == 400 and "unknown storage scheme" in page.text and "Traceback" not in page.text


def test_a_database_that_is_down_is_a_clear_page() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://postgres:pw@127.0.0.1:{port}/test?connect_timeout=2"
    with TestClient(create_app(url)) as c:
        page = c.get("/dashboard")
    assert page.status_code == 503 and "cannot be reached" in page.text
    assert "pw@" not in page.text and "Traceback" not in page.text


def test_huge_and_deep_bodies_are_cut_with_a_show_all_link(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    deep: object = "bottom"
    for _ in range(200):
        deep = {"d": deep}
    big = "x" * 10_000_000
    record = AuditRecord(
        session_key="big",
        source="transport",
        provider="openai",
        operation="chat.completions",
        request={"messages": [{"role": "user", "content": big}], "deep": deep},
        response={"items": list(range(100_000))},
        input_text="user: " + big[:30_000],
    )
    with Auditor(url, mode="sync", redactor=False) as auditor:
        auditor.submit(record)
    with TestClient(create_app(url)) as c:
        page = c.get("/record", params={"id": record.id})
        conversation = c.get("/session", params={"key": "big"})
        raw = c.get("/record/raw", params={"id": record.id, "field": "request"})
    assert page.status_code == 200 and len(page.content) < 3_000_000
    assert "show all" in page.text and "nested deeper than" in page.text
    assert conversation.status_code == 200 and len(conversation.content) < 1_000_000
    assert "more characters" in conversation.text and "show all" in conversation.text
    assert len(raw.content) > 10_000_000


def test_unreadable_lines_are_skipped_and_listed_by_integrity(tmp_path: Path) -> None:
    url = f"jsonl://{tmp_path / 'log'}"
    populate(url, hostile=False)
    day = next((tmp_path / "log").glob("llmaudit-*.jsonl"))
    with day.open("ab") as f:
        f.write(b"{not json\xff\xfe}\n")
    with TestClient(create_app(url)) as c:
        assert c.get("/").status_code == 200
        integrity = c.get("/integrity").text
    assert "Unreadable data" in integrity and "skipped an unreadable line" in integrity


def test_the_read_only_urls() -> None:
    assert read_only_url("memory://x") == "memory://x"
    assert "default_transaction_read_only" in read_only_url("postgresql+psycopg://u@h/db?table=t")
    assert "init_command=SET" in read_only_url("mysql+pymysql://root@h/test")


def test_the_command_refuses_other_hosts_without_a_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ui", "-s", f"sqlite:///{tmp_path}/a.db", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--token" in result.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")


def test_mounted_inside_another_app_every_link_and_redirect_keeps_the_prefix(sqlite_url: str) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/llm-audit", app=create_app(sqlite_url, token="t"))])
    with TestClient(outer) as c:
        first = c.get("/llm-audit/dashboard?token=t&range=7d", follow_redirects=False)
        assert first.headers["location"] == "/llm-audit/dashboard?range=7d"
        html = c.get("/llm-audit/").text
        links = set(re.findall(r'(?:href|src)="(/[^"?]*)', html))
        assert links and all(link.startswith("/llm-audit/") for link in links)
        assert c.get("/llm-audit/static/app.js").status_code == 200
