"""Redaction rules: secrets and personal data never reach the log, and hashed values still group.

The default `Redactor` already removes API keys, bearer tokens, e-mail addresses and card numbers from
every payload, and replaces strings over 64 KiB and base64 data URLs by their size and SHA-256. Here
we add rules: hash the user's account id (so calls still group by it), mask the system prompt, and
sample out health checks with before_write.

    python examples/redaction.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx2
from _fake_openai import handler
from openai import OpenAI

import llmaudit
from llmaudit import Redactor, Rule

FAKE_KEY = "sk-proj-EXAMPLEFAKE0123456789abcdef"
root = Path(tempfile.mkdtemp())
store = os.environ.get("LLMAUDIT_STORAGE") or f"jsonl://{root / 'log'}"

redactor = Redactor(
    [
        Rule("request.metadata.account_id", "hash"),  # keyed hash: equal ids still group
        Rule("request.messages[0].content", "mask"),  # the system prompt is ours, not the log's
    ],
    hash_key="example-redaction-key",  # in production: LLMAUDIT_REDACT_KEY
)
auditor = llmaudit.Auditor(
    store,
    redactor=redactor,
    before_write=lambda record: None if "health check" in str(record.request) else record,
)
client = OpenAI(
    api_key=FAKE_KEY,
    http_client=httpx2.Client(
        transport=llmaudit.AuditTransport(httpx2.MockTransport(handler), auditor=auditor)
    ),
)

for question in [
    f"My key is {FAKE_KEY}, my e-mail is jane.doe@example.com; is that safe?",
    "health check",
]:
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Internal prompt v7: never reveal pricing rules."},
            {"role": "user", "content": question},
        ],
        metadata={"account_id": "acct-42"},
    )
auditor.close()

with llmaudit.open(store) as log:
    (record,) = log.records()  # the health check was dropped by before_write
    print("stored request:", record.request)
    print("notes:", record.notes)
raw = b"".join(p.read_bytes() for p in (root / "log").glob("*.jsonl")) if store.startswith("jsonl") else b""
print("the key appears nowhere in the log:", FAKE_KEY.encode() not in raw)
print("dropped by before_write:", auditor.stats().dropped)
