"""The child process of tests/test_strict.py: audited calls while no file can be written.

Run as ``python strict_child.py WORKDIR``. For each scenario it opens an Auditor (``mode="sync"``,
a JSONL store and a spool under WORKDIR), then lowers RLIMIT_FSIZE to 0 bytes, so that every write
to the store and to the spool fails for real with EFBIG (SIGXFSZ ignored), makes one audited call,
restores the limit, and notes what the caller saw. It prints one JSON object: scenario -> outcome.
A child process, because the limit applies to the whole process (pytest's own files included).
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import aiohttp.web  # noqa: E402
import httpx  # noqa: E402
import httpx2  # noqa: E402
import openai  # noqa: E402
from tests.wire import CHAT_REQUEST, CHAT_RESPONSE, CHAT_URL, SSE_CHUNKS  # noqa: E402

import llmaudit  # noqa: E402
from llmaudit.transports.aiohttp import AuditMiddleware  # noqa: E402

FAKE_KEY = "sk-test-FAKE-strict-0123456789abcdef"
BRANCHES = {"httpx": httpx, "httpx2": httpx2}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
#: the scenarios also run without strict (the caller must not notice anything)
LENIENT = (
    "transport_post[httpx2]",
    "openai_create",
    "decorated_function",
    "transport_stream[httpx]",
    "aiohttp_post",
    "aiohttp_stream",
)


class Harness:
    """One scenario: an Auditor whose store and spool cannot be written while the call runs."""

    def __init__(self, workdir: Path, name: str, strict: bool) -> None:
        self.dir = workdir / name
        self.auditor = llmaudit.Auditor(
            f"jsonl://{self.dir / 'store'}",
            spool_dir=str(self.dir / "spool"),
            mode="sync",
            strict=strict,
            handle_sigterm=False,
        )
        self.handler_calls = 0
        self.chunks: list[bytes] = []

    def json_handler(self, hx: Any) -> Callable[[Any], Any]:
        def handler(request: Any) -> Any:
            self.handler_calls += 1
            return hx.Response(200, json=CHAT_RESPONSE)

        return handler

    def transport(self, hx: Any, handler: Callable[[Any], Any], *, is_async: bool = False) -> Any:
        shell = llmaudit.AsyncAuditTransport if is_async else llmaudit.AuditTransport
        return shell(hx.MockTransport(handler), auditor=self.auditor)

    def sse_handler(self, hx: Any, *, is_async: bool) -> Callable[[Any], Any]:
        def sync_body() -> Iterator[bytes]:
            yield from SSE_CHUNKS

        async def async_body() -> AsyncIterator[bytes]:
            for chunk in SSE_CHUNKS:
                yield chunk

        def handler(request: Any) -> Any:
            self.handler_calls += 1
            body = async_body() if is_async else sync_body()
            return hx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

        return handler

    def stored_bytes(self) -> int:
        """Every byte in the store and the spool: nothing of the call may be there."""
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())


def _unwritable() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))


def _writable() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


# -- the transport, both branches, sync ---------------------------------------------------------


def transport_post(h: Harness, hx: Any) -> None:
    transport = h.transport(hx, h.json_handler(hx))
    with hx.Client(transport=transport) as client:
        client.post(CHAT_URL, json=CHAT_REQUEST)


def transport_post_streamed_body(h: Harness, hx: Any) -> None:
    """A non-streamed call whose body arrives as a stream (as over the network): read by the client."""
    transport = h.transport(hx, h.sse_handler(hx, is_async=False))
    with hx.Client(transport=transport) as client:
        client.post(CHAT_URL, json=CHAT_REQUEST)


def transport_stream(h: Harness, hx: Any) -> None:
    transport = h.transport(hx, h.sse_handler(hx, is_async=False))
    with hx.Client(transport=transport) as client, client.stream("POST", CHAT_URL, json=CHAT_REQUEST) as r:
        for chunk in r.iter_raw():
            h.chunks.append(chunk)


def transport_stream_closed_early(h: Harness, hx: Any) -> None:
    transport = h.transport(hx, h.sse_handler(hx, is_async=False))
    with hx.Client(transport=transport) as client, client.stream("POST", CHAT_URL, json=CHAT_REQUEST) as r:
        iterator = r.iter_raw()
        h.chunks.append(next(iterator))
        h.chunks.append(next(iterator))


def transport_connect_error(h: Harness, hx: Any) -> None:
    def handler(request: Any) -> Any:
        h.handler_calls += 1
        raise hx.ConnectError("connection refused", request=request)

    with hx.Client(transport=h.transport(hx, handler)) as client:
        client.post(CHAT_URL, json=CHAT_REQUEST)


# -- the transport, both branches, async --------------------------------------------------------


async def async_transport_post(h: Harness, hx: Any) -> None:
    transport = h.transport(hx, h.json_handler(hx), is_async=True)
    async with hx.AsyncClient(transport=transport) as client:
        await client.post(CHAT_URL, json=CHAT_REQUEST)


async def async_transport_stream(h: Harness, hx: Any) -> None:
    transport = h.transport(hx, h.sse_handler(hx, is_async=True), is_async=True)
    async with hx.AsyncClient(transport=transport) as client:
        async with client.stream("POST", CHAT_URL, json=CHAT_REQUEST) as r:
            async for chunk in r.aiter_raw():
                h.chunks.append(chunk)


async def async_transport_stream_closed_early(h: Harness, hx: Any) -> None:
    transport = h.transport(hx, h.sse_handler(hx, is_async=True), is_async=True)
    async with hx.AsyncClient(transport=transport) as client:
        async with client.stream("POST", CHAT_URL, json=CHAT_REQUEST) as r:
            iterator = r.aiter_raw()
            h.chunks.append(await iterator.__anext__())
            await iterator.aclose()


async def async_transport_stream_cancelled(h: Harness, hx: Any) -> None:
    """A task cancelled mid-stream stays cancelled: strict never turns it into an AuditError."""
    release = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield SSE_CHUNKS[0]
        await release.wait()
        yield SSE_CHUNKS[1]

    def handler(request: Any) -> Any:
        return hx.Response(200, headers={"content-type": "text/event-stream"}, content=stalled())

    first = asyncio.Event()

    async def consume(client: Any) -> None:
        async with client.stream("POST", CHAT_URL, json=CHAT_REQUEST) as r:
            async for chunk in r.aiter_raw():
                h.chunks.append(chunk)
                first.set()

    transport = h.transport(hx, handler, is_async=True)
    async with hx.AsyncClient(transport=transport) as client:
        task = asyncio.create_task(consume(client))
        await first.wait()
        task.cancel()
        await task


# -- aiohttp, through the audit middleware ----------------------------------------------------------


class AiohttpServer:
    """An aiohttp server on 127.0.0.1 answering the chat path with JSON, or SSE when asked; a stream
    waits for ``release`` after its first chunk when ``stall`` is set."""

    def __init__(self, stall: bool = False) -> None:
        self.app = aiohttp.web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.release = asyncio.Event()
        self.stall = stall
        self._runner = aiohttp.web.AppRunner(self.app)
        self.url = ""

    async def __aenter__(self) -> AiohttpServer:
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1/chat/completions"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release.set()
        await self._runner.cleanup()

    async def chat(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return aiohttp.web.json_response(CHAT_RESPONSE)
        response = aiohttp.web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            for i, chunk in enumerate(SSE_CHUNKS):
                if i == 1 and self.stall:
                    await self.release.wait()
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        return response


def _aiohttp_session(h: Harness) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(middlewares=(AuditMiddleware(auditor=h.auditor),))


async def aiohttp_post(h: Harness) -> None:
    async with AiohttpServer() as server, _aiohttp_session(h) as session:
        async with session.post(server.url, json=CHAT_REQUEST) as r:
            h.handler_calls += 1
            await r.json()


async def aiohttp_stream(h: Harness) -> None:
    async with AiohttpServer() as server, _aiohttp_session(h) as session:
        async with session.post(server.url, json={**CHAT_REQUEST, "stream": True}) as r:
            async for chunk in r.content.iter_any():
                h.chunks.append(chunk)


async def aiohttp_stream_closed_early(h: Harness) -> None:
    async with AiohttpServer(stall=True) as server, _aiohttp_session(h) as session:
        async with session.post(server.url, json={**CHAT_REQUEST, "stream": True}) as r:
            h.chunks.append(await r.content.readany())


async def aiohttp_stream_cancelled(h: Harness) -> None:
    async with AiohttpServer(stall=True) as server, _aiohttp_session(h) as session:
        first = asyncio.Event()

        async def consume() -> None:
            async with session.post(server.url, json={**CHAT_REQUEST, "stream": True}) as r:
                async for chunk in r.content.iter_any():
                    h.chunks.append(chunk)
                    first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        task.cancel()
        await task


async def aiohttp_connect_error(h: Harness) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _aiohttp_session(h) as session:
        h.handler_calls += 1
        await session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT_REQUEST)


# -- the real openai SDK over httpx2 -----------------------------------------------------------


def openai_create(h: Harness) -> None:
    transport = h.transport(httpx2, h.json_handler(httpx2))
    http_client = httpx2.Client(transport=transport)
    with openai.OpenAI(api_key=FAKE_KEY, http_client=http_client, max_retries=2) as client:
        client.chat.completions.create(**CHAT)


def openai_stream(h: Harness) -> None:
    transport = h.transport(httpx2, h.sse_handler(httpx2, is_async=False))
    http_client = httpx2.Client(transport=transport)
    with openai.OpenAI(api_key=FAKE_KEY, http_client=http_client, max_retries=2) as client:
        stream = client.chat.completions.create(**CHAT, stream=True)
        with stream:
            for event in stream:
                h.chunks.append(event.model_dump_json().encode())


async def async_openai_create(h: Harness) -> None:
    transport = h.transport(httpx2, h.json_handler(httpx2), is_async=True)
    http_client = httpx2.AsyncClient(transport=transport)
    async with openai.AsyncOpenAI(api_key=FAKE_KEY, http_client=http_client, max_retries=2) as client:
        await client.chat.completions.create(**CHAT)


# -- @audited -----------------------------------------------------------------------------------


def decorated_function(h: Harness) -> None:
    @llmaudit.audited(auditor=h.auditor)
    def answer(question: str) -> str:
        h.handler_calls += 1
        return "42"

    answer("why?")


def decorated_function_raising(h: Harness) -> None:
    @llmaudit.audited(auditor=h.auditor)
    def answer(question: str) -> str:
        h.handler_calls += 1
        raise ValueError("the body failed")

    answer("why?")


async def decorated_coroutine(h: Harness) -> None:
    @llmaudit.audited(auditor=h.auditor)
    async def answer(question: str) -> str:
        h.handler_calls += 1
        return "42"

    await answer("why?")


def decorated_generator(h: Harness) -> None:
    @llmaudit.audited(auditor=h.auditor)
    def tokens(question: str) -> Iterator[bytes]:
        h.handler_calls += 1
        yield b"4"
        yield b"2"

    for token in tokens("why?"):
        h.chunks.append(token)


async def decorated_async_generator(h: Harness) -> None:
    @llmaudit.audited(auditor=h.auditor)
    async def tokens(question: str) -> AsyncIterator[bytes]:
        h.handler_calls += 1
        yield b"4"
        yield b"2"

    async for token in tokens("why?"):
        h.chunks.append(token)


def _scenarios() -> dict[str, Callable[[Harness], Any]]:
    scenarios: dict[str, Callable[[Harness], Any]] = {}
    for name, hx in BRANCHES.items():
        for fn in (
            transport_post,
            transport_post_streamed_body,
            transport_stream,
            transport_stream_closed_early,
            transport_connect_error,
        ):
            scenarios[f"{fn.__name__}[{name}]"] = lambda h, fn=fn, hx=hx: fn(h, hx)
        for afn in (
            async_transport_post,
            async_transport_stream,
            async_transport_stream_closed_early,
            async_transport_stream_cancelled,
        ):
            scenarios[f"{afn.__name__}[{name}]"] = lambda h, afn=afn, hx=hx: asyncio.run(afn(h, hx))
    for aio in (
        aiohttp_post,
        aiohttp_stream,
        aiohttp_stream_closed_early,
        aiohttp_stream_cancelled,
        aiohttp_connect_error,
    ):
        scenarios[aio.__name__] = lambda h, aio=aio: asyncio.run(aio(h))
    scenarios["openai_create"] = openai_create
    scenarios["openai_stream"] = openai_stream
    scenarios["async_openai_create"] = lambda h: asyncio.run(async_openai_create(h))
    scenarios["decorated_function"] = decorated_function
    scenarios["decorated_function_raising"] = decorated_function_raising
    scenarios["decorated_coroutine"] = lambda h: asyncio.run(decorated_coroutine(h))
    scenarios["decorated_generator"] = decorated_generator
    scenarios["decorated_async_generator"] = lambda h: asyncio.run(decorated_async_generator(h))
    return scenarios


def _run(workdir: Path, name: str, scenario: Callable[[Harness], Any], strict: bool) -> dict[str, Any]:
    key = f"{'strict' if strict else 'lenient'}:{name}"
    harness = Harness(workdir, key.replace(":", "-").replace("[", "-").replace("]", ""), strict)
    outcome: dict[str, Any] = {"raised": None}
    _unwritable()
    try:
        scenario(harness)
    except BaseException as exc:  # the outcome is what is being observed
        cause = exc.__cause__ or exc.__context__
        outcome.update(
            raised=type(exc).__name__,
            message=str(exc),
            chained=None if cause is None else type(cause).__name__,
            chain=[type(e).__name__ for e in _chain(exc)],
        )
    finally:
        _writable()
    stats = harness.auditor.stats()
    outcome.update(
        handler_calls=harness.handler_calls,
        chunks=len(harness.chunks),
        received=sum(len(c) for c in harness.chunks),
        failed=stats.failed,
        written=stats.written,
        spilled=stats.spilled,
        stored_bytes=harness.stored_bytes(),
    )
    harness.auditor.close()
    return {key: outcome}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def main() -> None:
    workdir = Path(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    results: dict[str, Any] = {}
    try:
        for name, scenario in _scenarios().items():
            results.update(_run(workdir, name, scenario, strict=True))
        for name in LENIENT:
            results.update(_run(workdir, name, _scenarios()[name], strict=False))
    except BaseException:  # the parent shows this
        traceback.print_exc()
        sys.exit(1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
