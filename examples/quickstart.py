"""Quickstart: the openai SDK on httpx2 with llmaudit's transport, a session, and the log read back.

    python examples/quickstart.py

Offline: the HTTP layer is a MockTransport standing in for api.openai.com (see _fake_openai.py). In
your application, drop the `inner=` argument and the transport sends real requests.
"""

from __future__ import annotations

import os
import tempfile

import httpx2
from _fake_openai import handler
from openai import OpenAI

import llmaudit

store = os.environ.get("LLMAUDIT_STORAGE") or f"sqlite:///{tempfile.mkdtemp()}/quickstart.db"
llmaudit.configure(storage=store)  # omit to use the embedded default store

client = OpenAI(
    api_key="sk-example-FAKE-key-never-stored",
    http_client=httpx2.Client(transport=llmaudit.AuditTransport(httpx2.MockTransport(handler))),
)

with llmaudit.session("quickstart-1", user="alice", tags=["example"]):
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "What does llmaudit record?"}]
    )
print("answer:", reply.choices[0].message.content)

llmaudit.flush()  # records are written in the background; flush before reading them back
with llmaudit.open(store) as log:
    for record in log.records(session="quickstart-1"):
        print(
            f"recorded: {record.provider} {record.model} {record.input_tokens}+{record.output_tokens} tokens"
        )
        print(f"          cost ${record.cost_usd:.6f}, {record.duration_ms:.1f} ms, user {record.user}")
    print("chain:", "verified" if log.verify().ok else "FAILED")
llmaudit.shutdown()
