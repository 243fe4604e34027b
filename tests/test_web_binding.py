"""llmaudit.web._binding's body carriers: a response body produced after the middleware returned runs,
chunk by chunk, inside the request's context, and never changes the context of whoever consumes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextvars import Context, ContextVar, copy_context

import pytest

import llmaudit
from llmaudit.web._binding import aiterate_in, iterate_in

MARK: ContextVar[str] = ContextVar("MARK", default="consumer")


def _key() -> str | None:
    ctx = llmaudit.current_session()
    return ctx.session_key if ctx else None


def _request_context() -> Context:
    """A context as a middleware captures it: the request's session bound, then left again."""
    with llmaudit.session("request-key"):
        ctx = copy_context()
    assert _key() is None
    return ctx


def test_a_sync_body_runs_in_the_request_context_and_its_own_changes_stay_there() -> None:
    """Every chunk sees the request's session; a variable the body sets lasts for its later chunks
    (as in a plain generator), and neither reaches the consumer, between chunks or after."""
    ctx = _request_context()
    seen: list[tuple[str | None, str]] = []

    def body() -> Iterator[int]:
        seen.append((_key(), MARK.get()))
        MARK.set("body")
        yield 1
        seen.append((_key(), MARK.get()))
        yield 2

    chunks = iterate_in(body(), ctx)
    assert next(chunks) == 1
    assert (_key(), MARK.get()) == (None, "consumer")
    assert list(chunks) == [2]
    assert seen == [("request-key", "consumer"), ("request-key", "body")]
    assert _key() is None and MARK.get() == "consumer"


@pytest.mark.asyncio
async def test_an_async_body_runs_in_the_request_context_across_its_awaits() -> None:
    """Each step of each chunk (the code after an await included) sees the request's session; a
    session the body opens across its chunks stays its own; the consumer's context never changes."""
    ctx = _request_context()
    seen: list[str | None] = []

    async def body() -> AsyncIterator[str]:
        await asyncio.sleep(0)
        seen.append(_key())
        yield "a"
        async with llmaudit.session("inner"):
            yield "b"
            await asyncio.sleep(0)
            seen.append(_key())
            yield "c"
        seen.append(_key())

    chunks = aiterate_in(body(), ctx)
    got = []
    async for chunk in chunks:
        got.append(chunk)
        assert _key() is None  # between chunks, in the consumer
    assert got == ["a", "b", "c"]
    assert seen == ["request-key", "inner", "request-key"]


@pytest.mark.asyncio
async def test_cancellation_reaches_the_async_body_inside_the_request_context() -> None:
    """The client goes away while the body awaits the model: the CancelledError is thrown into the
    body where it waits, the body's handler still sees the session, and the cancellation reaches
    the consumer as it would without llmaudit."""
    ctx = _request_context()
    waiting, never = asyncio.Event(), asyncio.Event()
    cleanup: list[str | None] = []

    async def body() -> AsyncIterator[str]:
        try:
            waiting.set()
            await never.wait()
            yield "never"
        except asyncio.CancelledError:
            cleanup.append(_key())
            raise

    chunks = aiterate_in(body(), ctx)
    consumer = asyncio.ensure_future(chunks.__anext__())
    await waiting.wait()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert cleanup == ["request-key"]
    assert _key() is None


@pytest.mark.asyncio
async def test_a_body_error_and_a_value_sent_in_pass_through_unchanged() -> None:
    """The body's own exception reaches the consumer as raised; values the loop sends back into an
    await (a future's result) reach the body."""
    ctx = _request_context()

    async def body() -> AsyncIterator[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        loop.call_soon(future.set_result, 41)
        yield await future + 1
        raise LookupError("the body's own")

    chunks = aiterate_in(body(), ctx)
    assert await chunks.__anext__() == 42
    with pytest.raises(LookupError, match="the body's own"):
        await chunks.__anext__()
