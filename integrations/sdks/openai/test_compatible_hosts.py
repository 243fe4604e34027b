"""The real openai SDK (on httpx2) pointed at hosts other than api.openai.com: a LiteLLM-proxy-style
base URL without /v1, a gateway base ending in /openai, Azure API Management, and a user's mapping
that says whose prices apply. Each call is recorded with its provider, operation, model and tokens;
a cost only where the host or the mapping says which prices apply."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder, chunks, sse
from integrations.sdks.openai.test_openai import COMPLETION, MESSAGES, MODEL, _chunk

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.cost import cost_usd

pytestmark = pytest.mark.integration

STREAM = sse(
    (None, _chunk({"role": "assistant", "content": ""})),
    (None, _chunk({"content": "Hi"})),
    (None, _chunk({}, "stop")),
    done=True,
)
USAGE = _chunk(None, usage={"prompt_tokens": 19, "completion_tokens": 1, "total_tokens": 20})


def _handler(seen: list[str], headers: dict[str, str] | None = None, model: str = MODEL) -> Any:
    def respond(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.path)
        body = json.loads(request.content)
        if body.get("stream"):
            data = STREAM
            if (body.get("stream_options") or {}).get("include_usage"):
                data = data.replace(b"data: [DONE]", sse((None, USAGE)) + b"data: [DONE]")
            return httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=iter(chunks(data))
            )
        return httpx2.Response(200, json={**COMPLETION, "model": model}, headers=headers)

    return respond


def _openai(auditor: Any, base_url: str, seen: list[str], **options: Any) -> OpenAI:
    handler = _handler(seen, options.pop("headers", None), options.pop("model", MODEL))
    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(handler), auditor=auditor, **options
    )
    return OpenAI(api_key=FAKE_KEY, base_url=base_url, http_client=httpx2.Client(transport=transport))


@pytest.mark.parametrize(
    ("base_url", "path"),
    [
        ("http://127.0.0.1:8765", "/chat/completions"),  # a LiteLLM proxy, vLLM... without /v1
        ("https://llm.corp.example/openai", "/openai/chat/completions"),  # a gateway's prefix
    ],
)
def test_a_compatible_base_url_is_recorded_with_tokens_and_no_guessed_price(
    recorder: Recorder, base_url: str, path: str
) -> None:
    seen: list[str] = []
    completion = _openai(recorder.auditor, base_url, seen).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    assert completion.usage is not None and completion.usage.total_tokens == 29
    assert seen == [path]
    record = recorder.one()
    assert (record.provider, record.operation, record.model) == (
        "openai_compatible",
        "chat.completions",
        MODEL,
    )
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (19, 10, 29)
    assert record.cost_usd is None  # an unknown host: whose prices, nobody said
    assert recorder.auditor.stats().unmatched == 0


def test_stream_usage_gives_streams_on_a_compatible_host_their_tokens(recorder: Recorder) -> None:
    """``stream_usage=True`` asks for the usage chunk there too; the SDK never sees it."""
    seen: list[str] = []
    client = _openai(recorder.auditor, "http://127.0.0.1:8765", seen, stream_usage=True)
    received = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Hi"
    assert all(c.usage is None for c in received)  # the added chunk is filtered out
    record = recorder.one()
    assert (record.is_stream, record.input_tokens, record.output_tokens) == (True, 19, 1)
    assert "stream_options.include_usage added by llmaudit (stream_usage=True)" in record.notes


def test_a_mapped_gateway_is_priced_as_the_provider_it_names(tmp_path: Path) -> None:
    """``providers={"llm.corp.example/openai": "openai"}``: gpt-4o-mini costs what it costs at OpenAI,
    a model OpenAI does not list costs nothing known (null)."""
    options = {"providers": {"llm.corp.example/openai": "openai"}, "spool_dir": str(tmp_path)}
    with llmaudit.Auditor(f"memory://{uuid.uuid4().hex}", **options) as auditor:
        seen: list[str] = []
        base = "https://llm.corp.example/openai"
        _openai(auditor, base, seen).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        _openai(auditor, base, seen, model="corp-llama-70b").chat.completions.create(
            model="corp-llama-70b", messages=MESSAGES
        )
        assert auditor.flush(10)
        known, unknown = sorted(auditor.storage.read(llmaudit.Query()), key=lambda r: r.model != MODEL)
    assert (known.provider, known.model, unknown.model) == ("openai", MODEL, "corp-llama-70b")
    expected = cost_usd("openai", MODEL, 19, 10, known.created_at)
    assert expected is not None and known.cost_usd == pytest.approx(expected)
    assert (unknown.total_tokens, unknown.cost_usd) == (29, None)


def test_a_litellm_proxy_naming_its_upstream_is_priced_by_it(recorder: Recorder) -> None:
    """LiteLLM's proxy says where it sent the call (``x-litellm-model-api-base``): OpenAI's prices."""
    seen: list[str] = []
    headers = {"x-litellm-model-api-base": "https://api.openai.com/v1", "x-litellm-version": "1.74.0"}
    _openai(recorder.auditor, "http://127.0.0.1:4000", seen, headers=headers).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    record = recorder.one()
    assert record.provider == "openai_compatible"
    assert record.cost_usd == pytest.approx(cost_usd("openai", MODEL, 19, 10, record.created_at))


def test_azure_api_management_is_a_known_gateway(recorder: Recorder) -> None:
    """AzureOpenAI through an API Management host: Azure OpenAI, its deployment, Azure's prices."""
    seen: list[str] = []
    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(_handler(seen)), auditor=recorder.auditor
    )
    client = AzureOpenAI(
        api_key=FAKE_KEY,
        api_version="2024-10-21",
        azure_endpoint="https://contoso.azure-api.net",
        azure_deployment="chat-prod",
        http_client=httpx2.Client(transport=transport),
    )
    client.chat.completions.create(model="chat-prod", messages=MESSAGES)
    assert seen == ["/openai/deployments/chat-prod/chat/completions"]
    record = recorder.one()
    assert (record.provider, record.model, record.total_tokens) == ("azure_openai", MODEL, 29)
    assert record.cost_usd == pytest.approx(cost_usd("azure_openai", MODEL, 19, 10, record.created_at))


@pytest.mark.asyncio
async def test_the_async_client_on_a_compatible_host_is_recorded(recorder: Recorder) -> None:
    seen: list[str] = []
    transport = llmaudit.transports.httpx2.AsyncAuditTransport(
        httpx2.MockTransport(_handler(seen)), auditor=recorder.auditor
    )
    client = AsyncOpenAI(
        api_key=FAKE_KEY,
        base_url="http://127.0.0.1:8765",
        http_client=httpx2.AsyncClient(transport=transport),
    )
    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    record = recorder.one()
    assert (record.provider, record.operation, record.total_tokens) == (
        "openai_compatible",
        "chat.completions",
        29,
    )
