"""Django with llmaudit.web.django.SessionMiddleware: the Django session, recorded as a keyed hash of
its key (the ``sessionid`` cookie is a credential), or the X-Session-Key header."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import django
import pytest
from django.conf import settings

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
        LLMAUDIT_CREATE_SESSION=False,
        USE_TZ=True,
    )
    django.setup()

from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from integrations.web.conftest import Recorded
from llmaudit.web.django import session_key_for

BARRIER: list[threading.Barrier] = []


def ask(request: HttpRequest, tag: str) -> JsonResponse:
    if BARRIER:
        BARRIER[0].wait(5)
    return JsonResponse({"seen": RECORDED[0].llm_step(tag)})


def remember(request: HttpRequest) -> JsonResponse:
    request.session["visited"] = True
    request.session.save()  # the visitor now has a Django session key (sent back as its cookie)
    return JsonResponse({"key": request.session.session_key})


urlpatterns = [path("ask/<str:tag>", ask), path("remember", remember)]


@pytest.fixture(autouse=True)
def _recorded(recorded: Recorded) -> Any:
    RECORDED[:] = [recorded]
    BARRIER.clear()
    yield
    RECORDED.clear()


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


def test_anonymous_first_visit_runs_unbound_without_error(recorded: Recorded) -> None:
    """A first request has no Django session key yet (CREATE_SESSION off): it runs unbound."""
    assert Client().get(f"/ask/{uuid.uuid4().hex[:6]}").json() == {"seen": None}
