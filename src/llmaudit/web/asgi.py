"""ASGI middleware (Starlette, FastAPI, any ASGI app): binds the request's session for the whole
call, streaming responses included, since the app sends its body inside the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._binding import Middleware

__all__ = ["SessionMiddleware"]

Scope = MutableMapping[str, Any]


class SessionMiddleware(Middleware):
    """``app.add_middleware(SessionMiddleware)`` or ``SessionMiddleware(app)``.

    Args:
        header: the request header holding the session key.
        key_resolver: ``scope -> key`` when the header is absent (e.g. from ``scope["session"]``).
        user_resolver: ``scope -> user`` (e.g. from ``scope["user"]`` set by an auth middleware).
        tags, metadata, client: recorded on every record made while handling the request.
        cookie, secret, raw_cookie: a session cookie as the key, recorded as its keyed hash
            (`Middleware`).
    """

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = self.header.lower().encode("latin-1")
        headers = scope.get("headers", ())
        key = next((v.decode("latin-1") for k, v in headers if k.lower() == header), None)
        if not key and self.cookie is not None:  # HTTP/2 may split cookies over several headers
            key = self.cookie_key(
                "; ".join(v.decode("latin-1") for k, v in headers if k.lower() == b"cookie")
            )
        with self.bind(key, scope):
            await self.app(scope, receive, send)
