"""The real mistralai SDK (3.x, on httpx2) through llmaudit: chat, streamed with usage in the last chunk."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from mistralai.client import Mistral

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder, chunks, sse

pytestmark = pytest.mark.integration

MODEL = "mistral-small-latest"
COMPLETION = {
    "id": "cf79f7daaee244b1a0ae5c7b1444424a",
    "object": "chat.completion",
    "model": MODEL,
    "created": 1759500534,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Salut !", "tool_calls": None, "prefix": False},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12},
}


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "m1",
        "object": "chat.completion.chunk",
        "created": 1759500534,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


STREAM = sse(
    (None, _chunk({"role": "assistant", "content": ""})),
    (None, _chunk({"content": "Sa"})),
    (
        None,
        _chunk(
            {"content": "lut"}, "stop", usage={"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}
        ),
    ),
    done=True,
)


def respond(request: httpx2.Request) -> httpx2.Response:
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    if json.loads(request.content).get("stream"):
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(chunks(STREAM))
        )
    return httpx2.Response(200, json=COMPLETION)


def client(recorder: Recorder) -> Mistral:
    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(respond), auditor=recorder.auditor
    )
    return Mistral(api_key=FAKE_KEY, client=httpx2.Client(transport=transport))


def test_chat_is_recorded(recorder: Recorder) -> None:
    """mistralai's chat.complete parses the response; the record has provider mistral and usage."""
    result = client(recorder).chat.complete(model=MODEL, messages=[{"role": "user", "content": "Bonjour"}])
    assert result.choices[0].message.content == "Salut !"  # type: ignore[index,union-attr]
    record = recorder.one()
    assert (record.provider, record.operation, record.model, record.total_tokens) == (
        "mistral",
        "chat.completions",
        MODEL,
        12,
    )


def test_chat_stream_is_reassembled_with_usage_from_the_last_chunk(recorder: Recorder) -> None:
    """Streamed text joins; usage arrives with the final chunk."""
    events = client(recorder).chat.stream(model=MODEL, messages=[{"role": "user", "content": "Bonjour"}])
    text = "".join(str(e.data.choices[0].delta.content or "") for e in events)
    assert text == "Salut"
    record = recorder.one()
    assert record.response["choices"][0]["message"]["content"] == "Salut"  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens, record.is_stream) == (8, 2, True)
