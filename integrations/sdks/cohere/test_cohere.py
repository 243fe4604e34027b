"""The real cohere SDK (ClientV2, on the httpx branch) through llmaudit, mocked with respx."""

from __future__ import annotations

import json
from typing import Any

import cohere
import httpx
import pytest
import respx

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder, sse

pytestmark = pytest.mark.integration

CHAT = {
    "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    "finish_reason": "COMPLETE",
    "message": {"role": "assistant", "content": [{"type": "text", "text": "Bonjour !"}]},
    "usage": {
        "billed_units": {"input_tokens": 5, "output_tokens": 3},
        "tokens": {"input_tokens": 71, "output_tokens": 3},
    },
}
STREAM = sse(
    (
        "message-start",
        {
            "type": "message-start",
            "id": "s1",
            "delta": {
                "message": {
                    "role": "assistant",
                    "content": [],
                    "tool_plan": "",
                    "tool_calls": [],
                    "citations": [],
                }
            },
        },
    ),
    (
        "content-start",
        {
            "type": "content-start",
            "index": 0,
            "delta": {"message": {"content": {"type": "text", "text": ""}}},
        },
    ),
    (
        "content-delta",
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Bon"}}}},
    ),
    (
        "content-delta",
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "jour"}}}},
    ),
    ("content-end", {"type": "content-end", "index": 0}),
    (
        "message-end",
        {
            "type": "message-end",
            "delta": {
                "finish_reason": "COMPLETE",
                "usage": {
                    "billed_units": {"input_tokens": 5, "output_tokens": 2},
                    "tokens": {"input_tokens": 71, "output_tokens": 2},
                },
            },
        },
    ),
)


def respond(request: httpx.Request) -> httpx.Response:
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    if json.loads(request.content).get("stream"):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=STREAM)
    return httpx.Response(200, json=CHAT)


def client(recorder: Recorder) -> Any:
    transport = llmaudit.transports.httpx.AuditTransport(
        auditor=recorder.auditor
    )  # default inner: respx-mocked
    return cohere.ClientV2(api_key=FAKE_KEY, httpx_client=httpx.Client(transport=transport))


@respx.mock
def test_chat_is_recorded_with_model_from_the_request_and_usage(recorder: Recorder) -> None:
    """v2 chat carries no model in its response: the request names it; usage comes from tokens."""
    respx.post("https://api.cohere.com/v2/chat").mock(side_effect=respond)
    with llmaudit.session("co-sess"):
        result = client(recorder).chat(
            model="command-a-03-2025", messages=[{"role": "user", "content": "Salut"}]
        )
    assert result.message.content[0].text == "Bonjour !"  # type: ignore[index,union-attr]
    record = recorder.one()
    assert (record.provider, record.operation, record.model) == ("cohere", "chat", "command-a-03-2025")
    assert (record.input_tokens, record.output_tokens, record.session_key) == (71, 3, "co-sess")


@respx.mock
def test_chat_stream_is_reassembled(recorder: Recorder) -> None:
    """message-start … message-end become one chat response in the record."""
    respx.post("https://api.cohere.com/v2/chat").mock(side_effect=respond)
    events = list(
        client(recorder).chat_stream(model="command-a-03-2025", messages=[{"role": "user", "content": "Hi"}])
    )
    assert events[-1].type == "message-end"
    record = recorder.one()
    assert record.response["message"]["content"] == [{"type": "text", "text": "Bonjour"}]  # type: ignore[index]
    assert (record.is_stream, record.output_tokens) == (True, 2)
