"""Django with llmaudit.web.django.SessionMiddleware: the Django session, recorded as a keyed hash of
its key (the ``sessionid`` cookie is a credential), or the X-Session-Key header; a first visit gets its
session at once; a streamed body carries the request's key, under WSGI and ASGI."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.util import FileWrapper, setup_testing_defaults

import django
import httpx
import httpx2
import pytest
from django.conf import settings
from openai import AsyncOpenAI, OpenAI

import llmaudit

pytestmark = pytest.mark.integration

RECORDED: list[Any] = []

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-not-a-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "llmaudit.web.django.SessionMiddleware",
        ],
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
    django.setup()

from django.contrib.sessions.models import Session
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.http import FileResponse, HttpRequest, JsonResponse, StreamingHttpResponse
from django.test import Client, override_settings
from django.urls import path

from integrations.web.conftest import Recorded
from llmaudit import AuditRecord, ConfigurationError
from llmaudit.web.django import session_key_for

BARRIER: list[threading.Barrier] = []
LLM: list[OpenAI] = []
ALLM: list[AsyncOpenAI] = []
MODEL = "gpt-4o-mini-2024-07-18"
DJANGO_KEY = r"dj-[0-9a-f]{32}"


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-stream1",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": MODEL,
        "system_fingerprint": "fp_06737a9306",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def openai_stream(request: httpx2.Request) -> httpx2.Response:
    """api.openai.com streaming a chat completion: server-sent chunks, then ``[DONE]``."""
    question = json.loads(request.content)["messages"][-1]["content"]
    body = b"".join(
        [
            _chunk({"role": "assistant", "content": ""}),
            *(_chunk({"content": word}) for word in ("You", " asked", f" {question}")),
            _chunk({}, "stop"),
            b"data: [DONE]\n\n",
        ]
    )
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def _question(tag: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": tag}], "stream": True}


def ask(request: HttpRequest, tag: str) -> JsonResponse:
    if BARRIER:
        BARRIER[0].wait(5)
    return JsonResponse({"seen": RECORDED[0].llm_step(tag)})


def remember(request: HttpRequest) -> JsonResponse:
    request.session["visited"] = True
    request.session.save()  # the visitor now has a Django session key (sent back as its cookie)
    return JsonResponse({"key": request.session.session_key})


def stream(request: HttpRequest, tag: str) -> StreamingHttpResponse:
    """The usual shape of an LLM view: it returns at once, and the body streams the model's answer to
    the browser as it arrives, so the LLM call is made after the view (and every middleware) returned."""

    def body() -> Iterator[bytes]:
        yield (RECORDED[0].llm_step(tag) or "none").encode()
        for chunk in LLM[0].chat.completions.create(**_question(tag)):
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content.encode()

    return StreamingHttpResponse(body(), content_type="text/plain")


async def astream(request: HttpRequest, tag: str) -> StreamingHttpResponse:
    """The same under ASGI: an async view and an async body (Django serves it without a thread)."""

    async def body() -> AsyncIterator[bytes]:
        yield (RECORDED[0].llm_step(tag) or "none").encode()
        async for chunk in await ALLM[0].chat.completions.create(**_question(tag)):
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content.encode()

    return StreamingHttpResponse(body(), content_type="text/plain")


def download(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(b"a file"), filename="a.txt")


def header_user(request: HttpRequest) -> str | None:
    """A user resolver that does not look at the session (Django's default one does)."""
    return request.headers.get("X-User")


def not_for_probes(request: HttpRequest) -> bool:
    """An ``LLMAUDIT_CREATE_SESSION`` rule: no session for the load balancer's health probe."""
    return request.path != "/ask/health"


urlpatterns = [
    path("ask/<str:tag>", ask),
    path("remember", remember),
    path("stream/<str:tag>", stream),
    path("astream/<str:tag>", astream),
    path("download", download),
]


@pytest.fixture(autouse=True)
def _recorded(recorded: Recorded) -> Any:
    RECORDED[:] = [recorded]
    BARRIER.clear()
    transport = llmaudit.AuditTransport(httpx2.MockTransport(openai_stream), auditor=recorded.auditor)
    LLM[:] = [OpenAI(api_key="sk-test-FAKE-0123456789", http_client=httpx2.Client(transport=transport))]
    yield
    LLM.pop().close()
    RECORDED.clear()


def _by_source(records: list[AuditRecord]) -> dict[str, list[str | None]]:
    keys: dict[str, list[str | None]] = {}
    for record in records:
        keys.setdefault(record.source, []).append(record.session_key)
    return keys


def test_the_django_session_is_recorded_as_a_keyed_hash_never_the_cookie(stored: Recorded) -> None:
    """The sessionid cookie logs its holder in: the records carry ``dj-<hex>`` instead, the same for
    every request of the session and different for another session; the cookie's value is nowhere in
    the bytes written to disk."""
    RECORDED[:] = [stored]
    client = Client()
    key = client.get("/remember").json()["key"]
    cookie = client.cookies["sessionid"].value
    assert key and cookie == key
    first, second = client.get("/ask/a").json()["seen"], client.get("/ask/b").json()["seen"]
    other = Client()
    other.get("/remember")
    third = other.get("/ask/c").json()["seen"]
    keys = stored.keys_by_tag()
    disk = stored.stored_bytes()
    assert cookie.encode() not in disk
    assert other.cookies["sessionid"].value.encode() not in disk
    assert first.encode() in disk  # the test looks in the right place
    assert first == second == keys["a"] == keys["b"] == session_key_for(cookie)
    assert re.fullmatch(r"dj-[0-9a-f]{32}", first)
    assert third == keys["c"] and third not in (first, None)


def test_the_stand_in_is_stable_across_middleware_instances_and_keyed_by_secret_key(
    recorded: Recorded,
) -> None:
    """A new middleware (another process) gives the same stand-in for the same session, so the
    session's records group together; another SECRET_KEY gives another one (the hash is keyed)."""
    client = Client()
    client.get("/remember")
    cookie = client.cookies["sessionid"].value
    later = Client()  # a fresh handler: the middleware is built again
    later.cookies["sessionid"] = cookie
    assert later.get("/ask/a").json()["seen"] == client.get("/ask/b").json()["seen"]
    with override_settings(SECRET_KEY="another-test-only-secret"):
        elsewhere = Client()
        elsewhere.cookies["sessionid"] = cookie
        other_deployment = elsewhere.get("/ask/c").json()["seen"]
    keys = recorded.keys_by_tag()
    assert keys["a"] == keys["b"] == session_key_for(cookie)
    assert other_deployment.startswith("dj-") and other_deployment != keys["a"]


def test_the_raw_django_session_key_only_when_opted_in(recorded: Recorded) -> None:
    """``LLMAUDIT_RAW_SESSION_KEY = True`` records the key itself, as the origin platform did."""
    with override_settings(LLMAUDIT_RAW_SESSION_KEY=True):
        client = Client()
        key = client.get("/remember").json()["key"]
        assert client.get("/ask/a").json() == {"seen": key}
        assert session_key_for(key) == key
    assert recorded.keys_by_tag() == {"a": key}


def test_header_wins_and_two_concurrent_requests_keep_their_keys(recorded: Recorded) -> None:
    """Two threads at once with different X-Session-Key headers: each sees and records its own."""
    BARRIER.append(threading.Barrier(2))
    seen: dict[str, Any] = {}

    def call(tag: str) -> None:
        seen[tag] = Client().get(f"/ask/{tag}", headers={"X-Session-Key": f"hdr-{tag}"}).json()

    threads = [threading.Thread(target=call, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"a": {"seen": "hdr-a"}, "b": {"seen": "hdr-b"}}
    assert recorded.keys_by_tag() == {"a": "hdr-a", "b": "hdr-b"}


def test_with_creation_off_a_first_visit_runs_unbound_and_untouched(recorded: Recorded) -> None:
    """``LLMAUDIT_CREATE_SESSION = False``: a first request has no Django session key yet, so it runs
    unbound, and llmaudit gives it no session (no cookie, nothing saved)."""
    with override_settings(LLMAUDIT_CREATE_SESSION=False):
        response = Client().get(f"/ask/{uuid.uuid4().hex[:6]}")
    assert response.json() == {"seen": None}
    assert "sessionid" not in response.cookies


def test_a_first_visit_gets_its_session_at_once_and_keeps_it(stored: Recorded) -> None:
    """No cookie yet: the middleware saves the visitor's session before the view runs, so the first
    request's records carry its key (as its keyed hash: the new cookie is nowhere on disk), and the
    next request, with the cookie Django set, the same one."""
    RECORDED[:] = [stored]
    client = Client()
    first = client.get("/ask/a").json()["seen"]
    cookie = client.cookies["sessionid"].value
    second = client.get("/ask/b").json()["seen"]
    other = Client().get("/ask/c").json()["seen"]
    assert re.fullmatch(DJANGO_KEY, first)
    assert first == second == session_key_for(cookie)
    assert other not in (first, None)
    assert stored.keys_by_tag() == {"a": first, "b": first, "c": other}
    disk = stored.stored_bytes()
    assert first.encode() in disk and cookie.encode() not in disk


def test_creation_can_be_decided_per_request_and_a_bad_setting_fails_at_start_up(
    recorded: Recorded,
) -> None:
    """``LLMAUDIT_CREATE_SESSION`` as a dotted path to ``request -> bool``: the health probe gets no
    session (no cookie, unbound), a page does; a value that is neither fails when Django loads the
    middleware, naming the setting."""
    with override_settings(LLMAUDIT_CREATE_SESSION=f"{__name__}.not_for_probes"):
        probe, page = Client().get("/ask/health"), Client().get("/ask/page")
    assert probe.json() == {"seen": None} and "sessionid" not in probe.cookies
    assert page.json()["seen"] == session_key_for(page.cookies["sessionid"].value)
    for bad in ("yes", 1):
        with (
            override_settings(LLMAUDIT_CREATE_SESSION=bad),
            pytest.raises(ConfigurationError, match="LLMAUDIT_CREATE_SESSION must be True, False or"),
        ):
            Client().get("/ask/a")


def test_a_stale_cookie_gets_a_new_session_instead_of_a_key_no_session_has(recorded: Recorded) -> None:
    """A returning visitor whose session expired (or was cleared) still sends its old cookie: the first
    request gets a new session, and its records group with the later ones, not under the dead key. A
    live session that the view does not use is left as it is: no new cookie, no ``Vary: Cookie``."""
    stale = "expiredsessionkey0123456789abcde"
    client = Client()
    client.cookies["sessionid"] = stale
    first = client.get("/ask/a").json()["seen"]
    fresh = client.cookies["sessionid"].value
    second = client.get("/ask/b").json()["seen"]
    assert fresh != stale
    assert first == second == session_key_for(fresh) != session_key_for(stale)
    with override_settings(LLMAUDIT_USER_RESOLVER=f"{__name__}.header_user"):
        live = Client()
        live.cookies["sessionid"] = fresh
        untouched = live.get("/ask/c")
    assert untouched.json() == {"seen": first}
    assert "sessionid" not in untouched.cookies and not untouched.has_header("Vary")


@contextmanager
def _session_table(state: str) -> Iterator[None]:
    """The database sessions engine's table in *state*: ``missing`` (``migrate`` never ran: every
    query fails) or ``read-only`` (a replica, a full disk: it is read, a new session is refused)."""
    if state == "missing":
        yield
        return
    with connection.schema_editor() as editor:
        editor.create_model(Session)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA query_only = ON")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA query_only = OFF")
        with connection.schema_editor() as editor:
            editor.delete_model(Session)


@pytest.mark.parametrize("table", ["missing", "read-only"])
def test_a_session_store_that_fails_never_breaks_the_request(
    recorded: Recorded, expect_internal_errors: list[logging.LogRecord], table: str
) -> None:
    """Creating the visitor's session fails in the database sessions engine: the request still
    succeeds, unbound (no key of a session that was never saved), without a cookie, and the failure
    is logged."""
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.db"), _session_table(table):
        response = Client().get("/ask/a")
    assert response.status_code == 200 and response.json() == {"seen": None}
    assert "sessionid" not in response.cookies
    assert [r.getMessage() for r in expect_internal_errors] == [
        "llmaudit internal error in django session (the audited call is unaffected)"
    ]


def test_a_session_that_cannot_be_read_keeps_its_key(
    recorded: Recorded, expect_internal_errors: list[logging.LogRecord]
) -> None:
    """The visitor's cookie names a session the store cannot be asked about right now (the database
    sessions engine, its table missing): llmaudit does not replace the visitor's session, the request
    still succeeds under the cookie's key, and the failure is logged."""
    cookie = "livesessionkey0123456789abcdefgh"
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.db"):
        client = Client()
        client.cookies["sessionid"] = cookie
        response = client.get("/ask/a")
    assert response.status_code == 200 and response.json() == {"seen": session_key_for(cookie)}
    assert "sessionid" not in response.cookies
    assert "llmaudit internal error in django session (the audited call is unaffected)" in [
        r.getMessage() for r in expect_internal_errors
    ]


def test_a_streamed_body_carries_the_session_key(recorded: Recorded) -> None:
    """A StreamingHttpResponse body runs after the middleware returned (the server iterates it): the
    records made while it streams (the real openai SDK streaming through AuditTransport, and an
    ``@audited`` step) carry the request's key; the bytes are the view's own; nothing stays bound."""
    client = Client()
    response = client.get("/stream/s")
    body = b"".join(response.streaming_content)  # type: ignore[arg-type]
    key = session_key_for(client.cookies["sessionid"].value)
    assert body == f"{key}You asked s".encode()
    assert llmaudit.current_session() is None
    records = recorded.records()
    assert _by_source(records) == {"decorator": [key], "transport": [key]}
    assert [r.is_stream for r in records if r.source == "transport"] == [True]
    again = client.get("/stream/t")
    assert b"".join(again.streaming_content).startswith(key.encode())  # type: ignore[arg-type]


def test_a_file_response_keeps_the_servers_file_path(recorded: Recorded) -> None:
    """A FileResponse is not wrapped (reading a file makes no LLM call): Django still hands the file
    to the server's ``wsgi.file_wrapper`` (sendfile), as without llmaudit."""
    environ: dict[str, Any] = {"PATH_INFO": "/download", "HTTP_X_SESSION_KEY": "file"}
    setup_testing_defaults(environ)
    environ["wsgi.file_wrapper"] = FileWrapper
    body = WSGIHandler()(environ, lambda status, headers: None)
    assert isinstance(body, FileWrapper) and b"".join(body) == b"a file"
    body.close()


def test_a_stream_closed_early_leaves_nothing_bound(recorded: Recorded) -> None:
    """The browser goes away after the first chunk: the server closes the body. The key was there while
    it streamed, and neither this thread nor its next request carries it afterwards."""
    response = Client().get("/stream/e", headers={"X-Session-Key": "early"})
    chunks = iter(response)
    assert next(chunks) == b"early"
    response.close()  # what a WSGI server does when the client has gone
    assert llmaudit.current_session() is None
    with override_settings(LLMAUDIT_CREATE_SESSION=False):
        assert Client().get("/ask/after").json() == {"seen": None}
    assert recorded.keys_by_tag() == {"e": "early", "after": None}


@pytest.mark.asyncio
async def test_under_asgi_a_first_visit_and_its_async_streamed_body_carry_the_session_key(
    recorded: Recorded,
) -> None:
    """Django's own ASGI handler, an async view streaming an async body from the real AsyncOpenAI SDK:
    the first request (no cookie) gets its session, the body's records carry its key, the next
    request with the cookie the same key. The session engine refuses the event loop, as Django's
    database engine does, so the middleware must reach the session (and ``request.user``) off it."""
    transport = llmaudit.AsyncAuditTransport(httpx2.MockTransport(openai_stream), auditor=recorded.auditor)
    ALLM[:] = [
        AsyncOpenAI(api_key="sk-test-FAKE-0123456789", http_client=httpx2.AsyncClient(transport=transport))
    ]
    try:
        with override_settings(SESSION_ENGINE="integrations.web._loop_unsafe_sessions"):
            app = httpx.ASGITransport(app=ASGIHandler())
            async with httpx.AsyncClient(transport=app, base_url="http://testserver") as browser:
                first = await browser.get("/astream/a")
                cookie = first.cookies["sessionid"]
                second = await browser.get("/astream/b", headers={"Cookie": f"sessionid={cookie}"})
    finally:
        await ALLM.pop().close()
    key = session_key_for(cookie)
    assert re.fullmatch(DJANGO_KEY, key)
    assert (first.text, second.text) == (f"{key}You asked a", f"{key}You asked b")
    assert "sessionid" not in second.cookies
    assert _by_source(recorded.records()) == {"decorator": [key, key], "transport": [key, key]}


@pytest.mark.asyncio
async def test_under_asgi_a_sync_streamed_body_still_carries_the_key(recorded: Recorded) -> None:
    """A sync body served under ASGI: Django warns and reads it whole in a worker thread; llmaudit
    keeps it sync (no second conversion) and its records still carry the request's key."""
    app = httpx.ASGITransport(app=ASGIHandler())
    async with httpx.AsyncClient(transport=app, base_url="http://testserver") as browser:
        with pytest.warns(Warning, match="must consume synchronous iterators"):
            response = await browser.get("/stream/s", headers={"X-Session-Key": "sync-under-asgi"})
    assert response.text == "sync-under-asgiYou asked s"
    assert _by_source(recorded.records()) == {
        "decorator": ["sync-under-asgi"],
        "transport": ["sync-under-asgi"],
    }
