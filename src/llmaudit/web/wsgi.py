"""WSGI middleware (Flask, any WSGI app). The session stays bound while the server iterates the
response, because a streamed WSGI body is produced after the app returns; it is unbound on close."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from contextvars import Context, copy_context
from typing import Any

from ._binding import Middleware

__all__ = ["SessionMiddleware"]


class _Bound:
    """The app's response iterable, run inside the request's own context until the server closes it.

    The request runs in a copy of the server thread's context, so its session can never leak into
    the thread's next request, even from a server that forgets to call ``close()``.
    """

    def __init__(self, body: Iterable[bytes], bound: AbstractContextManager[Any], ctx: Context) -> None:
        self._body, self._bound, self._ctx, self._closed = body, bound, ctx, False

    def __iter__(self) -> Iterator[bytes]:
        iterator = self._ctx.run(iter, self._body)
        while True:
            try:
                chunk = self._ctx.run(next, iterator)
            except StopIteration:
                return
            yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._ctx.run(close)
        finally:
            self._ctx.run(self._bound.__exit__, None, None, None)


class SessionMiddleware(Middleware):
    """``app.wsgi_app = SessionMiddleware(app.wsgi_app)`` (Flask) or around any WSGI app.

    Args:
        header: the request header holding the session key.
        key_resolver, user_resolver: ``environ -> str | None`` fallbacks for the key and the user.
        tags, metadata, client: recorded on every record made while handling the request.
        cookie, secret, raw_cookie: a session cookie as the key, recorded as its keyed hash
            (`Middleware`).
    """

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = environ.get("HTTP_" + self.header.upper().replace("-", "_"))
        if not key and self.cookie is not None:
            key = self.cookie_key(environ.get("HTTP_COOKIE"))
        bound = self.bind(key, environ)
        ctx = copy_context()
        ctx.run(bound.__enter__)
        try:
            body = ctx.run(self.app, environ, start_response)
        except BaseException:
            ctx.run(bound.__exit__, None, None, None)
            raise
        return _Bound(body, bound, ctx)
