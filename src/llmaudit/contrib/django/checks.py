"""``manage.py check``: what keeps the app from recording, each with an id.

- ``llmaudit.E001``: the app is installed but no llmaudit session middleware is in ``MIDDLEWARE``
  (records would carry no session key or user).
- ``llmaudit.E002``: the configured store cannot be opened (bad settings, driver missing, database
  unreachable). Run ``manage.py check --database default`` to include it: Django runs database
  checks only when asked, and so does this one.
- ``llmaudit.W003``: ``DEBUG = False`` and no chain key (``LLMAUDIT["CHAIN_KEY"]`` or
  ``LLMAUDIT_CHAIN_KEY``): the hash chain is unkeyed, so anyone who can write the database can
  rewrite it undetected (see SECURITY.md).
- ``llmaudit.E004``: ``settings.LLMAUDIT`` is invalid.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core import checks

from ..._errors import LLMAuditError, StorageNotFoundError
from .conf import options, storage_url

__all__ = ["check_chain_key", "check_middleware", "check_settings", "check_storage", "register"]

MIDDLEWARES = frozenset(
    {"llmaudit.web.django.SessionMiddleware", "llmaudit.contrib.django.middleware.SessionMiddleware"}
)


def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if MIDDLEWARES & set(getattr(settings, "MIDDLEWARE", None) or ()):
        return []
    return [
        checks.Error(
            "llmaudit.contrib.django is installed but its session middleware is not in MIDDLEWARE: "
            "LLM calls made by views are recorded without their session key and user.",
            hint="Add 'llmaudit.web.django.SessionMiddleware' to MIDDLEWARE, after Django's "
            "SessionMiddleware and AuthenticationMiddleware.",
            id="llmaudit.E001",
        )
    ]


def check_chain_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []
    try:
        key = options().get("chain_key")
    except LLMAuditError:
        return []  # check_settings reports it
    if key or os.environ.get("LLMAUDIT_CHAIN_KEY"):
        return []
    return [
        checks.Warning(
            "DEBUG is False and llmaudit has no chain key: the audit log's hash chain is unkeyed, so "
            "anyone able to write the database can rewrite records and their hashes undetected.",
            hint="Set LLMAUDIT['CHAIN_KEY'] (or the LLMAUDIT_CHAIN_KEY environment variable) to a "
            "secret kept outside the database; see SECURITY.md.",
            id="llmaudit.W003",
        )
    ]


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        options()
        storage_url()
    except LLMAuditError as exc:
        return [checks.Error(f"invalid llmaudit settings: {exc}", id="llmaudit.E004")]
    return []


def check_storage(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Opens the store read-only: reports it when it cannot be reached; a store not created yet
    (before ``migrate``) is fine."""
    if not databases:
        return []
    from ...storage import open_storage  # noqa: PLC0415

    try:
        url = storage_url()
        open_storage(url, create=False).close()
    except StorageNotFoundError:
        return []
    except LLMAuditError as exc:
        return [
            checks.Error(
                f"llmaudit cannot open its store: {exc}",
                hint="Check DATABASES (or LLMAUDIT['STORAGE']) and that the database is reachable.",
                id="llmaudit.E002",
            )
        ]
    return []


def register() -> None:
    """Register the checks with Django (the app does it when it is ready)."""
    checks.register(check_middleware, checks.Tags.compatibility)
    checks.register(check_settings, checks.Tags.compatibility)
    checks.register(check_chain_key, checks.Tags.security)
    checks.register(check_storage, checks.Tags.database)
