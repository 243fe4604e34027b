"""The real openai SDK (on httpx2, and its legacy plain-httpx escape hatch) through llmaudit."""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2
import pytest
from openai import AsyncOpenAI, OpenAI, RateLimitError

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder, chunks, gzipped, sse

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.cost import cost_usd

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini-2024-07-18"
COMPLETION = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I help?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_06737a9306",
}


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-stream1",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": choices,
        "usage": usage,
    }


STREAM = sse(
    (None, _chunk({"role": "assistant", "content": "", "refusal": None})),
    (None, _chunk({"content": "Hello"})),
    (None, _chunk({"content": " there"})),
    (None, _chunk({}, "stop")),
    (None, _chunk(None, usage={"prompt_tokens": 19, "completion_tokens": 2, "total_tokens": 21})),
    done=True,
)
TOOL_STREAM = sse(
    (
        None,
        _chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            }
        ),
    ),
    (None, _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]})),
    (None, _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]})),
    (None, _chunk({}, "tool_calls")),
    done=True,
)
ERROR_429 = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


async def _async_chunks(data: bytes) -> Any:
    for piece in chunks(data):
        yield piece


def handler(hx: Any, *, is_async: bool = False) -> Any:
    def respond(request: Any) -> Any:
        assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
        body = json.loads(request.content)
        if body["messages"][-1]["content"] == "rate limit me":
            return hx.Response(429, json=ERROR_429, headers={"retry-after-ms": "1"})
        if body.get("stream"):
            data = TOOL_STREAM if body.get("tools") else STREAM
            content = _async_chunks(data) if is_async else iter(chunks(data))
            return hx.Response(200, headers={"content-type": "text/event-stream"}, content=content)
        return hx.Response(
            200,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
            content=gzipped(COMPLETION),
        )

    return respond


def sync_client(recorder: Recorder, **options: Any) -> OpenAI:
    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(handler(httpx2)), auditor=recorder.auditor
    )
    return OpenAI(api_key=FAKE_KEY, http_client=httpx2.Client(transport=transport), **options)


MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def test_non_streaming_gzip_completion_is_parsed_by_the_sdk_and_recorded(recorder: Recorder) -> None:
    """A gzip-encoded completion: the SDK parses it unchanged; the record holds it decoded, with usage."""
    with llmaudit.session("sess-1", user="alice"):
        completion = sync_client(recorder).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello! How can I help?"
    assert completion.usage is not None and completion.usage.total_tokens == 29
    record = recorder.one()
    assert (record.provider, record.operation, record.model) == ("openai", "chat.completions", MODEL)
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (19, 10, 29)
    assert record.cost_usd == pytest.approx(cost_usd("openai", MODEL, 19, 10, record.created_at))
    assert record.cost_usd is not None and record.cost_usd > 0
    assert record.headers["request"]["x-stainless-lang"] == "python"  # allow-listed SDK headers kept
    assert "authorization" not in record.headers["request"]
    assert (record.session_key, record.user, record.status_code, record.is_stream) == (
        "sess-1",
        "alice",
        200,
        False,
    )
    assert record.response == COMPLETION
    assert record.request == {"model": "gpt-4o-mini", "messages": MESSAGES}


def test_streamed_completion_is_reassembled(recorder: Recorder) -> None:
    """The SDK iterates the chunks; the record holds the joined text, finish reason and usage."""
    stream = sync_client(recorder).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello there"
    record = recorder.one()
    assert record.is_stream
    assert record.response["choices"][0]["message"]["content"] == "Hello there"  # type: ignore[index]
    assert record.response["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens) == (19, 2)


def test_streamed_tool_call_arguments_are_joined(recorder: Recorder) -> None:
    """Tool-call argument fragments become one call in the record, as the SDK's own helper builds it."""
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    stream = sync_client(recorder).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=tools, stream=True
    )
    pieces = [
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in stream  # type: ignore[index,union-attr]
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert "".join(p or "" for p in pieces) == '{"location": "Paris"}'
    call = recorder.one().response["choices"][0]["message"]["tool_calls"][0]  # type: ignore[index]
    assert call == {
        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
    }


def test_rate_limit_retries_are_each_recorded_with_their_attempt(recorder: Recorder) -> None:
    """The SDK retries a 429 twice: three records, attempts 0, 1, 2, each with the error body."""
    client = sync_client(recorder, max_retries=2)
    with pytest.raises(RateLimitError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "rate limit me"}]
        )
    records = sorted(recorder.records(), key=lambda r: r.attempt)
    assert [r.attempt for r in records] == [0, 1, 2]
    assert all(r.status_code == 429 and r.response == ERROR_429 for r in records)
    assert all(r.model == "gpt-4o-mini" for r in records)


@pytest.mark.asyncio
async def test_async_client_streams_and_records(recorder: Recorder) -> None:
    """AsyncOpenAI on httpx2.AsyncClient with AsyncAuditTransport."""
    transport = llmaudit.transports.httpx2.AsyncAuditTransport(
        httpx2.MockTransport(handler(httpx2, is_async=True)), auditor=recorder.auditor
    )
    client = AsyncOpenAI(api_key=FAKE_KEY, http_client=httpx2.AsyncClient(transport=transport))
    async with llmaudit.session("async-sess"):
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello there"
    record = recorder.one()
    assert (record.session_key, record.is_stream, record.incomplete) == ("async-sess", True, False)


def test_legacy_plain_httpx_client_is_still_recorded(recorder: Recorder) -> None:
    """The SDK's escape hatch: a plain httpx.Client with llmaudit's httpx-branch transport."""
    transport = llmaudit.transports.httpx.AuditTransport(
        httpx.MockTransport(handler(httpx)), auditor=recorder.auditor
    )
    client = OpenAI(api_key=FAKE_KEY, http_client=httpx.Client(transport=transport))
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).usage.total_tokens == 29  # type: ignore[union-attr]
    assert recorder.one().model == MODEL
