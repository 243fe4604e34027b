"""A fake API key placed everywhere a real one could leak — every request header, the query string,
the payload, the response, an error message, a decorator argument — never reaches storage: the raw
bytes of the JSONL files, the SQLite database (with its WAL), the PostgreSQL table and the spool are
scanned for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from tests.helpers import ControlledStorage

import llmaudit
from llmaudit import Redactor
from llmaudit.storage.sql import SQLStorage

KEY = "sk-proj-FAKEKEYFORTESTS0123456789abcdef"
GOOGLE_KEY = "AIzaFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123"
HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "Proxy-Authorization": f"Basic {KEY}",
    "x-api-key": KEY,
    "api-key": KEY,
    "x-goog-api-key": GOOGLE_KEY,
    "Cookie": f"session={KEY}",
    "X-Custom-Secret": KEY,  # on the configured deny list
    "User-Agent": f"my-app/1.0 ({KEY})",  # allow-listed: kept, but the detectors scrub the value
    "x-stainless-lang": KEY,  # allow-listed prefix
}


def _handler(request: httpx2.Request) -> httpx2.Response:
    if b'"model":"fail"' in request.content.replace(b" ", b""):
        raise httpx2.ConnectError(f"could not connect with key {KEY}", request=request)
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"your key is {KEY}"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    headers = {"set-cookie": f"s={KEY}", "x-request-id": f"req-{KEY}", "content-type": "application/json"}
    return httpx2.Response(200, json=body, headers=headers)


def _leak_everything(auditor: llmaudit.Auditor) -> None:
    transport = llmaudit.AuditTransport(httpx2.MockTransport(_handler), auditor=auditor)
    with httpx2.Client(transport=transport, headers=HEADERS) as http:
        http.post(
            f"https://api.openai.com/v1/chat/completions?key={GOOGLE_KEY}&api_key={KEY}&token={KEY}",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"my key: {KEY}"}]},
        )
        http.post(
            f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent?key={GOOGLE_KEY}",
            json={"contents": [{"parts": [{"text": f"key {GOOGLE_KEY}"}]}]},
        )
        with pytest.raises(httpx2.ConnectError):
            http.post("https://api.openai.com/v1/chat/completions", json={"model": "fail", "messages": []})

    @llmaudit.audited(auditor=auditor)
    def call_llm(api_key: str, prompt: str) -> str:
        return f"used {api_key}"

    call_llm(KEY, prompt=f"and again {KEY}")


def _assert_clean(raw: bytes, where: str) -> None:
    assert raw, f"nothing was written to {where}"
    for secret in (KEY, GOOGLE_KEY, "FAKEKEYFORTESTS"):
        assert secret.encode() not in raw, f"{secret} found in {where}"


def _auditor(url: Any, tmp_path: Path) -> llmaudit.Auditor:
    return llmaudit.Auditor(
        url, spool_dir=str(tmp_path / "spool"), redactor=Redactor(deny_headers=["x-custom-secret"])
    )


def test_jsonl_files_hold_no_key(tmp_path: Path) -> None:
    with _auditor(f"jsonl://{tmp_path / 'log'}", tmp_path) as auditor:
        _leak_everything(auditor)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file())
    _assert_clean(raw, "the JSONL files")
    assert b"[REDACTED:openai_key]" in raw and b"api_key=***" in raw  # recorded, scrubbed
    assert b'"user-agent":"my-app/1.0 ([REDACTED:openai_key])"' in raw


def test_sqlite_file_holds_no_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with _auditor(url, tmp_path) as auditor:
        _leak_everything(auditor)
        auditor.flush()
        raw_open = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))  # WAL included
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    _assert_clean(raw_open + raw, "the SQLite files")
    with llmaudit.open(url) as log:
        records = list(log.records())
    assert len(records) == 4
    errors = [r.error for r in records if r.error]
    assert errors and "could not connect with key [REDACTED" in errors[0]


@pytest.mark.postgres
def test_postgresql_table_holds_no_key(pg_url: str, tmp_path: Path) -> None:
    with _auditor(pg_url, tmp_path) as auditor:
        _leak_everything(auditor)
    store = SQLStorage(pg_url)
    with store._engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT t::text FROM {store.table.name} t")).scalars().all()
        chain = conn.execute(sa.text(f"SELECT t::text FROM {store.chain.name} t")).scalars().all()
    store.close()
    assert len(rows) == 4
    _assert_clean("\n".join(rows + chain).encode(), "the PostgreSQL tables")


def test_spool_holds_no_key(tmp_path: Path) -> None:
    storage = ControlledStorage()
    storage.down = True
    auditor = _auditor(storage, tmp_path)
    auditor._writer.retry_delays_s = ()
    _leak_everything(auditor)
    auditor.flush()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "spool").iterdir())
    storage.down = False
    auditor.close()
    _assert_clean(raw, "the spool")
    assert raw.count(b"\n") == 4
