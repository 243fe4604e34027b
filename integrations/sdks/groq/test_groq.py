"""The real groq SDK (on the httpx branch) through llmaudit: OpenAI format with x_groq usage."""

from __future__ import annotations

import json
from typing import Any

import groq
import httpx
import pytest

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder, chunks, gzipped, sse

pytestmark = pytest.mark.integration

MODEL = "llama-3.3-70b-versatile"
COMPLETION = {
    "id": "chatcmpl-f51b2cd2-bef7-417e-964e-a08f0b513c22",
    "object": "chat.completion",
    "created": 1730241104,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Fast hello"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "queue_time": 0.037,
        "prompt_tokens": 18,
        "prompt_time": 0.0007,
        "completion_tokens": 3,
        "completion_time": 0.013,
        "total_tokens": 21,
        "total_time": 0.014,
    },
    "system_fingerprint": "fp_179b0f92c9",
    "x_groq": {"id": "req_01jbd6g2qdfw2adyrt2az8hz4w"},
}


def _chunk(delta: dict[str, Any], finish: str | None = None, x_groq: Any = None) -> dict[str, Any]:
    out = {
        "id": "chatcmpl-g1",
        "object": "chat.completion.chunk",
        "created": 1730241104,
        "model": MODEL,
        "system_fingerprint": "fp_179b0f92c9",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if x_groq is not None:
        out["x_groq"] = x_groq
    return out


STREAM = sse(
    (None, _chunk({"role": "assistant", "content": ""}, x_groq={"id": "req_01"})),
    (None, _chunk({"content": "Fast"})),
    (None, _chunk({"content": " hello"})),
    (
        None,
        _chunk(
            {},
            "stop",
            x_groq={
                "id": "req_01",
                "usage": {"prompt_tokens": 18, "completion_tokens": 2, "total_tokens": 20},
            },
        ),
    ),
    done=True,
)


def respond(request: httpx.Request) -> httpx.Response:
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    if json.loads(request.content).get("stream"):
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(chunks(STREAM))
        )
    return httpx.Response(
        200,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
        content=gzipped(COMPLETION),
    )


def client(recorder: Recorder) -> groq.Groq:
    transport = llmaudit.transports.httpx.AuditTransport(
        httpx.MockTransport(respond), auditor=recorder.auditor
    )
    return groq.Groq(api_key=FAKE_KEY, http_client=httpx.Client(transport=transport))


def test_gzip_completion_is_recorded(recorder: Recorder) -> None:
    """On the httpx branch with a gzip body: the SDK parses it, the record has Groq's usage."""
    result = client(recorder).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert result.choices[0].message.content == "Fast hello"
    record = recorder.one()
    assert (record.provider, record.model, record.total_tokens) == ("groq", MODEL, 21)


def test_stream_usage_from_x_groq_is_recorded(recorder: Recorder) -> None:
    """Groq reports streamed usage in x_groq.usage of the last chunk: the record carries it."""
    stream = client(recorder).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "Fast hello"
    record = recorder.one()
    assert record.response["choices"][0]["message"]["content"] == "Fast hello"  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (18, 2, 20)
