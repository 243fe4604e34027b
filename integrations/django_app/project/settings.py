"""The test project: llmaudit's app beside Django's admin, on the database chosen by ``DJANGO_APP_DB``
(``sqlite``, ``postgres`` or ``mariadb``; ``DJANGO_APP_DB_NAME`` names the database to use as it is,
e.g. the test database of the suite, for a ``manage.py`` run in a subprocess)."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

BACKEND = os.environ.get("DJANGO_APP_DB", "sqlite")
GIVEN_NAME = os.environ.get("DJANGO_APP_DB_NAME")
_TEST_NAME = f"llmaudit_dj_{uuid.uuid4().hex[:10]}"
_FILES = Path(os.environ.get("DJANGO_APP_DIR") or tempfile.mkdtemp(prefix="llmaudit-django-"))

if BACKEND == "postgres":
    DATABASE = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": GIVEN_NAME or "test",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "TEST": {"NAME": _TEST_NAME},
    }
elif BACKEND == "mariadb":
    import pymysql

    pymysql.install_as_MySQLdb()  # Django's MySQL backend wants mysqlclient; PyMySQL stands in
    DATABASE = {
        "ENGINE": "django.db.backends.mysql",
        "NAME": GIVEN_NAME or "test",
        "USER": "root",
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"NAME": _TEST_NAME, "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"},
    }
else:
    DATABASE = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": GIVEN_NAME or str(_FILES / "app.sqlite3"),
        "TEST": {"NAME": str(_FILES / f"{_TEST_NAME}.sqlite3")},
    }

DATABASES = {"default": DATABASE}
DEBUG = False
SECRET_KEY = "test-only-not-a-secret"
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "integrations.django_app.project.urls"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "llmaudit.contrib.django",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "llmaudit.web.django.SessionMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, for a test project
LLMAUDIT = {
    "CHAIN_KEY": "test-only-chain-key",
    "SPOOL_DIR": str(_FILES / "spool"),
    "HANDLE_SIGTERM": False,
}
