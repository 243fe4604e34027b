"""Django middleware: binds the Django session (``request.session.session_key``), or the
``X-Session-Key`` header when one is sent; the user from ``request.user`` when authenticated. Sync and
async capable.

Django's session key is the ``sessionid`` cookie, a login credential: it is recorded as
``dj-<32 hex>``, an HMAC-SHA256 of the key under a key derived from ``SECRET_KEY`` (every Django
project has it, it is the same in all of the project's processes and hosts, and it already guards the
sessions). The stand-in is stable, so a session's records still group together; `session_key_for`
gives it for a known session key (to find or ``forget`` its records). Changing ``SECRET_KEY`` changes
every stand-in. The header's value is the application's own key and is recorded as sent.

Settings (all optional): ``LLMAUDIT_SESSION_HEADER`` (default ``"X-Session-Key"``),
``LLMAUDIT_CREATE_SESSION`` (default False: an anonymous visitor has no session key until Django saves
the session; True saves it at once so even the first request carries a key), ``LLMAUDIT_USER_RESOLVER``
(a dotted path to ``request -> str | None``), ``LLMAUDIT_RAW_SESSION_KEY`` (default False; True records
Django's session key itself, as the origin platform did: anyone who reads the log can then log in as
its users). Place it after ``SessionMiddleware`` and ``AuthenticationMiddleware``. A
``StreamingHttpResponse`` body runs after the middleware returns and is not covered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.conf import settings
    from django.utils.encoding import force_bytes
    from django.utils.module_loading import import_string
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("llmaudit.web.django needs Django: pip install 'llmaudit-sdk[django]'") from exc

from ._binding import DEFAULT_HEADER, Binder, hash_session_id

__all__ = ["SESSION_PREFIX", "SessionMiddleware", "session_key_for"]

#: The prefix of the stand-in recorded for a Django session key.
SESSION_PREFIX = "dj"


def session_key_for(django_session_key: str) -> str:
    """The session key llmaudit records for a Django session key: ``dj-<hex>`` (the key itself with
    ``LLMAUDIT_RAW_SESSION_KEY = True``). Needs configured settings (``SECRET_KEY``)."""
    if getattr(settings, "LLMAUDIT_RAW_SESSION_KEY", False):
        return django_session_key
    return hash_session_id(django_session_key, force_bytes(settings.SECRET_KEY), SESSION_PREFIX)


def _django_user(request: Any) -> str | None:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    name = user.get_username() if hasattr(user, "get_username") else None
    return str(name or getattr(user, "pk", "")) or None


class SessionMiddleware:
    """Add ``"llmaudit.web.django.SessionMiddleware"`` to ``MIDDLEWARE`` after Django's session and
    authentication middlewares."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        resolver = getattr(settings, "LLMAUDIT_USER_RESOLVER", None)
        self._binder = Binder(
            header=getattr(settings, "LLMAUDIT_SESSION_HEADER", DEFAULT_HEADER),
            user_resolver=import_string(resolver) if isinstance(resolver, str) else _django_user,
        )
        self._create = bool(getattr(settings, "LLMAUDIT_CREATE_SESSION", False))
        self._raw = bool(getattr(settings, "LLMAUDIT_RAW_SESSION_KEY", False))
        self._secret = force_bytes(settings.SECRET_KEY)  # read at start-up: a missing one fails here
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def _key(self, request: Any) -> str | None:
        header = request.headers.get(self._binder.header)
        if header:
            return str(header)
        store = getattr(request, "session", None)
        if store is None:
            return None
        if store.session_key is None and self._create:
            store.save()
        key = store.session_key
        if not key:
            return None
        return str(key) if self._raw else hash_session_id(str(key), self._secret, SESSION_PREFIX)

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        with self._binder.bind(self._key(request), request):
            return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        with self._binder.bind(self._key(request), request):
            response: Awaitable[Any] = self.get_response(request)
            return await response
