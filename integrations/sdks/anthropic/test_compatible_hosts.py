"""The real anthropic SDK (on httpx2) pointed at a host other than api.anthropic.com (a corporate
gateway, a proxy): recorded by the shape of its requests and its ``anthropic-version`` header, with
model and tokens, streamed or not, sync and async; priced once the user maps the host to Anthropic."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from anthropic import Anthropic, AsyncAnthropic

import llmaudit
from integrations.sdks.anthropic.test_anthropic import MESSAGE, MESSAGES, MODEL, respond
from integrations.sdks.conftest import FAKE_KEY, Recorder

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.cost import cost_usd

pytestmark = pytest.mark.integration

GATEWAY = "https://llm.corp.example/anthropic"


def _client(auditor: Any, seen: list[str]) -> Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.path)
        return respond(request)

    transport = llmaudit.transports.httpx2.AuditTransport(httpx2.MockTransport(handler), auditor=auditor)
    return Anthropic(api_key=FAKE_KEY, base_url=GATEWAY, http_client=httpx2.Client(transport=transport))


def test_a_message_through_a_gateway_is_recorded(recorder: Recorder) -> None:
    seen: list[str] = []
    message = _client(recorder.auditor, seen).messages.create(
        model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES
    )
    assert message.content[0].text == "Hello!"  # type: ignore[union-attr]
    assert seen == ["/anthropic/v1/messages"]
    record = recorder.one()
    assert (record.provider, record.operation, record.model) == ("anthropic_compatible", "messages", MODEL)
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (12, 6, 18)
    assert record.response == MESSAGE
    assert record.cost_usd is None  # whose prices apply there, nobody said
    assert recorder.auditor.stats().unmatched == 0


def test_a_stream_through_a_gateway_is_reassembled_with_its_usage(recorder: Recorder) -> None:
    with _client(recorder.auditor, []).messages.stream(
        model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES
    ) as stream:
        final = stream.get_final_message()
    record = recorder.one()
    assert (record.is_stream, record.provider) == (True, "anthropic_compatible")
    assert (record.input_tokens, record.output_tokens) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )
    assert record.response["content"][1]["input"] == {"location": "San Francisco, CA"}  # type: ignore[index]


def test_token_counting_through_a_gateway_is_recorded(recorder: Recorder) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"input_tokens": 14})

    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(handler), auditor=recorder.auditor
    )
    client = Anthropic(api_key=FAKE_KEY, base_url=GATEWAY, http_client=httpx2.Client(transport=transport))
    assert client.messages.count_tokens(model="claude-sonnet-4-0", messages=MESSAGES).input_tokens == 14
    record = recorder.one()
    assert (record.operation, record.input_tokens) == ("messages.count_tokens", 14)


def test_a_gateway_mapped_to_anthropic_is_priced(tmp_path: Path) -> None:
    """``providers={"llm.corp.example/anthropic": "anthropic"}``: Anthropic's name and prices."""
    options = {"providers": {"llm.corp.example/anthropic": "anthropic"}, "spool_dir": str(tmp_path)}
    with llmaudit.Auditor(f"memory://{uuid.uuid4().hex}", **options) as auditor:
        _client(auditor, []).messages.create(model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES)
        assert auditor.flush(10)
        (record,) = auditor.storage.read(llmaudit.Query())
    assert record.provider == "anthropic"
    expected = cost_usd("anthropic", MODEL, 12, 6, record.created_at)
    assert expected is not None and record.cost_usd == pytest.approx(expected)


@pytest.mark.asyncio
async def test_the_async_client_through_a_gateway_is_recorded(recorder: Recorder) -> None:
    transport = llmaudit.transports.httpx2.AsyncAuditTransport(
        httpx2.MockTransport(respond), auditor=recorder.auditor
    )
    client = AsyncAnthropic(
        api_key=FAKE_KEY,
        base_url="http://127.0.0.1:8080",
        http_client=httpx2.AsyncClient(transport=transport),
    )
    message = await client.messages.create(model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES)
    assert message.usage.output_tokens == 6
    record = recorder.one()
    assert (record.provider, record.operation, record.total_tokens) == (
        "anthropic_compatible",
        "messages",
        18,
    )
