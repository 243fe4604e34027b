"""Django: the middleware binds the Django session, so LLM calls in a view carry it (as ``dj-<hex>``, a
keyed hash of the session key: the key itself is the login cookie). A minimal single-file project,
driven by Django's test client, offline. A first-time visitor gets its session (and key) before the
view runs, so its first call groups with the next one.

    python examples/django_view.py
"""

from __future__ import annotations

import os
import tempfile

import django
import httpx2
from _fake_openai import handler
from django.conf import settings

import llmaudit

store = os.environ.get("LLMAUDIT_STORAGE") or f"sqlite:///{tempfile.mkdtemp()}/django.db"
settings.configure(
    DEBUG=False,
    SECRET_KEY="example-not-secret",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["testserver"],
    INSTALLED_APPS=["django.contrib.sessions"],
    SESSION_ENGINE="django.contrib.sessions.backends.cache",
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "llmaudit.web.django.SessionMiddleware",
    ],
)
django.setup()

from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import path  # noqa: E402
from openai import OpenAI  # noqa: E402

llmaudit.configure(storage=store)
llm = OpenAI(
    api_key="sk-example-FAKE",
    http_client=httpx2.Client(transport=llmaudit.AuditTransport(httpx2.MockTransport(handler))),
)


def ask(request: HttpRequest) -> JsonResponse:
    reply = llm.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": request.GET.get("q", "hi")}]
    )
    return JsonResponse({"answer": reply.choices[0].message.content})


urlpatterns = [path("ask", ask)]

browser = Client()
print(browser.get("/ask", {"q": "first question"}).json())
print(browser.get("/ask", {"q": "second question"}).json())

llmaudit.flush()
with llmaudit.open(store) as log:
    keys = {record.session_key for record in log.records()}
    print(f"{len(keys)} Django session ({keys.pop()[:8]}…) recorded, {sum(1 for _ in log.records())} calls")
llmaudit.shutdown()
