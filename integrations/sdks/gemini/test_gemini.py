"""The real google-genai SDK (on httpx2) through llmaudit: generateContent and streamGenerateContent."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from google import genai
from google.genai import types

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder, chunks, sse

pytestmark = pytest.mark.integration

RESPONSE = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Hello from Gemini"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 5,
        "candidatesTokenCount": 4,
        "totalTokenCount": 9,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}],
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "mB3kaJ7uL9-j1e8P",
}
STREAM = sse(
    (
        None,
        {
            "candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
        },
    ),
    (
        None,
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": " world"}], "role": "model"},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
        },
    ),
)


def respond(request: httpx2.Request) -> httpx2.Response:
    assert request.headers.get("x-goog-api-key") == FAKE_KEY or request.url.params.get("key") == FAKE_KEY
    if request.url.path.endswith(":streamGenerateContent"):
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(chunks(STREAM))
        )
    return httpx2.Response(200, json=RESPONSE)


def client(recorder: Recorder) -> Any:
    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(respond), auditor=recorder.auditor
    )
    return genai.Client(
        api_key=FAKE_KEY, http_options=types.HttpOptions(httpx_client=httpx2.Client(transport=transport))
    )


def test_generate_content_is_recorded_with_model_and_usage(recorder: Recorder) -> None:
    """The SDK parses the response; the record names the model from the path/modelVersion and usage."""
    with llmaudit.session("g-sess", user="carol"):
        result = client(recorder).models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    assert result.text == "Hello from Gemini"
    record = recorder.one()
    assert (record.provider, record.operation, record.model) == (
        "gemini",
        "generate_content",
        "gemini-2.5-flash",
    )
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (5, 4, 9)
    assert (record.session_key, record.user) == ("g-sess", "carol")
    assert record.url is not None and FAKE_KEY not in record.url


def test_stream_generate_content_is_reassembled(recorder: Recorder) -> None:
    """streamGenerateContent?alt=sse: the SDK yields the chunks, the record holds the joined text."""
    pieces = [
        c.text
        for c in client(recorder).models.generate_content_stream(model="gemini-2.5-flash", contents="Hi")
    ]
    assert "".join(p or "" for p in pieces) == "Hello world"
    record = recorder.one()
    assert record.is_stream
    assert record.response["candidates"][0]["content"]["parts"] == [{"text": "Hello world"}]  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (5, 2, 7)
