"""Django with llmaudit.web.django.SessionMiddleware: the Django session key, as the origin used it."""

from __future__ import annotations

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
from django.test import Client
from django.urls import path

from integrations.web.conftest import Recorded

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


def test_the_django_session_key_is_the_session_key(recorded: Recorded) -> None:
    """Once Django has a session for the visitor, its session_key tags every record."""
    client = Client()
    key = client.get("/remember").json()["key"]
    assert key
    assert client.get("/ask/a").json() == {"seen": key}
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
