"""Django middleware: binds the Django session key (``request.session.session_key``), the way the
origin platform stored it, or the ``X-Session-Key`` header when one is sent; the user from
``request.user`` when authenticated. Sync and async capable.

Settings (all optional): ``LLMAUDIT_SESSION_HEADER`` (default ``"X-Session-Key"``),
``LLMAUDIT_CREATE_SESSION`` (default False: an anonymous visitor has no session key until Django saves
the session; True saves it at once so even the first request carries a key), ``LLMAUDIT_USER_RESOLVER``
(a dotted path to ``request -> str | None``). Place it after ``SessionMiddleware`` and
``AuthenticationMiddleware``. A ``StreamingHttpResponse`` body runs after the middleware returns and is
not covered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.conf import settings
    from django.utils.module_loading import import_string
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("llmaudit.web.django needs Django: pip install 'llmaudit-sdk[django]'") from exc

from ._binding import DEFAULT_HEADER, Binder

__all__ = ["SessionMiddleware"]


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
        return store.session_key  # type: ignore[no-any-return]

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        with self._binder.bind(self._key(request), request):
            return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        with self._binder.bind(self._key(request), request):
            response: Awaitable[Any] = self.get_response(request)
            return await response
