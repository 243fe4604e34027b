"""The real clients that send through aiohttp, recorded by llmaudit.instrument() with no code change:
litellm's async path and the openai and anthropic SDKs' aiohttp backends.

litellm.acompletion(model="openai/...") calls the openai SDK's AsyncOpenAI with litellm's own
``httpx.AsyncClient(transport=LiteLLMAiohttpTransport(...))``: the transport is no
``httpx.AsyncHTTPTransport`` (which instrument() patches), it sends with an ``aiohttp.ClientSession``
that it creates on first use (``session.request(..., auto_decompress=False)``) and reads with
``content.iter_chunked()``. ``openai.DefaultAioHttpClient`` and ``anthropic.DefaultAioHttpClient`` are
httpx2 clients over the vendored httpx-aiohttp transport, which does the same. google-genai's async
client sends with its own ``aiohttp.ClientSession`` subclass when aiohttp is installed. instrument()
records all of them in the aiohttp layer.

instrument() patches httpx, httpx2 and aiohttp at once here, and each call must be recorded exactly
once, with the provider's view (model, usage, cost). A local server on 127.0.0.1 answers in the
providers' wire formats (gzipped JSON, SSE in small chunks); the SDKs reach it as their HTTP proxy, so
their requests keep the official URLs and are matched as those providers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

import llmaudit
from integrations.sdks.aiohttp.server import WireServer, json_or_sse
from integrations.sdks.anthropic.test_anthropic import MESSAGE
from integrations.sdks.anthropic.test_anthropic import STREAM as MESSAGE_STREAM
from integrations.sdks.conftest import FAKE_KEY, Recorder
from integrations.sdks.gemini.test_gemini import RESPONSE as GEMINI_RESPONSE
from integrations.sdks.gemini.test_gemini import STREAM as GEMINI_STREAM
from integrations.sdks.openai.test_openai import COMPLETION
from integrations.sdks.openai.test_openai import STREAM as COMPLETION_STREAM

pytestmark = [
    pytest.mark.integration,
    # litellm fetches a remote price map at import; offline, it warns and falls back to its bundled copy
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

MESSAGES = [{"role": "user", "content": "hi"}]
CLAUDE = "claude-sonnet-4-20250514"


@pytest.fixture
def server() -> Iterator[WireServer]:
    routes = {
        "/chat/completions": json_or_sse(COMPLETION, COMPLETION_STREAM),
        "/messages": json_or_sse(MESSAGE, MESSAGE_STREAM),
        ":generateContent": json_or_sse(GEMINI_RESPONSE, b""),
        ":streamGenerateContent": lambda body: (200, {"content-type": "text/event-stream"}, [GEMINI_STREAM]),
    }
    with WireServer(routes) as s:
        yield s


@pytest.fixture
def instrumented(recorder: Recorder) -> Iterator[Recorder]:
    llmaudit.instrument(auditor=recorder.auditor)
    yield recorder
    llmaudit.uninstrument()


def _openai(server: WireServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=FAKE_KEY,
        base_url="http://api.openai.com/v1",
        http_client=openai.DefaultAioHttpClient(proxy=server.url),
        max_retries=0,
    )


def _anthropic(server: WireServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=FAKE_KEY,
        base_url="http://api.anthropic.com",
        http_client=anthropic.DefaultAioHttpClient(proxy=server.url),
        max_retries=0,
    )


@pytest.mark.asyncio
async def test_openai_aiohttp_client_call_is_recorded_once(
    server: WireServer, instrumented: Recorder
) -> None:
    """A gzipped chat completion over openai.DefaultAioHttpClient: one record, the provider's view."""
    async with _openai(server) as client:
        result = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert result.choices[0].message.content == "Hello! How can I help?"
    assert len(server.seen) == 1
    record = instrumented.one()
    assert (record.provider, record.model, record.total_tokens) == ("openai", "gpt-4o-mini-2024-07-18", 29)
    assert record.response == COMPLETION
    assert record.cost_usd is not None and record.cost_usd > 0
    assert record.url == "http://api.openai.com/v1/chat/completions"


@pytest.mark.asyncio
async def test_openai_aiohttp_client_stream_is_recorded_once(
    server: WireServer, instrumented: Recorder
) -> None:
    """Every chunk reaches the SDK; the record reassembles the stream and carries its usage."""
    async with _openai(server) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello there"
    record = instrumented.one()
    assert (record.is_stream, record.incomplete) == (True, False)
    assert record.response["choices"][0]["message"]["content"] == "Hello there"  # type: ignore[index]
    assert (record.provider, record.total_tokens) == ("openai", 21)


@pytest.mark.asyncio
async def test_anthropic_aiohttp_client_call_is_recorded_once(
    server: WireServer, instrumented: Recorder
) -> None:
    """A gzipped message over anthropic.DefaultAioHttpClient: one record, the provider's view."""
    async with _anthropic(server) as client:
        message = await client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    assert message.content[0].text == "Hello!"  # type: ignore[union-attr]
    assert len(server.seen) == 1
    record = instrumented.one()
    assert (record.provider, record.operation, record.model) == ("anthropic", "messages", CLAUDE)
    assert (record.input_tokens, record.output_tokens) == (12, 6)
    assert record.cost_usd is not None and record.cost_usd > 0


@pytest.mark.asyncio
async def test_anthropic_aiohttp_client_stream_is_recorded_once(
    server: WireServer, instrumented: Recorder
) -> None:
    """The SDK's stream helper gets the whole message; the record reassembles it, tool call included."""
    async with _anthropic(server) as client:
        async with client.messages.stream(model=CLAUDE, max_tokens=64, messages=MESSAGES) as stream:  # type: ignore[arg-type]
            final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    record = instrumented.one()
    assert (record.provider, record.is_stream, record.incomplete) == ("anthropic", True, False)
    assert (record.input_tokens, record.output_tokens) == (472, 89)
    blocks = record.response["content"]  # type: ignore[index]
    assert blocks[0]["text"] == "Okay, let me check."
    assert blocks[1]["input"] == {"location": "San Francisco, CA"}


@pytest.mark.asyncio
async def test_openai_stream_closed_early_over_aiohttp_is_recorded_incomplete(
    server: WireServer, instrumented: Recorder
) -> None:
    """The SDK closing the stream after its first chunk gives one incomplete record."""
    async with _openai(server) as client:
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        async for _ in stream:
            break
        await stream.close()
    record = instrumented.one()
    assert (record.is_stream, record.incomplete) == (True, True)


@pytest.mark.asyncio
async def test_litellm_acompletion_is_recorded(server: WireServer, instrumented: Recorder) -> None:
    """litellm.acompletion sends over its aiohttp transport: instrument() records it, once."""
    result = await litellm.acompletion(
        model="openai/gpt-4o-mini", api_key=FAKE_KEY, api_base=server.url + "/v1", messages=MESSAGES
    )
    assert result.choices[0].message.content == "Hello! How can I help?"
    record = instrumented.one()
    assert (record.provider, record.model, record.total_tokens) == (
        "openai_compatible",
        "gpt-4o-mini-2024-07-18",
        29,
    )


@pytest.mark.asyncio
async def test_litellm_acompletion_stream_is_recorded(server: WireServer, instrumented: Recorder) -> None:
    """A streamed litellm.acompletion: every chunk reaches the caller, one complete record."""
    stream = await litellm.acompletion(
        model="openai/gpt-4o-mini",
        api_key=FAKE_KEY,
        api_base=server.url + "/v1",
        messages=MESSAGES,
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == "Hello there"
    record = instrumented.one()
    assert (record.is_stream, record.incomplete, record.total_tokens) == (True, False, 21)
    assert record.response["choices"][0]["message"]["content"] == "Hello there"  # type: ignore[index]


@pytest.mark.asyncio
async def test_an_explicit_audit_transport_over_an_aiohttp_transport_records_once(
    server: WireServer, instrumented: Recorder
) -> None:
    """An AsyncAuditTransport wrapped around litellm's aiohttp transport, with instrument() covering
    httpx and aiohttp too: the outer transport records, the aiohttp layer below passes through; the
    same session used directly is recorded by the aiohttp layer. One record per call either way."""
    import aiohttp
    import httpx
    from litellm.llms.custom_httpx.aiohttp_transport import LiteLLMAiohttpTransport

    transport = llmaudit.AsyncAuditTransport(
        LiteLLMAiohttpTransport(client=aiohttp.ClientSession), auditor=instrumented.auditor, client="outer"
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post(server.url + "/v1/chat/completions", json={"model": "gpt-4o-mini"})
        assert response.json() == COMPLETION
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/v1/chat/completions", json={"model": "gpt-4o-mini"}) as r:
            await r.read()
    clients = sorted((r.client or "", r.total_tokens) for r in instrumented.records())
    assert clients == [("openai_compatible", 29), ("outer", 29)]


@pytest.mark.asyncio
async def test_google_genai_async_client_over_aiohttp_is_recorded_once(
    server: WireServer, instrumented: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """google-genai's async client (aiohttp when installed), plain and streamed: one record per call
    with the model and usage. Its session trusts the environment's proxy, which is the local server."""
    monkeypatch.setenv("HTTP_PROXY", server.url)
    client = genai.Client(
        api_key=FAKE_KEY, http_options=types.HttpOptions(base_url="http://generativelanguage.googleapis.com/")
    )
    result = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    assert result.text == "Hello from Gemini"
    stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi")
    assert "".join([c.text or "" async for c in stream]) == "Hello world"
    await client.aio.aclose()
    plain, streamed = sorted(instrumented.records(), key=lambda r: r.created_at)
    assert (plain.provider, plain.model, plain.total_tokens) == ("gemini", "gemini-2.5-flash", 9)
    assert (streamed.is_stream, streamed.incomplete, streamed.total_tokens) == (True, False, 7)
    assert plain.url is not None and FAKE_KEY not in plain.url
