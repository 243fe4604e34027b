"""AuditTransport over both httpx branches, sync and async: what the caller sees never changes, and
the record holds the exchange."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any

import brotli
import pytest
import zstandard
from tests.transport.conftest import Recorder
from tests.wire import CHAT_REQUEST, CHAT_RESPONSE, CHAT_URL, SSE_CHUNKS, USAGE_CHUNK

import llmaudit

# private: the capture layer, driven directly below the public transports
from llmaudit.capture.context import AuditContext, current
from llmaudit.record.codec import encode_record

Handler = Callable[[Any], Any]


def _client(hx: ModuleType, handler: Handler, recorder: Recorder, **options: Any) -> Any:
    transport = llmaudit.AuditTransport(hx.MockTransport(handler), auditor=recorder.auditor, **options)
    return hx.Client(transport=transport)


def _async_client(hx: ModuleType, handler: Handler, recorder: Recorder, **options: Any) -> Any:
    transport = llmaudit.AsyncAuditTransport(hx.MockTransport(handler), auditor=recorder.auditor, **options)
    return hx.AsyncClient(transport=transport)


def _json_response(hx: ModuleType, body: object = CHAT_RESPONSE, status: int = 200) -> Handler:
    def handler(request: Any) -> Any:
        return hx.Response(status, json=body, headers={"x-request-id": "req_123"})

    return handler


def test_non_streaming_call_is_recorded_with_usage_and_unchanged_for_the_caller(
    hx: ModuleType, recorder: Recorder
) -> None:
    """The caller gets the mock's exact response; the record holds request, response, model, usage."""
    with _client(hx, _json_response(hx), recorder) as client:
        response = client.post(CHAT_URL, json=CHAT_REQUEST, headers={"Authorization": "Bearer sk-test-FAKE"})
    assert response.status_code == 200
    assert response.json() == CHAT_RESPONSE
    assert response.headers["x-request-id"] == "req_123"
    record = recorder.one()
    assert (record.provider, record.operation, record.model) == (
        "openai",
        "chat.completions",
        "gpt-4o-mini-2024-07-18",
    )
    assert record.request == CHAT_REQUEST
    assert record.response == CHAT_RESPONSE
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (9, 3, 12)
    assert (record.status_code, record.is_stream, record.incomplete) == (200, False, False)
    assert record.duration_ms is not None and record.duration_ms >= 0
    assert record.source == "transport"
    assert b"sk-test-FAKE" not in encode_record(record)  # the Authorization header is never stored


@pytest.mark.asyncio
async def test_async_non_streaming_call_is_recorded(hx: ModuleType, recorder: Recorder) -> None:
    """The async shell records the same as the sync one."""
    async with _async_client(hx, _json_response(hx), recorder) as client:
        response = await client.post(CHAT_URL, json=CHAT_REQUEST)
    assert response.json() == CHAT_RESPONSE
    record = recorder.one()
    assert (record.model, record.total_tokens) == ("gpt-4o-mini-2024-07-18", 12)


_ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.mark.parametrize("encoding", sorted(_ENCODERS))
def test_compressed_bodies_are_decoded_in_the_record_and_untouched_for_the_caller(
    hx: ModuleType, recorder: Recorder, encoding: str
) -> None:
    """The record holds the decoded JSON; the caller gets exactly what the same client gives without
    llmaudit (httpx decodes zstd, httpx2 leaves it encoded: either way, unchanged)."""
    raw = json.dumps(CHAT_RESPONSE).encode()
    encoded = _ENCODERS[encoding](raw)

    def handler(request: Any) -> Any:
        headers = {"content-type": "application/json", "content-encoding": encoding}
        return hx.Response(200, content=encoded, headers=headers)

    with _client(hx, handler, recorder) as client:
        audited = client.post(CHAT_URL, json=CHAT_REQUEST)
    with hx.Client(transport=hx.MockTransport(handler)) as plain:
        baseline = plain.post(CHAT_URL, json=CHAT_REQUEST)
    assert (audited.status_code, audited.headers, audited.content) == (
        baseline.status_code,
        baseline.headers,
        baseline.content,
    )
    assert recorder.one().response == CHAT_RESPONSE


def _sse_handler(hx: ModuleType, chunks: list[bytes], produced: list[int] | None = None) -> Handler:
    def stream() -> Iterator[bytes]:
        for i, chunk in enumerate(chunks):
            if produced is not None:
                produced.append(i)
            yield chunk

    def handler(request: Any) -> Any:
        return hx.Response(200, headers={"content-type": "text/event-stream"}, content=stream())

    return handler


def test_sse_chunks_reach_the_caller_one_by_one_and_are_reassembled(
    hx: ModuleType, recorder: Recorder
) -> None:
    """Nothing is held back: chunk i is in the caller's hands before chunk i+1 is produced."""
    produced: list[int] = []
    seen: list[tuple[int, int]] = []
    with _client(hx, _sse_handler(hx, SSE_CHUNKS, produced), recorder) as client:
        with client.stream("POST", CHAT_URL, json={**CHAT_REQUEST, "stream": True}) as response:
            for i, chunk in enumerate(response.iter_raw()):
                seen.append((i, len(produced)))
                assert chunk == SSE_CHUNKS[i]
    assert seen == [(i, i + 1) for i in range(len(SSE_CHUNKS))]
    record = recorder.one()
    assert (record.is_stream, record.incomplete) == (True, False)
    assert record.ttft_ms is not None and record.ttft_ms <= (record.duration_ms or 0)
    assert record.response["choices"][0]["message"]["content"] == "Hello!"  # type: ignore[index]
    assert record.response["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]


def test_stream_closed_early_is_recorded_incomplete_with_what_arrived(
    hx: ModuleType, recorder: Recorder
) -> None:
    """A caller that stops reading and closes gives an incomplete record holding the chunks read."""
    with _client(hx, _sse_handler(hx, SSE_CHUNKS), recorder) as client:
        with client.stream("POST", CHAT_URL, json=CHAT_REQUEST) as response:
            iterator = response.iter_raw()
            next(iterator)
            next(iterator)
            next(iterator)
    record = recorder.one()
    assert record.incomplete is True
    assert record.response["choices"][0]["message"]["content"] == "Hello"  # type: ignore[index]
    assert record.response["choices"][0]["finish_reason"] is None  # type: ignore[index]


def test_stream_never_closed_is_recorded_when_collected(hx: ModuleType, recorder: Recorder) -> None:
    """A response the caller abandons without closing is finalised by garbage collection."""
    import gc

    client = _client(hx, _sse_handler(hx, SSE_CHUNKS), recorder)
    response = client.send(client.build_request("POST", CHAT_URL, json=CHAT_REQUEST), stream=True)
    next(response.iter_raw())
    del response
    gc.collect()
    record = recorder.one()
    assert record.incomplete is True
    client.close()


@pytest.mark.asyncio
async def test_async_stream_cancelled_is_recorded_incomplete(hx: ModuleType, recorder: Recorder) -> None:
    """asyncio cancellation mid-stream propagates unchanged and the record says incomplete."""
    release = asyncio.Event()

    async def stream() -> AsyncIterator[bytes]:
        yield SSE_CHUNKS[0]
        yield SSE_CHUNKS[1]
        await release.wait()  # the server stalls: the caller gives up
        yield SSE_CHUNKS[2]

    def handler(request: Any) -> Any:
        return hx.Response(200, headers={"content-type": "text/event-stream"}, content=stream())

    got: list[bytes] = []

    async def consume(client: Any) -> None:
        async with client.stream("POST", CHAT_URL, json=CHAT_REQUEST) as response:
            async for chunk in response.aiter_raw():
                got.append(chunk)

    async with _async_client(hx, handler, recorder) as client:
        task = asyncio.create_task(consume(client))
        while len(got) < 2:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    record = recorder.one()
    assert record.incomplete is True
    assert record.response["choices"][0]["message"]["content"] == "Hel"  # type: ignore[index]
    assert record.error is not None and record.error.startswith("CancelledError")


def test_inner_transport_errors_are_recorded_and_reraised_unchanged(
    hx: ModuleType, recorder: Recorder
) -> None:
    """A connection error reaches the caller as the very same exception; the record holds its type."""
    boom = hx.ConnectError("connection refused")

    def handler(request: Any) -> Any:
        raise boom

    with _client(hx, handler, recorder) as client, pytest.raises(hx.ConnectError) as info:
        client.post(CHAT_URL, json=CHAT_REQUEST)
    assert info.value is boom
    record = recorder.one()
    assert record.error == "ConnectError: connection refused"
    assert (record.status_code, record.incomplete) == (None, True)
    assert record.request == CHAT_REQUEST


def test_stream_broken_by_a_network_error_is_recorded_incomplete(hx: ModuleType, recorder: Recorder) -> None:
    """A read error mid-stream is re-raised to the caller and recorded with what had arrived."""

    def stream() -> Iterator[bytes]:
        yield SSE_CHUNKS[0]
        yield SSE_CHUNKS[1]
        raise hx.ReadError("connection reset by peer")

    def handler(request: Any) -> Any:
        return hx.Response(200, headers={"content-type": "text/event-stream"}, content=stream())

    with _client(hx, handler, recorder) as client, pytest.raises(hx.ReadError):
        with client.stream("POST", CHAT_URL, json=CHAT_REQUEST) as response:
            for _ in response.iter_raw():
                pass
    record = recorder.one()
    assert record.incomplete is True
    assert record.error == "ReadError: connection reset by peer"


def test_unknown_endpoints_pass_through_unless_capture_all(hx: ModuleType, recorder: Recorder) -> None:
    """capture="llm" records LLM endpoints only; capture="all" records everything, raw."""

    def handler(request: Any) -> Any:
        return hx.Response(200, text="<html>ok</html>", headers={"content-type": "text/html"})

    with _client(hx, handler, recorder) as client:
        assert client.get("https://example.com/index.html").text == "<html>ok</html>"
    assert recorder.records() == []
    with _client(hx, handler, recorder, capture="all") as client:
        client.get("https://example.com/index.html")
    record = recorder.one()
    assert record.response == "<html>ok</html>"
    assert record.url == "https://example.com/index.html"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        (b'{"choices": [', "application/json"),
        (b"\xff\xfe not utf-8 \x80", "application/json"),
    ],
)
def test_bad_bodies_reach_the_caller_untouched_and_are_recorded_with_a_note(
    hx: ModuleType, recorder: Recorder, body: bytes, content_type: str
) -> None:
    """Empty, HTML, truncated JSON or invalid UTF-8: same bytes for the caller, a note in the record."""

    def handler(request: Any) -> Any:
        return hx.Response(500, content=body, headers={"content-type": content_type})

    with _client(hx, handler, recorder) as client:
        response = client.post(CHAT_URL, json=CHAT_REQUEST)
    assert (response.status_code, response.content) == (500, body)
    record = recorder.one()
    assert record.status_code == 500
    if body:
        assert record.notes


def test_secret_query_parameters_never_reach_the_record(hx: ModuleType, recorder: Recorder) -> None:
    """A key in the query string (Gemini style) is masked in the stored URL."""
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaFAKEKEY123"
    with _client(hx, _json_response(hx, {"candidates": []}), recorder) as client:
        client.post(url, json={"contents": []})
    record = recorder.one()
    assert record.url is not None and "AIzaFAKEKEY123" not in record.url
    assert "key=***" in record.url


def test_sdk_retry_count_header_becomes_the_attempt(hx: ModuleType, recorder: Recorder) -> None:
    """The OpenAI/Anthropic SDKs number retries in x-stainless-retry-count."""
    with _client(hx, _json_response(hx), recorder) as client:
        client.post(CHAT_URL, json=CHAT_REQUEST, headers={"x-stainless-retry-count": "2"})
    assert recorder.one().attempt == 2


def test_nested_audit_transports_record_once(hx: ModuleType, recorder: Recorder) -> None:
    """Wrapping an AuditTransport in another never records the call twice."""
    inner = llmaudit.AuditTransport(hx.MockTransport(_json_response(hx)), auditor=recorder.auditor)
    outer = llmaudit.AuditTransport(inner, auditor=recorder.auditor)
    with hx.Client(transport=outer) as client:
        client.post(CHAT_URL, json=CHAT_REQUEST)
    assert len(recorder.records()) == 1


def test_context_snapshot_tags_the_record(hx: ModuleType, recorder: Recorder) -> None:
    """Session key, user and parent id in force when the call ends are on the record."""
    token = current.set(AuditContext(session_key="sess-1", user="alice", client="bot", parent_id="p" * 36))
    try:
        with _client(hx, _json_response(hx), recorder) as client:
            client.post(CHAT_URL, json=CHAT_REQUEST)
    finally:
        current.reset(token)
    record = recorder.one()
    assert (record.session_key, record.user, record.client, record.parent_id) == (
        "sess-1",
        "alice",
        "bot",
        "p" * 36,
    )


def test_client_name_defaults_to_the_provider_and_can_be_set(hx: ModuleType, recorder: Recorder) -> None:
    """`client` names the application's LLM client; without it the provider's name is used."""
    with _client(hx, _json_response(hx), recorder, client="support-bot") as client:
        client.post(CHAT_URL, json=CHAT_REQUEST)
    with _client(hx, _json_response(hx), recorder) as client:
        client.post(CHAT_URL, json=CHAT_REQUEST)
    assert sorted(r.client or "" for r in recorder.records()) == ["openai", "support-bot"]


def test_multipart_uploads_are_not_buffered_only_described(hx: ModuleType, recorder: Recorder) -> None:
    """An audio upload goes through untouched; the record holds its field and file names."""
    received: list[bytes] = []

    def handler(request: Any) -> Any:
        received.append(request.read())
        return hx.Response(200, json={"text": "hello"})

    with _client(hx, handler, recorder) as client:
        client.post(
            "https://api.openai.com/v1/audio/transcriptions",
            data={"model": "whisper-1"},
            files={"file": ("speech.mp3", b"ID3" + b"\x00" * 1000, "audio/mpeg")},
        )
    assert b"ID3" in received[0]
    record = recorder.one()
    assert isinstance(record.request, dict)
    assert record.request["content_type"] == "multipart/form-data"
    assert record.request["fields"] == ["model", "file"]
    assert record.request["files"] == ["speech.mp3"]
    assert record.response == {"text": "hello"}


def test_an_internal_failure_never_reaches_the_caller(
    hx: ModuleType,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    expect_internal_errors: list[logging.LogRecord],
) -> None:
    """If llmaudit itself breaks, the call still succeeds and the failure is logged."""

    def broken(host: str, path: str) -> None:
        raise RuntimeError("matcher bug")

    monkeypatch.setattr(llmaudit.providers, "match", broken)
    with _client(hx, _json_response(hx), recorder) as client:
        assert client.post(CHAT_URL, json=CHAT_REQUEST).json() == CHAT_RESPONSE
    assert any("transport request capture" in r.getMessage() for r in expect_internal_errors)


def test_typed_subclasses_are_the_branchs_base_transports(hx: ModuleType) -> None:
    """`llmaudit.transports.<branch>` classes satisfy isinstance checks and type checkers."""
    module = __import__(f"llmaudit.transports.{hx.__name__}", fromlist=["AuditTransport"])
    assert isinstance(module.AuditTransport(hx.MockTransport(lambda r: None)), hx.BaseTransport)
    assert isinstance(module.AsyncAuditTransport(hx.MockTransport(lambda r: None)), hx.AsyncBaseTransport)


def test_wrapping_something_that_is_not_a_transport_is_a_clear_error() -> None:
    """A wrong inner object fails at construction, naming what is expected."""
    with pytest.raises(llmaudit.ConfigurationError, match="httpx or httpx2"):
        llmaudit.AuditTransport(object())


def _usage_handler(hx: ModuleType, seen: list[dict[str, Any]]) -> Handler:
    def handler(request: Any) -> Any:
        body = json.loads(request.content)
        seen.append(body)
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        chunks = SSE_CHUNKS[:-1] + ([USAGE_CHUNK] if wants_usage else []) + SSE_CHUNKS[-1:]
        return hx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))

    return handler


def test_stream_usage_asks_for_usage_and_hides_the_extra_chunk_from_the_caller(
    hx: ModuleType, recorder: Recorder
) -> None:
    """stream_usage=True: the server is asked for usage, the caller never sees the usage-only chunk,
    and the record carries the token counts."""
    seen: list[dict[str, Any]] = []
    request = {**CHAT_REQUEST, "stream": True}
    with _client(hx, _usage_handler(hx, seen), recorder, stream_usage=True) as client:
        with client.stream("POST", CHAT_URL, json=request) as response:
            received = b"".join(response.iter_raw())
    assert seen[0]["stream_options"] == {"include_usage": True}
    assert received == b"".join(SSE_CHUNKS)
    record = recorder.one()
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (9, 3, 12)
    assert any("include_usage added" in n for n in record.notes)


def test_stream_usage_leaves_a_caller_who_asked_for_usage_alone(hx: ModuleType, recorder: Recorder) -> None:
    """When the caller already asked for usage, the request and the chunks are untouched."""
    seen: list[dict[str, Any]] = []
    request = {**CHAT_REQUEST, "stream": True, "stream_options": {"include_usage": True}}
    with _client(hx, _usage_handler(hx, seen), recorder, stream_usage=True) as client:
        with client.stream("POST", CHAT_URL, json=request) as response:
            received = b"".join(response.iter_raw())
    assert USAGE_CHUNK in received
    assert recorder.one().total_tokens == 12


def test_stream_usage_is_off_by_default(hx: ModuleType, recorder: Recorder) -> None:
    """Without the option, the request reaches the server byte for byte as the caller built it."""
    seen: list[dict[str, Any]] = []
    with _client(hx, _usage_handler(hx, seen), recorder) as client:
        with client.stream("POST", CHAT_URL, json={**CHAT_REQUEST, "stream": True}) as response:
            response.read()
    assert "stream_options" not in seen[0]
    assert recorder.one().total_tokens is None
