"""Flask with llmaudit.web.wsgi.SessionMiddleware, end to end."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask, Response, stream_with_context

from integrations.web.conftest import Recorded
from llmaudit.web._binding import hash_session_id
from llmaudit.web.wsgi import SessionMiddleware

pytestmark = pytest.mark.integration


def make_app(recorded: Recorded, barrier: threading.Barrier | None = None) -> Flask:
    app = Flask(__name__)
    app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, user_resolver=lambda environ: environ.get("HTTP_X_USER")
    )

    @app.get("/ask/<tag>")
    def ask(tag: str) -> dict[str, str | None]:
        if barrier is not None:
            barrier.wait(5)  # both requests are being handled at the same time
        return {"seen": recorded.llm_step(tag)}

    @app.get("/stream/<tag>")
    def stream(tag: str) -> Response:
        def body() -> Iterator[str]:
            yield "start "
            yield recorded.llm_step(tag) or "none"

        return Response(stream_with_context(body()))

    return app


def test_two_concurrent_requests_in_two_threads_keep_their_own_keys(recorded: Recorded) -> None:
    """Two threads handled at once with different headers: each record carries its own key and user."""
    barrier = threading.Barrier(2)
    app = make_app(recorded, barrier)
    seen: dict[str, object] = {}

    def call(tag: str, key: str, user: str) -> None:
        response = app.test_client().get(f"/ask/{tag}", headers={"X-Session-Key": key, "X-User": user})
        seen[tag] = response.get_json()

    threads = [
        threading.Thread(target=call, args=args) for args in (("a", "key-a", "alice"), ("b", "key-b", "bob"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"a": {"seen": "key-a"}, "b": {"seen": "key-b"}}
    assert recorded.keys_by_tag() == {"a": "key-a", "b": "key-b"}
    assert sorted(r.user or "" for r in recorded.records()) == ["alice", "bob"]


def test_streamed_body_still_sees_the_session(recorded: Recorded) -> None:
    """A WSGI body produced after the view returns is still inside the session until closed."""
    client = make_app(recorded).test_client()
    assert (
        client.get("/stream/s", headers={"X-Session-Key": "streamed"}).get_data(as_text=True)
        == "start streamed"
    )
    assert recorded.keys_by_tag() == {"s": "streamed"}


def test_the_session_ends_with_the_request(recorded: Recorded) -> None:
    """After a request, the next one without a header is unbound (nothing leaks between requests)."""
    client = make_app(recorded).test_client()
    client.get("/ask/first", headers={"X-Session-Key": "first"})
    assert client.get("/ask/second").get_json() == {"seen": None}


def test_a_session_cookie_is_recorded_as_a_keyed_hash_never_as_itself(stored: Recorded) -> None:
    """``cookie="session"`` on WSGI: ``sid-<hex>``, the same for the session's requests (and as on
    ASGI with the same secret); the cookie's value is nowhere on disk."""
    app = Flask(__name__)
    app.wsgi_app = SessionMiddleware(app.wsgi_app, cookie="session", secret="test-only-secret")  # type: ignore[method-assign]

    @app.get("/ask/<tag>")
    def ask(tag: str) -> dict[str, str | None]:
        return {"seen": stored.llm_step(tag)}

    client = app.test_client()
    client.set_cookie("session", "flask-cookie-value-0123456789")
    seen = [client.get(f"/ask/{tag}").get_json()["seen"] for tag in ("a", "b")]
    keys = stored.keys_by_tag()
    disk = stored.stored_bytes()
    assert b"flask-cookie-value-0123456789" not in disk
    assert seen[0].encode() in disk
    assert seen[0] == seen[1] == keys["a"] == keys["b"]
    assert seen[0] == hash_session_id("flask-cookie-value-0123456789", b"test-only-secret", "sid")
