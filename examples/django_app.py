"""The Django app: ``migrate`` creates llmaudit's table in the project's own database, a view's LLM
calls land there, the ORM and the admin read them, and ``manage.py llmaudit verify`` checks the chain.
A single-file project on a temporary SQLite database, driven by Django's test client, offline.

    python examples/django_app.py
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import django
import httpx2
from _fake_openai import handler
from django.conf import settings

import llmaudit

here = Path(tempfile.mkdtemp(prefix="llmaudit-django-example-"))
settings.configure(
    DEBUG=True,
    SECRET_KEY="example-not-secret",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["testserver"],
    USE_TZ=True,
    STATIC_URL="/static/",
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(here / "app.sqlite3")}},
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.staticfiles",
        "llmaudit.contrib.django",  # the app: migrations, model, admin, `manage.py llmaudit`, checks
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "llmaudit.web.django.SessionMiddleware",
    ],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    # everything optional; the records go to DATABASES["default"] unless "STORAGE" says otherwise
    LLMAUDIT={"CHAIN_KEY": "example-chain-key-not-secret", "SPOOL_DIR": str(here / "spool")},
)
django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import path  # noqa: E402
from openai import OpenAI  # noqa: E402

from llmaudit.contrib.django.conf import shutdown  # noqa: E402
from llmaudit.contrib.django.models import LLMRequest  # noqa: E402

llm = OpenAI(
    api_key="sk-example-FAKE",
    http_client=httpx2.Client(transport=llmaudit.AuditTransport(httpx2.MockTransport(handler))),
)


def ask(request: HttpRequest) -> JsonResponse:
    reply = llm.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": request.GET.get("q", "hi")}]
    )
    return JsonResponse({"answer": reply.choices[0].message.content})


urlpatterns = [path("admin/", admin.site.urls), path("ask", ask)]

call_command("migrate", verbosity=0)  # creates llmaudit's tables too, through llmaudit's schema code
browser = Client()
browser.force_login(User.objects.create_superuser("alice", password="example"))
print(browser.get("/ask", {"q": "first question"}).json())
print(browser.get("/ask", {"q": "second question"}).json())
llmaudit.flush()

calls = LLMRequest.objects.filter(user="alice")
print(f"ORM: {calls.count()} calls by alice, {calls.errors().count()} errors")
(row,) = calls.stats(by="model")
print(f"stats: {row.group['model']}: {row.calls} calls, {row.input_tokens}+{row.output_tokens} tokens")
record = calls.latest()
listing = browser.get("/admin/llmaudit/llmrequest/").content.decode()
detail = browser.get(f"/admin/llmaudit/llmrequest/{record.pk}/change/").content.decode()
print(f"admin: 'LLM request history' listed: {'LLM request history' in listing and record.pk in listing}")
print(f"admin: the conversation shown as messages: {detail.count('llmaudit-message')} messages")
out = io.StringIO()
call_command("llmaudit", "verify", stdout=out)
print(f"manage.py llmaudit verify: {out.getvalue().splitlines()[0]}")
llm.close()
shutdown()
