"""instrument(): every httpx and httpx2 client records LLM calls with no code change; reversible."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from tests.transport.conftest import Recorder
from tests.transport.server import LocalServer
from tests.wire import CHAT_REQUEST, CHAT_RESPONSE

import llmaudit


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as s:
        yield s


@pytest.fixture
def instrumented(recorder: Recorder) -> Iterator[Recorder]:
    llmaudit.instrument(auditor=recorder.auditor)
    yield recorder
    llmaudit.uninstrument()


def test_plain_clients_record_after_instrument_and_stop_after_uninstrument(
    hx: ModuleType, server: LocalServer, instrumented: Recorder
) -> None:
    """A client built with no llmaudit code records; after uninstrument() it no longer does."""
    with hx.Client(base_url=server.url) as client:
        assert client.post("/v1/chat/completions", json=CHAT_REQUEST).json() == CHAT_RESPONSE
    (record,) = instrumented.records()
    assert (record.provider, record.model, record.total_tokens) == (
        "openai_compatible",
        "gpt-4o-mini-2024-07-18",
        12,
    )
    llmaudit.uninstrument()
    assert not llmaudit.is_instrumented()
    with hx.Client(base_url=server.url) as client:
        client.post("/v1/chat/completions", json=CHAT_REQUEST)
    assert len(instrumented.records()) == 1


@pytest.mark.asyncio
async def test_async_clients_and_streams_record(
    hx: ModuleType, server: LocalServer, instrumented: Recorder
) -> None:
    """AsyncClient goes through the patched AsyncHTTPTransport; a streamed answer is reassembled."""
    async with hx.AsyncClient(base_url=server.url) as client:
        async with client.stream("POST", "/v1/chat/completions", json={**CHAT_REQUEST, "stream": True}) as r:
            body = b"".join([chunk async for chunk in r.aiter_bytes()])
    assert body.endswith(b"data: [DONE]\n\n")
    (record,) = instrumented.records()
    assert record.is_stream
    assert record.response["choices"][0]["message"]["content"] == "Hello!"  # type: ignore[index]


def test_instrument_is_idempotent_and_restores_the_original_methods(
    hx: ModuleType, recorder: Recorder
) -> None:
    """Calling instrument() twice patches once; uninstrument() puts back the very same function."""
    original = hx.HTTPTransport.__dict__["handle_request"]
    llmaudit.instrument(auditor=recorder.auditor)
    llmaudit.instrument(auditor=recorder.auditor)
    patched = hx.HTTPTransport.__dict__["handle_request"]
    assert patched is not original
    assert patched.__wrapped__ is original
    llmaudit.uninstrument()
    assert hx.HTTPTransport.__dict__["handle_request"] is original


def test_a_client_with_an_audit_transport_is_not_recorded_twice(
    hx: ModuleType, server: LocalServer, instrumented: Recorder
) -> None:
    """instrument() plus an explicit AuditTransport still gives one record per call."""
    transport = llmaudit.AuditTransport(auditor=instrumented.auditor)
    with hx.Client(base_url=server.url, transport=transport) as client:
        client.post("/v1/chat/completions", json=CHAT_REQUEST)
    assert len(instrumented.records()) == 1


def test_audit_transport_without_inner_uses_the_requests_branch(
    hx: ModuleType, server: LocalServer, recorder: Recorder
) -> None:
    """With no inner transport, the branch's own HTTPTransport is created from the first request."""
    transport = llmaudit.AuditTransport(auditor=recorder.auditor)
    with hx.Client(base_url=server.url, transport=transport) as client:
        client.post("/v1/chat/completions", json=CHAT_REQUEST)
    # private: the wrapped inner transport has no public accessor
    assert type(transport._inner).__module__.split(".")[0] == hx.__name__
    assert len(recorder.records()) == 1
