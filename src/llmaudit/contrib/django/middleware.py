"""The session middleware under the app's name: ``llmaudit.contrib.django.middleware.SessionMiddleware``
is ``llmaudit.web.django.SessionMiddleware`` (either path goes in ``MIDDLEWARE``)."""

from ...web.django import SESSION_PREFIX, SessionMiddleware, session_key_for

__all__ = ["SESSION_PREFIX", "SessionMiddleware", "session_key_for"]
