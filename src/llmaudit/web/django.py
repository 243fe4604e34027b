"""Django middleware: binds the Django session (``request.session.session_key``), or the
``X-Session-Key`` header when one is sent; the user from ``request.user`` when authenticated. Sync and
async capable. Its settings are described in the README ("Web frameworks").

Django's session key is the ``sessionid`` cookie, a login credential: it is recorded as
``dj-<32 hex>``, an HMAC-SHA256 of the key under a key derived from ``SECRET_KEY`` (every Django
project has it, it is the same in all of the project's processes and hosts, and it already guards the
sessions). The stand-in is stable, so a session's records still group together; `session_key_for`
gives it for a known session key (to find or ``forget`` its records). Changing ``SECRET_KEY`` changes
every stand-in. The header's value is the application's own key and is recorded as sent.

A visitor without a live session (no cookie yet, or an expired one) gets it saved before the view
runs (``LLMAUDIT_CREATE_SESSION``, on by default), so the first request's records group with the
later ones; a session store that fails is reported and the request goes on unbound. A
``StreamingHttpResponse`` body is produced after the middleware returned: it is produced inside a copy
of the request's context, chunk by chunk, so its records carry the key and nothing stays bound after
it. The session is reached off the event loop under ASGI (it may query the database). Nothing here
changes a response beyond what Django itself does for a saved session (its cookie).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from contextvars import copy_context
from typing import Any

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
    from django.conf import settings
    from django.utils.encoding import force_bytes
    from django.utils.module_loading import import_string
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("llmaudit.web.django needs Django: pip install 'llmaudit-sdk[django]'") from exc

from .._errors import ConfigurationError
from .._guard import guard, report
from ..capture.session import session
from ._binding import DEFAULT_HEADER, Binder, aiterate_in, hash_session_id, iterate_in

__all__ = ["SESSION_PREFIX", "SessionMiddleware", "session_key_for"]

#: The prefix of the stand-in recorded for a Django session key.
SESSION_PREFIX = "dj"
Rule = Callable[[Any], bool]


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


def _creation_rule(value: object) -> Rule | bool:
    """``LLMAUDIT_CREATE_SESSION``: a bool, or ``request -> bool`` (a callable or its dotted path)."""
    expected = "True, False or a `request -> bool` callable (or its dotted path)"
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ConfigurationError(f"LLMAUDIT_CREATE_SESSION must be {expected}: {exc}") from exc
    if isinstance(value, bool) or callable(value):
        return value
    raise ConfigurationError(f"LLMAUDIT_CREATE_SESSION must be {expected}, not {value!r}")


def _live_session(request: Any, store: Any) -> Any:
    """The request's session, saved if it has no live key (a first visit, an expired or cleared
    session), as the view's own first save would. A store that fails is reported: one that cannot
    be read keeps the cookie's key (the view meets the same failure), one that cannot save is
    replaced by a new, unsaved one, so nothing carries the key of a session that never existed."""
    if store.session_key is not None:
        try:
            accessed = store.accessed
            store.keys()  # loads it: Django drops the key of a session its store no longer has
            store.accessed = accessed  # our look is not the view's: no `Vary: Cookie` for it
        except Exception as exc:  # noqa: BLE001 - the application's session store must not break requests
            report("django session", exc)
            return store
        if store.session_key is not None:
            return store
    try:
        store.save()  # a new key, saved at once; Django's SessionMiddleware sends its cookie
    except Exception as exc:  # noqa: BLE001 - the application's session store must not break requests
        report("django session", exc)
        with guard("django session"):  # it held no data: a new store is the same session, keyless
            request.session = store = type(store)()
    return store


def _carry(response: Any) -> None:
    """Have a streamed body produced inside the request's context (its session), chunk by chunk.

    Sync bodies stay sync and async ones async (Django warns when it must convert one); a file keeps
    its ``file_to_stream`` (the server's sendfile path), since reading a file makes no LLM call.
    """
    if not getattr(response, "streaming", False) or getattr(response, "file_to_stream", None) is not None:
        return
    ctx = copy_context()
    if getattr(response, "is_async", False):
        response.streaming_content = aiterate_in(response.streaming_content, ctx)
    else:
        response.streaming_content = iterate_in(response.streaming_content, ctx)


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
        self._create = _creation_rule(getattr(settings, "LLMAUDIT_CREATE_SESSION", True))
        self._raw = bool(getattr(settings, "LLMAUDIT_RAW_SESSION_KEY", False))
        self._secret = force_bytes(settings.SECRET_KEY)  # read at start-up: a missing one fails here
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def _creates(self, request: Any) -> bool:
        if isinstance(self._create, bool):
            return self._create
        try:
            return bool(self._create(request))
        except Exception as exc:  # noqa: BLE001 - the application's rule must not break requests
            report("LLMAUDIT_CREATE_SESSION", exc)
            return False

    def _key(self, request: Any) -> str | None:
        header = request.headers.get(self._binder.header)
        if header:
            return str(header)
        store = getattr(request, "session", None)
        if store is None:
            return None
        if self._creates(request):
            store = _live_session(request, store)
        key = store.session_key
        if not key:
            return None
        return str(key) if self._raw else hash_session_id(str(key), self._secret, SESSION_PREFIX)

    def _bind(self, request: Any) -> AbstractContextManager[Any]:
        """The request's session, built (not entered): reads, and may save, the Django session."""
        return self._binder.bind(self._key(request), request)

    def _respond(self, bound: AbstractContextManager[Any], response: Any) -> Any:
        if isinstance(bound, session):  # nothing to carry for a request that runs unbound
            with guard("django streaming response"):  # an odd response must not break the request
                _carry(response)
        return response

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        bound = self._bind(request)
        with bound:
            return self._respond(bound, self.get_response(request))

    async def __acall__(self, request: Any) -> Any:
        # The session store and ``request.user`` may query the database, which Django forbids on the
        # event loop: built in a worker thread, as Django runs its own sync middlewares.
        bound = await sync_to_async(self._bind)(request)
        with bound:
            response: Awaitable[Any] = self.get_response(request)
            return self._respond(bound, await response)
