"""FastAPI (Starlette) with llmaudit.web.asgi.SessionMiddleware, end to end."""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from integrations.web.conftest import Recorded
from llmaudit import ConfigurationError
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


def _cookie_app(recorded: Recorded, **options: object) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, cookie="session", **options)  # type: ignore[arg-type]

    @app.get("/ask/{tag}")
    async def ask(tag: str) -> dict[str, str | None]:
        return {"seen": recorded.llm_step(tag)}

    return app


COOKIE = "s3cr3t-session-cookie-value-0123456789"


def test_a_session_cookie_is_recorded_as_a_keyed_hash_never_as_itself(stored: Recorded) -> None:
    """``cookie="session"``: the records carry ``sid-<hex>``, the same for every request with that
    cookie (among other cookies), another for another cookie; the cookie is nowhere on disk."""
    with TestClient(_cookie_app(stored, secret="test-only-secret")) as client:
        seen = [
            client.get(f"/ask/{tag}", headers={"Cookie": cookie}).json()["seen"]
            for tag, cookie in (("a", f"session={COOKIE}"), ("b", f"theme=dark; session={COOKIE}; x"))
        ]
        other = client.get("/ask/c", headers={"Cookie": "session=another-one"}).json()["seen"]
        header_wins = client.get("/ask/d", headers={"Cookie": f"session={COOKIE}", "X-Session-Key": "k"})
    keys = stored.keys_by_tag()
    disk = stored.stored_bytes()
    assert COOKIE.encode() not in disk and b"another-one" not in disk
    assert seen[0].encode() in disk  # the test looks in the right place
    assert seen[0] == seen[1] == keys["a"] == keys["b"]
    assert re.fullmatch(r"sid-[0-9a-f]{32}", seen[0])
    assert other not in (seen[0], None)
    assert header_wins.json() == {"seen": "k"}


def test_a_session_cookie_needs_a_secret_unless_raw_is_asked_for(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without secret= or LLMAUDIT_REDACT_KEY the app fails at start-up (a per-process key would
    split sessions across workers); the same secret gives the same stand-in; raw_cookie opts out."""
    with pytest.raises(ConfigurationError, match="LLMAUDIT_REDACT_KEY"), TestClient(_cookie_app(recorded)):
        pass
    monkeypatch.setenv("LLMAUDIT_REDACT_KEY", "from-the-environment")
    with TestClient(_cookie_app(recorded)) as client:
        from_env = client.get("/ask/a", headers={"Cookie": f"session={COOKIE}"}).json()["seen"]
    with TestClient(_cookie_app(recorded, secret="from-the-environment")) as client:
        same_secret = client.get("/ask/b", headers={"Cookie": f"session={COOKIE}"}).json()["seen"]
    with TestClient(_cookie_app(recorded, raw_cookie=True)) as client:
        raw = client.get("/ask/c", headers={"Cookie": f"session={COOKIE}"}).json()["seen"]
    assert from_env == same_secret and from_env.startswith("sid-")
    assert raw == COOKIE
