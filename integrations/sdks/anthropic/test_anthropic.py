"""The real anthropic SDK (on httpx2; it refuses an httpx.Client) through llmaudit."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic import Anthropic, AsyncAnthropic

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder, chunks, gzipped, sse

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-4-20250514"
MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "output_tokens": 6,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    },
}
STREAM = sse(
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                **MESSAGE,
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 472, "output_tokens": 2},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay,"}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " let me check."},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": 'ncisco, CA"}'},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
)
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def respond(request: httpx2.Request) -> httpx2.Response:
    # anthropic 2.x sends the key as a bearer token (1.x used x-api-key): either way, never stored
    assert FAKE_KEY in (request.headers.get("x-api-key", ""), request.headers.get("authorization", "")[7:])
    body = json.loads(request.content)
    if body["messages"][-1]["content"] == "overload":
        return httpx2.Response(529, json=OVERLOADED)
    if body.get("stream"):
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(chunks(STREAM))
        )
    return httpx2.Response(
        200,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
        content=gzipped(MESSAGE),
    )


def client(recorder: Recorder, **options: Any) -> Anthropic:
    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(respond), auditor=recorder.auditor
    )
    return Anthropic(api_key=FAKE_KEY, http_client=httpx2.Client(transport=transport), **options)


MESSAGES: Any = [{"role": "user", "content": "Hello"}]


def test_message_is_parsed_by_the_sdk_and_recorded_with_usage(recorder: Recorder) -> None:
    """A gzip-encoded message: the SDK reads it; the record has model, usage, session."""
    with llmaudit.session("a-sess", user="alice"):
        message = client(recorder).messages.create(
            model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES
        )
    assert message.content[0].text == "Hello!"  # type: ignore[union-attr]
    record = recorder.one()
    assert (record.provider, record.operation, record.model) == ("anthropic", "messages", MODEL)
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (12, 6, 18)
    assert (record.session_key, record.user) == ("a-sess", "alice")
    assert record.response == MESSAGE


def test_stream_with_tool_use_is_reassembled_as_the_sdk_sees_it(recorder: Recorder) -> None:
    """The SDK's own accumulated message and the record agree on text, tool input and usage."""
    with client(recorder).messages.stream(
        model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES
    ) as stream:
        final = stream.get_final_message()
    record = recorder.one()
    assert record.is_stream
    assert record.response["content"] == [block.model_dump(exclude_none=True) for block in final.content]  # type: ignore[index]
    assert record.response["content"][1]["input"] == {"location": "San Francisco, CA"}  # type: ignore[index]
    assert record.response["stop_reason"] == final.stop_reason == "tool_use"  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )


def test_overloaded_error_is_recorded_for_each_retry(recorder: Recorder) -> None:
    """529 overloaded with one retry: two records, attempts 0 and 1, the error body kept."""
    with pytest.raises(anthropic.InternalServerError):
        client(recorder, max_retries=1).messages.create(
            model="claude-sonnet-4-0", max_tokens=10, messages=[{"role": "user", "content": "overload"}]
        )
    records = sorted(recorder.records(), key=lambda r: r.attempt)
    assert [(r.attempt, r.status_code) for r in records] == [(0, 529), (1, 529)]
    assert records[0].response == OVERLOADED


@pytest.mark.asyncio
async def test_async_client_is_recorded(recorder: Recorder) -> None:
    """AsyncAnthropic on httpx2.AsyncClient with AsyncAuditTransport."""
    transport = llmaudit.transports.httpx2.AsyncAuditTransport(
        httpx2.MockTransport(respond), auditor=recorder.auditor
    )
    aclient = AsyncAnthropic(api_key=FAKE_KEY, http_client=httpx2.AsyncClient(transport=transport))
    message = await aclient.messages.create(model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES)
    assert message.usage.output_tokens == 6
    assert recorder.one().total_tokens == 18


def test_the_sdk_refuses_a_plain_httpx_client() -> None:
    """Documented behaviour we rely on: anthropic 2.x only takes httpx2 clients."""
    with pytest.raises(TypeError):
        Anthropic(api_key=FAKE_KEY, http_client=httpx.Client())  # type: ignore[arg-type]
