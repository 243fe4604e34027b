"""The aiohttp way in (``llmaudit.transports.aiohttp.AuditMiddleware`` and instrument()), against a real
aiohttp server on 127.0.0.1: what the caller receives never changes, and each call is recorded once.

The server and the client share the test's event loop; where a test needs the two sides in step (a
chunk in the caller's hands before the next is written, a stalled stream), they wait on asyncio events,
never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from tests.transport.conftest import Recorder
from tests.wire import CHAT_REQUEST, CHAT_RESPONSE, SSE_CHUNKS

import llmaudit

# private: the capture layer, driven directly below the public transports
from llmaudit.capture import coverage
from llmaudit.record.codec import encode_record
from llmaudit.transports.aiohttp import AuditMiddleware

CHAT_PATH = "/v1/chat/completions"
FAKE_KEY = "sk-test-FAKE-aiohttp-0123456789"


class Server:
    """An aiohttp application on 127.0.0.1 serving OpenAI-format answers; ``steps`` lets a test hold
    the SSE stream: chunk i is written once ``steps[i]`` is set (all set unless a test says so)."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post(CHAT_PATH, self.chat)
        self.app.router.add_post("/v1/broken", self.broken)
        self.app.router.add_get("/index.html", self.page)
        self.steps: list[asyncio.Event] | None = None
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._runner = web.AppRunner(self.app)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        for step in self.steps or ():  # a stream a test left stalled can end
            step.set()
        await self._runner.cleanup()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else {}
        self.requests.append(body)
        if body.get("stream"):
            return await self._stream(request)
        payload = json.dumps(CHAT_RESPONSE).encode()
        headers = {"content-type": "application/json", "x-request-id": "req_123"}
        if body.get("gzip"):
            payload = gzip.compress(payload)
            headers["content-encoding"] = "gzip"
        return web.Response(body=payload, headers=headers)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for i, chunk in enumerate(SSE_CHUNKS):
            if self.steps is not None:
                await self.steps[i].wait()
            try:
                await response.write(chunk)
            except ConnectionError:
                return response
        with contextlib.suppress(ConnectionError):  # the client went away (closed early, cancelled)
            await response.write_eof()
        return response

    async def broken(self, request: web.Request) -> web.StreamResponse:
        """Two SSE chunks, then the connection drops before the body's end."""
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(SSE_CHUNKS[0])
        await response.write(SSE_CHUNKS[1])
        assert request.transport is not None
        request.transport.abort()
        return response

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>ok</html>", content_type="text/html")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    yield s
    await s.close()


def _session(recorder: Recorder | None, **options: Any) -> aiohttp.ClientSession:
    middlewares = () if recorder is None else (AuditMiddleware(auditor=recorder.auditor, **options),)
    return aiohttp.ClientSession(middlewares=middlewares)


def _no_date(headers: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() != "date"]


@pytest.mark.asyncio
async def test_a_call_is_recorded_and_the_caller_gets_exactly_what_it_gets_without_llmaudit(
    server: Server, recorder: Recorder
) -> None:
    """Status, headers and body bytes equal a plain session's; the record holds the exchange, never
    the key."""
    url = server.url + CHAT_PATH
    auth = {"Authorization": f"Bearer {FAKE_KEY}"}
    async with _session(None) as plain, plain.post(url, json=CHAT_REQUEST, headers=auth) as r:
        baseline = (r.status, _no_date(r.headers), await r.read())
    async with _session(recorder) as audited, audited.post(url, json=CHAT_REQUEST, headers=auth) as r:
        seen = (r.status, _no_date(r.headers), await r.read())
        assert await r.json() == CHAT_RESPONSE
    assert seen == baseline
    record = recorder.one()
    assert (record.operation, record.model, record.total_tokens) == (
        "chat.completions",
        "gpt-4o-mini-2024-07-18",
        12,
    )
    assert (record.request, record.response) == (CHAT_REQUEST, CHAT_RESPONSE)
    assert (record.status_code, record.is_stream, record.incomplete) == (200, False, False)
    assert record.url == url
    assert record.headers["response"]["x-request-id"] == "req_123"
    assert record.source == "transport"
    assert FAKE_KEY.encode() not in encode_record(record)


@pytest.mark.asyncio
@pytest.mark.parametrize("auto_decompress", [True, False])
async def test_gzip_bodies_are_decoded_in_the_record_and_untouched_for_the_caller(
    server: Server, recorder: Recorder, auto_decompress: bool
) -> None:
    """aiohttp decompresses for the caller, or hands over the gzip bytes (as the SDKs' aiohttp
    backends ask): the caller gets what a plain session gives, the record the JSON either way."""
    url, body = server.url + CHAT_PATH, {**CHAT_REQUEST, "gzip": True}
    async with _session(None) as plain:
        async with plain.post(url, json=body, auto_decompress=auto_decompress) as r:
            baseline = await r.read()
    async with _session(recorder) as audited:
        async with audited.post(url, json=body, auto_decompress=auto_decompress) as r:
            assert await r.read() == baseline
    assert (baseline[:2] == b"\x1f\x8b") is not auto_decompress
    record = recorder.one()
    assert record.response == CHAT_RESPONSE
    assert record.notes == ()


@pytest.mark.asyncio
async def test_sse_chunks_reach_the_caller_one_by_one_and_are_reassembled(
    server: Server, recorder: Recorder
) -> None:
    """Nothing is held back: the server writes chunk i+1 only after the caller holds all of chunk i
    (a tee that waited for more would never see it come)."""
    server.steps = [asyncio.Event() for _ in SSE_CHUNKS]
    server.steps[0].set()
    ends = [len(b"".join(SSE_CHUNKS[: i + 1])) for i in range(len(SSE_CHUNKS))]
    received = b""
    async with _session(recorder) as session:
        async with session.post(server.url + CHAT_PATH, json={**CHAT_REQUEST, "stream": True}) as r:
            async for chunk in r.content.iter_any():
                received += chunk
                for i, end in enumerate(ends[:-1]):
                    if len(received) >= end:
                        server.steps[i + 1].set()
    assert received == b"".join(SSE_CHUNKS)
    record = recorder.one()
    assert (record.is_stream, record.incomplete, record.error) == (True, False, None)
    assert record.ttft_ms is not None and record.ttft_ms <= (record.duration_ms or 0)
    assert record.response["choices"][0]["message"]["content"] == "Hello!"  # type: ignore[index]
    assert record.response["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]


async def _lines(r: aiohttp.ClientResponse) -> bytes:
    return b"".join([line async for line in r.content])


async def _chunked(r: aiohttp.ClientResponse) -> bytes:
    return b"".join([c async for c in r.content.iter_chunked(7)])


async def _http_chunks(r: aiohttp.ClientResponse) -> bytes:
    return b"".join([c async for c, _ in r.content.iter_chunks()])


async def _read_some(r: aiohttp.ClientResponse) -> bytes:
    out = b""
    while piece := await r.content.read(11):
        out += piece
    return out


async def _readuntil(r: aiohttp.ClientResponse) -> bytes:
    out = b""
    while piece := await r.content.readuntil(b"\n\n"):
        out += piece
    return out


async def _text(r: aiohttp.ClientResponse) -> bytes:
    return (await r.text()).encode()


READS: dict[str, Callable[[aiohttp.ClientResponse], Awaitable[bytes]]] = {
    "lines": _lines,
    "iter_chunked": _chunked,
    "iter_chunks": _http_chunks,
    "read(n)": _read_some,
    "readuntil": _readuntil,
    "text": _text,
}


@pytest.mark.asyncio
@pytest.mark.parametrize("style", sorted(READS))
async def test_every_way_of_reading_the_body_is_teed(server: Server, recorder: Recorder, style: str) -> None:
    """Lines, fixed-size chunks, HTTP chunks, read(n), readuntil, text(): the caller gets the body and
    the record reassembles the whole stream."""
    async with _session(recorder) as session:
        async with session.post(server.url + CHAT_PATH, json={**CHAT_REQUEST, "stream": True}) as r:
            assert await READS[style](r) == b"".join(SSE_CHUNKS)
            assert isinstance(r.content, aiohttp.StreamReader)
    record = recorder.one()
    assert (record.is_stream, record.incomplete) == (True, False)
    assert record.response["choices"][0]["message"]["content"] == "Hello!"  # type: ignore[index]


@pytest.mark.asyncio
async def test_stream_closed_early_is_recorded_incomplete_with_what_arrived(
    server: Server, recorder: Recorder
) -> None:
    """A caller that leaves the ``async with`` block after three chunks gives an incomplete record of
    those three; the server is still waiting to send the rest."""
    server.steps = [asyncio.Event() for _ in SSE_CHUNKS]
    for step in server.steps[:3]:
        step.set()
    async with _session(recorder) as session:
        async with session.post(server.url + CHAT_PATH, json={**CHAT_REQUEST, "stream": True}) as r:
            got = b""
            while len(got) < len(b"".join(SSE_CHUNKS[:3])):  # TCP may join the chunks
                got += await r.content.readany()
            assert got == b"".join(SSE_CHUNKS[:3])
        record = recorder.one()
    assert (record.incomplete, record.error) == (True, None)
    assert record.response["choices"][0]["message"]["content"] == "Hello"  # type: ignore[index]
    assert record.response["choices"][0]["finish_reason"] is None  # type: ignore[index]


@pytest.mark.asyncio
async def test_cancelled_stream_propagates_the_cancellation_and_is_recorded_incomplete(
    server: Server, recorder: Recorder
) -> None:
    """asyncio cancellation while the caller waits for the next chunk propagates unchanged; the record
    says incomplete, why, and holds what had arrived."""
    server.steps = [asyncio.Event() for _ in SSE_CHUNKS]
    server.steps[0].set()
    server.steps[1].set()
    two = asyncio.Event()
    got: list[bytes] = []

    async def consume(session: aiohttp.ClientSession) -> None:
        async with session.post(server.url + CHAT_PATH, json={**CHAT_REQUEST, "stream": True}) as r:
            async for chunk in r.content.iter_any():
                got.append(chunk)
                if b"".join(got) == b"".join(SSE_CHUNKS[:2]):
                    two.set()

    async with _session(recorder) as session:
        task = asyncio.create_task(consume(session))
        await two.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    record = recorder.one()
    assert record.incomplete is True
    assert record.error is not None and record.error.startswith("CancelledError")
    assert record.response["choices"][0]["message"]["content"] == "Hel"  # type: ignore[index]


@pytest.mark.asyncio
async def test_a_dropped_connection_mid_stream_reaches_the_caller_unchanged_and_is_recorded(
    server: Server, recorder: Recorder
) -> None:
    """The caller gets the same error type as without llmaudit; the record says incomplete and why."""

    async def read_all(session: aiohttp.ClientSession) -> type[BaseException]:
        async with session.post(server.url + "/v1/broken", json={**CHAT_REQUEST, "stream": True}) as r:
            with pytest.raises(aiohttp.ClientError) as info:
                async for _ in r.content.iter_any():
                    pass
        return type(info.value)

    async with _session(None) as plain:
        expected = await read_all(plain)
    async with _session(recorder, capture="all") as audited:
        assert await read_all(audited) is expected
    record = recorder.one()
    assert record.incomplete is True
    assert record.error is not None and record.error.startswith(expected.__name__)


@pytest.mark.asyncio
async def test_a_connection_error_is_recorded_and_reraised_unchanged(recorder: Recorder) -> None:
    """Nothing listens on the port: the caller gets aiohttp's own error, the record its type."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _session(recorder) as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.post(f"http://127.0.0.1:{port}{CHAT_PATH}", json=CHAT_REQUEST)
    record = recorder.one()
    assert record.error is not None and record.error.startswith("ClientConnectorError")
    assert (record.status_code, record.incomplete) == (None, True)
    assert record.request == CHAT_REQUEST


@pytest.mark.asyncio
async def test_unknown_endpoints_pass_through_unless_capture_all(server: Server, recorder: Recorder) -> None:
    """capture="llm" records LLM endpoints only; capture="all" records everything, raw."""
    async with _session(recorder) as session, session.get(server.url + "/index.html") as r:
        assert await r.text() == "<html>ok</html>"
        assert type(r) is aiohttp.ClientResponse  # untouched
    assert recorder.records() == []
    async with _session(recorder, capture="all") as session, session.get(server.url + "/index.html") as r:
        await r.read()
    assert recorder.one().response == "<html>ok</html>"


@pytest.mark.asyncio
# aiohttp itself warns of the connection the caller abandoned (with or without llmaudit)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_response_nobody_closes_is_recorded_when_collected(
    server: Server, recorder: Recorder
) -> None:
    """A response the caller drops without releasing it is finalised by garbage collection (once its
    connection, which holds it while open, is gone with the session)."""
    server.steps = [asyncio.Event() for _ in SSE_CHUNKS]
    server.steps[0].set()
    async with _session(recorder) as session:
        response = await session.post(server.url + CHAT_PATH, json={**CHAT_REQUEST, "stream": True})
        await response.content.readany()
        del response
    gc.collect()
    record = recorder.one()
    assert (record.incomplete, record.error) == (True, None)
    assert record.response["choices"][0]["message"]["content"] == ""  # type: ignore[index]


@pytest.mark.asyncio
async def test_a_streamed_request_body_is_sent_untouched_and_described(
    server: Server, recorder: Recorder
) -> None:
    """An upload from an async iterator is never read by llmaudit: the server gets all of it, the
    record its metadata and a note."""

    async def body() -> AsyncIterator[bytes]:
        yield json.dumps(CHAT_REQUEST).encode()

    headers = {"content-type": "application/json"}
    async with _session(recorder) as session:
        async with session.post(server.url + CHAT_PATH, data=body(), headers=headers) as r:
            assert await r.json() == CHAT_RESPONSE
    assert server.requests == [CHAT_REQUEST]
    record = recorder.one()
    assert record.request == {"content_type": "application/json"}
    assert "request body not buffered: metadata only" in record.notes
    assert record.total_tokens == 12


@pytest.mark.asyncio
async def test_a_custom_response_class_is_kept(server: Server, recorder: Recorder) -> None:
    """The session's own response class is still the one the caller gets (a subclass of it)."""

    class Mine(aiohttp.ClientResponse):
        mine = True

    session = aiohttp.ClientSession(
        response_class=Mine, middlewares=(AuditMiddleware(auditor=recorder.auditor),)
    )
    async with session, session.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
        assert isinstance(r, Mine)
        assert await r.json() == CHAT_RESPONSE
    assert recorder.one().total_tokens == 12


@pytest.mark.asyncio
async def test_two_middlewares_record_once(server: Server, recorder: Recorder) -> None:
    """Two audit middlewares on one session (or instrument() and an explicit one) give one record."""
    middlewares = (AuditMiddleware(auditor=recorder.auditor), AuditMiddleware(auditor=recorder.auditor))
    llmaudit.instrument(auditor=recorder.auditor)
    try:
        async with aiohttp.ClientSession(middlewares=middlewares) as session:
            async with session.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
                await r.read()
    finally:
        llmaudit.uninstrument()
    assert len(recorder.records()) == 1


@pytest.mark.asyncio
async def test_the_session_context_tags_the_record(server: Server, recorder: Recorder) -> None:
    """Session key and user in force around the call are on the record."""
    async with _session(recorder) as session:
        with llmaudit.session("sess-aio", user="alice"):
            async with session.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
                await r.read()
    record = recorder.one()
    assert (record.session_key, record.user) == ("sess-aio", "alice")


@pytest.mark.asyncio
async def test_an_internal_failure_never_reaches_the_caller(
    server: Server,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    expect_internal_errors: list[logging.LogRecord],
) -> None:
    """If llmaudit breaks before the call or while wrapping the response, the call is unaffected and
    the failure is logged."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("llmaudit bug")

    monkeypatch.setattr(llmaudit.providers, "match", broken)
    async with _session(recorder) as session, session.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
        assert await r.json() == CHAT_RESPONSE
    monkeypatch.undo()
    monkeypatch.setattr("llmaudit.transports.aiohttp._TeeReader", broken)
    async with _session(recorder) as session, session.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
        assert await r.json() == CHAT_RESPONSE
    sites = [r.getMessage() for r in expect_internal_errors]
    assert any("transport request capture" in s for s in sites)
    assert any("transport response capture" in s for s in sites)


# instrument(): every session created afterwards records; uninstrument() restores aiohttp


@pytest.mark.asyncio
async def test_sessions_record_after_instrument_and_stop_after_uninstrument(
    server: Server, recorder: Recorder
) -> None:
    """A plain ClientSession records once instrumented; after uninstrument() no session records, not
    even one created while instrumented."""
    llmaudit.instrument(auditor=recorder.auditor)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
                assert await r.json() == CHAT_RESPONSE
            assert len(recorder.records()) == 1
            llmaudit.uninstrument()
            async with session.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
                await r.read()
        async with aiohttp.ClientSession() as later:
            async with later.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
                await r.read()
    finally:
        llmaudit.uninstrument()
    assert len(recorder.records()) == 1


def test_instrument_wraps_the_session_init_once_and_uninstrument_restores_it(recorder: Recorder) -> None:
    """Idempotent; uninstrument() puts back the very same function."""
    original = aiohttp.ClientSession.__dict__["__init__"]
    llmaudit.instrument(auditor=recorder.auditor)
    llmaudit.instrument(auditor=recorder.auditor)
    patched = aiohttp.ClientSession.__dict__["__init__"]
    try:
        assert patched is not original
        assert patched.__wrapped__ is original
    finally:
        llmaudit.uninstrument()
    assert aiohttp.ClientSession.__dict__["__init__"] is original


@pytest.mark.asyncio
async def test_the_writer_process_builds_the_same_records(server: Server, tmp_path: Any) -> None:
    """writer="process": an aiohttp capture (its URL, packed headers, a kept or a streamed body)
    crosses to the child and gives the records the thread writer gives."""

    async def upload() -> AsyncIterator[bytes]:
        yield json.dumps(CHAT_REQUEST).encode()

    auditor = llmaudit.Auditor(
        f"sqlite:///{tmp_path}/p.db", spool_dir=str(tmp_path / "spool"), writer="process"
    )
    try:
        session = aiohttp.ClientSession(middlewares=(AuditMiddleware(auditor=auditor),))
        async with session:
            async with session.post(server.url + CHAT_PATH + "?api-version=1", json=CHAT_REQUEST) as r:
                await r.read()
            headers = {"content-type": "application/json"}
            async with session.post(server.url + CHAT_PATH, data=upload(), headers=headers) as r:
                await r.read()
        assert auditor.flush(30)
        records = sorted(auditor.storage.read(llmaudit.Query()), key=lambda r: r.created_at)
    finally:
        auditor.close()
    assert [(r.model, r.total_tokens, r.request) for r in records] == [
        ("gpt-4o-mini-2024-07-18", 12, CHAT_REQUEST),
        ("gpt-4o-mini-2024-07-18", 12, {"content_type": "application/json"}),
    ]
    assert records[0].url == server.url + CHAT_PATH + "?api-version=1"


def test_the_core_reads_an_aiohttp_url_as_an_httpx_one() -> None:
    """What the hot-path decision reads: the decoded host and path, the port only when the URL names
    one (httpx's ``url.port``), the raw query; ``str()`` is the URL sent."""
    import httpx
    import yarl

    # private: the capture layer, driven directly below the public transports
    from llmaudit.transports.aiohttp import _URL

    for text in (
        "https://api.openai.com/v1/chat/completions",
        "http://127.0.0.1:8765/openai/chat/completions?api-version=2024-10-21&x=a%20b",
    ):
        ours, theirs = _URL(yarl.URL(text)), httpx.URL(text)
        assert (ours.host, ours.path, ours.port, ours.query) == (
            theirs.host,
            theirs.path,
            theirs.port,
            theirs.query,
        )
        assert str(ours) == text


@pytest.mark.asyncio
async def test_the_middleware_applies_the_mapping_and_counts_what_it_passes_through(
    server: Server, recorder: Recorder, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """AuditMiddleware, attached by the user, maps hosts as configured (issue 17, item 1) and counts
    and warns about the requests it does not record, like the httpx transports."""
    # private: the warn-once set, cleared so each test sees its warning
    coverage._warned_hosts.clear()
    mapped = llmaudit.Auditor(
        "memory://aiohttp-mapped", spool_dir=str(tmp_path / "spool"), providers={"127.0.0.1": "openai"}
    )
    try:
        async with aiohttp.ClientSession(middlewares=(AuditMiddleware(auditor=mapped),)) as session:
            async with session.post(server.url + CHAT_PATH, json=CHAT_REQUEST) as r:
                await r.read()
        assert mapped.flush(10)
        (record,) = mapped.storage.read(llmaudit.Query())
        assert (record.provider, record.operation) == ("openai", "chat.completions")
        assert record.cost_usd is not None
    finally:
        mapped.close()
    with caplog.at_level(logging.WARNING, logger="llmaudit"):
        async with _session(recorder) as session, session.get(server.url + "/index.html") as r:
            await r.read()
    assert recorder.auditor.stats().unmatched == 1
    assert [r.name for r in caplog.records if "unrecorded" in r.getMessage()] == ["llmaudit"]
