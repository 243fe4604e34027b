"""Ollama's NDJSON /api/chat stream through a plain httpx client with AuditTransport."""

from __future__ import annotations

import json

import httpx
import pytest

import llmaudit
from integrations.sdks.conftest import Recorder

pytestmark = pytest.mark.integration

LINES = [
    {
        "model": "llama3.2",
        "created_at": "2026-11-24T10:00:00.1Z",
        "message": {"role": "assistant", "content": "The"},
        "done": False,
    },
    {
        "model": "llama3.2",
        "created_at": "2026-11-24T10:00:00.2Z",
        "message": {"role": "assistant", "content": " sky"},
        "done": False,
    },
    {
        "model": "llama3.2",
        "created_at": "2026-11-24T10:00:00.3Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "total_duration": 4883583458,
        "load_duration": 1334875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342546000,
        "eval_count": 282,
        "eval_duration": 4535599000,
    },
]


def test_ndjson_stream_is_reassembled_with_ollama_counts(recorder: Recorder) -> None:
    """Each NDJSON line passes to the caller; the record joins the message and takes the counts."""
    body = "".join(json.dumps(line) + "\n" for line in LINES).encode()

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "application/x-ndjson"}, content=iter([body[:60], body[60:]])
        )

    transport = llmaudit.AuditTransport(httpx.MockTransport(respond), auditor=recorder.auditor)
    with httpx.Client(transport=transport, base_url="http://localhost:11434") as client:
        with client.stream("POST", "/api/chat", json={"model": "llama3.2", "messages": []}) as response:
            received = [json.loads(line) for line in response.iter_lines() if line]
    assert received == LINES
    record = recorder.one()
    assert (record.provider, record.operation, record.model) == ("ollama", "chat", "llama3.2")
    assert record.response["message"]["content"] == "The sky"  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens, record.total_tokens, record.is_stream) == (
        26,
        282,
        308,
        True,
    )
