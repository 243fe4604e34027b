"""What every middleware shares: turning a request's key and user into a `session`, safely, and
carrying it into a response body that is produced after the middleware returned.

A framework's session id (Django's ``sessionid`` cookie, any session cookie) is a login credential:
whoever reads it from the audit log can take over the session. So it is never recorded as it is, but
as a keyed hash, ``<prefix>-<32 hex>`` (HMAC-SHA256, 128 bits): stable, so the records of one session
still group together, and useless to log into anything. Only an explicit opt-in records the raw value.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager, nullcontext
from contextvars import Context
from typing import Any, TypeVar

from .._errors import ConfigurationError
from .._guard import report
from ..capture.session import session

__all__ = [
    "COOKIE_PREFIX",
    "DEFAULT_HEADER",
    "Binder",
    "Middleware",
    "Resolver",
    "aiterate_in",
    "hash_session_id",
    "iterate_in",
]

T = TypeVar("T")

logger = logging.getLogger("llmaudit")
DEFAULT_HEADER = "X-Session-Key"
#: The prefix of a hashed session cookie recorded by the ASGI and WSGI middlewares.
COOKIE_PREFIX = "sid"
Resolver = Callable[[Any], "str | None"]
_HASH_HEX = 32  # 128 bits: no collision between sessions, short enough to read and type
_DERIVATION = b"llmaudit.web session id"  # the hash key is derived, never the application's secret itself


def hash_session_id(session_id: str, secret: bytes, prefix: str) -> str:
    """The stand-in recorded for a session id that is a credential: ``<prefix>-<32 hex>``.

    Args:
        session_id: the framework's session id (the cookie value).
        secret: the key; the same secret gives the same stand-in in every process and host.
        prefix: names where the id came from (``dj`` for Django, `COOKIE_PREFIX` for a cookie).
    """
    key = hmac.new(secret, _DERIVATION, hashlib.sha256).digest()
    digest = hmac.new(key, session_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"{prefix}-{digest[:_HASH_HEX]}"


def _cookie_secret(secret: bytes | str | None) -> bytes:
    if secret is None:
        secret = os.environ.get("LLMAUDIT_REDACT_KEY") or None
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not secret:
        raise ConfigurationError(
            "a session cookie is recorded as a keyed hash: pass secret=... or set LLMAUDIT_REDACT_KEY "
            "(the same in every process, so a session's records group together), or raw_cookie=True "
            "to record the cookie itself, a credential"
        )
    return bytes(secret)


def _cookie_value(header: str, name: str) -> str | None:
    """The value of cookie *name* in a ``Cookie`` header (a malformed pair never hides the others)."""
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"') or None
    return None


class Binder:
    """The options of a middleware and the one place that builds its session."""

    def __init__(
        self,
        *,
        header: str = DEFAULT_HEADER,
        key_resolver: Resolver | None = None,
        user_resolver: Resolver | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        client: str | None = None,
        cookie: str | None = None,
        secret: bytes | str | None = None,
        raw_cookie: bool = False,
    ) -> None:
        self.header = header
        self.key_resolver, self.user_resolver = key_resolver, user_resolver
        self.tags, self.metadata, self.client = tuple(tags), dict(metadata or {}), client
        self.cookie = cookie
        self._secret = None if cookie is None or raw_cookie else _cookie_secret(secret)

    def cookie_key(self, cookies: str | None) -> str | None:
        """The session cookie of a ``Cookie`` header as the key to record: its keyed hash
        (``sid-<hex>``), or the raw value with ``raw_cookie=True``; None without one."""
        if self.cookie is None or not cookies:
            return None
        value = _cookie_value(cookies, self.cookie)
        if value is None or self._secret is None:
            return value
        return hash_session_id(value, self._secret, COOKIE_PREFIX)

    def resolve(self, resolver: Resolver | None, request: Any) -> str | None:
        if resolver is None:
            return None
        try:
            value = resolver(request)
        except Exception as exc:  # noqa: BLE001 - the application's resolver must not break requests
            report("web resolver", exc)
            return None
        return value if isinstance(value, str) and value else None

    def bind(self, key: str | None, request: Any) -> AbstractContextManager[Any]:
        """A `session` for *key* (or the resolvers' key), or a no-op when there is none or it is bad."""
        key = key or self.resolve(self.key_resolver, request)
        if not key:
            return nullcontext()
        try:
            return session(
                key,
                user=self.resolve(self.user_resolver, request),
                tags=self.tags,
                metadata=self.metadata,
                client=self.client,
            )
        except ValueError as exc:
            logger.warning("llmaudit: ignoring the request's session key: %s", exc)
            return nullcontext()


class Middleware(Binder):
    """The options every app-wrapping middleware takes, around the app it wraps.

    Args:
        app: the wrapped ASGI or WSGI application.
        header: the request header holding the session key (the application's own key, recorded as
            sent: never put a credential in it).
        key_resolver: ``request -> key`` when the header is absent (the ASGI scope or WSGI environ).
            Its value is recorded as returned: return an id, never a cookie or token (use *cookie*).
        user_resolver: ``request -> user``.
        tags, metadata, client: recorded on every record made while handling the request.
        cookie: the name of a session cookie to use as the key when the header is absent (before
            *key_resolver*). A session cookie is a credential: it is recorded as ``sid-<hex>``, an
            HMAC keyed with *secret*.
        secret: the HMAC key for *cookie*; default ``LLMAUDIT_REDACT_KEY``. Required with *cookie*
            (a `ConfigurationError` at start-up otherwise), and the same in every process, so that a
            session's records group together.
        raw_cookie: record the cookie's value itself (opt-in; anyone who reads the log can then
            use it to log in).
    """

    def __init__(
        self,
        app: Any,
        *,
        header: str = DEFAULT_HEADER,
        key_resolver: Resolver | None = None,
        user_resolver: Resolver | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        client: str | None = None,
        cookie: str | None = None,
        secret: bytes | str | None = None,
        raw_cookie: bool = False,
    ) -> None:
        super().__init__(
            header=header,
            key_resolver=key_resolver,
            user_resolver=user_resolver,
            tags=tags,
            metadata=metadata,
            client=client,
            cookie=cookie,
            secret=secret,
            raw_cookie=raw_cookie,
        )
        self.app = app


def iterate_in(chunks: Iterable[T], ctx: Context) -> Iterator[T]:
    """*chunks*, each one produced inside *ctx* (the request's context), one at a time, when asked.

    Nothing is bound in the consumer's own context, so nothing can leak from the body into whatever
    the thread runs next, whether the body is exhausted, closed early or abandoned.
    """
    iterator = ctx.run(iter, chunks)
    while True:
        try:
            chunk = ctx.run(next, iterator)
        except StopIteration:
            return
        yield chunk


class _InContext:
    """Await *awaitable* with each of its steps run inside *ctx*, as an asyncio task runs every step
    of its coroutine in the task's context: the awaitable sees *ctx*, the awaiting task's own context
    is never touched. Whatever the loop sends or throws in (cancellation included) is passed on, as
    ``await`` would."""

    __slots__ = ("_ctx", "_steps")

    def __init__(self, awaitable: Awaitable[T], ctx: Context) -> None:
        self._steps = awaitable.__await__()
        self._ctx = ctx

    def __await__(self) -> Generator[Any, Any, Any]:
        run, steps = self._ctx.run, self._steps
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                signal = run(steps.send, sent) if thrown is None else run(steps.throw, thrown)
            except StopIteration as stop:
                return stop.value
            sent = thrown = None
            try:
                sent = yield signal
            except GeneratorExit:
                run(steps.close)
                raise
            except BaseException as exc:  # noqa: BLE001 - handed on to the awaitable, which decides
                thrown = exc


async def aiterate_in(chunks: AsyncIterable[T], ctx: Context) -> AsyncIterator[T]:
    """`iterate_in` for an async body: every step of every chunk runs inside *ctx*."""
    iterator = ctx.run(aiter, chunks)
    while True:
        try:
            chunk: T = await _InContext(ctx.run(iterator.__anext__), ctx)
        except StopAsyncIteration:
            return
        yield chunk
