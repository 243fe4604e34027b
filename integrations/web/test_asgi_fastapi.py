"""FastAPI (Starlette) with llmaudit.web.asgi.SessionMiddleware, end to end."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from integrations.web.conftest import Recorded
from llmaudit.web.asgi import SessionMiddleware

pytestmark = pytest.mark.integration


def make_app(recorded: Recorded, gate: asyncio.Event | None = None) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        SessionMiddleware,
        user_resolver=lambda scope: dict(scope["headers"]).get(b"x-user", b"").decode() or None,
    )

    @app.get("/ask/{tag}")
    async def ask(tag: str) -> dict[str, str | None]:
        if gate is not None:
            await gate.wait()  # both requests are in flight at once
        return {"seen": recorded.llm_step(tag)}

    @app.get("/stream/{tag}")
    async def stream(tag: str) -> StreamingResponse:
        async def body() -> object:
            yield b"start "
            await asyncio.sleep(0)
            yield (recorded.llm_step(tag) or "none").encode()

        return StreamingResponse(body())  # type: ignore[arg-type]

    return app


@pytest.mark.asyncio
async def test_two_concurrent_requests_keep_their_own_keys(recorded: Recorded) -> None:
    """Two requests in flight together, different headers: each handler and record sees its own key."""
    gate = asyncio.Event()
    transport = httpx.ASGITransport(app=make_app(recorded, gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = asyncio.create_task(
            client.get("/ask/a", headers={"X-Session-Key": "key-a", "X-User": "alice"})
        )
        second = asyncio.create_task(
            client.get("/ask/b", headers={"X-Session-Key": "key-b", "X-User": "bob"})
        )
        await asyncio.sleep(0.05)
        gate.set()
        responses = await asyncio.gather(first, second)
    assert [r.json() for r in responses] == [{"seen": "key-a"}, {"seen": "key-b"}]
    assert recorded.keys_by_tag() == {"a": "key-a", "b": "key-b"}
    assert sorted(r.user or "" for r in recorded.records()) == ["alice", "bob"]


def test_streaming_response_sees_the_session_while_streaming(recorded: Recorded) -> None:
    """A StreamingResponse body runs inside the middleware call, so its LLM calls carry the key."""
    with TestClient(make_app(recorded)) as client:
        assert client.get("/stream/s", headers={"X-Session-Key": "streamed"}).text == "start streamed"
    assert recorded.keys_by_tag() == {"s": "streamed"}


def test_no_header_means_no_session_and_a_bad_header_never_breaks_the_request(
    recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a key the request runs unbound; an over-long key is logged and ignored."""
    with TestClient(make_app(recorded)) as client, caplog.at_level(logging.WARNING, "llmaudit"):
        assert client.get("/ask/none").json() == {"seen": None}
        assert client.get("/ask/bad", headers={"X-Session-Key": "k" * 300}).status_code == 200
    assert recorded.keys_by_tag() == {"none": None, "bad": None}
    assert "limit is 255" in caplog.text
