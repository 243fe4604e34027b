"""Streaming: the caller gets each chunk as it arrives; the record holds the reassembled answer.

python examples/streaming.py
"""

from __future__ import annotations

import os
import tempfile

import httpx2
from _fake_openai import handler
from openai import OpenAI

import llmaudit

store = os.environ.get("LLMAUDIT_STORAGE") or f"sqlite:///{tempfile.mkdtemp()}/streaming.db"
llmaudit.configure(storage=store)
client = OpenAI(
    api_key="sk-example-FAKE",
    http_client=httpx2.Client(transport=llmaudit.AuditTransport(httpx2.MockTransport(handler))),
)

with llmaudit.session("stream-demo"):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Stream me a sentence"}], stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
print("caller received", len(pieces), "chunks:", "".join(pieces).strip())

llmaudit.flush()
with llmaudit.open(store) as log:
    (record,) = log.records(session="stream-demo")
    message = record.response["choices"][0]["message"]  # type: ignore[index]
    print("record holds:", message["content"].strip())
    print(f"streamed={record.is_stream} incomplete={record.incomplete}", end=" ")
    print(f"first token after {record.ttft_ms:.2f} ms")
llmaudit.shutdown()
