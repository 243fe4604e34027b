"""ASGI middleware (Starlette, FastAPI, any ASGI app): binds the request's session for the whole
call, streaming responses included, since the app sends its body inside the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

from ._binding import DEFAULT_HEADER, Binder, Resolver

__all__ = ["SessionMiddleware"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class SessionMiddleware:
    """``app.add_middleware(SessionMiddleware)`` or ``SessionMiddleware(app)``.

    Args:
        header: the request header holding the session key.
        key_resolver: ``scope -> key`` when the header is absent (e.g. from ``scope["session"]``).
        user_resolver: ``scope -> user`` (e.g. from ``scope["user"]`` set by an auth middleware).
        tags, metadata, client: recorded on every record made while handling the request.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header: str = DEFAULT_HEADER,
        key_resolver: Resolver | None = None,
        user_resolver: Resolver | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        client: str | None = None,
    ) -> None:
        self.app = app
        self._binder = Binder(
            header=header,
            key_resolver=key_resolver,
            user_resolver=user_resolver,
            tags=tags,
            metadata=metadata,
            client=client,
        )
        self._header = header.lower().encode("latin-1")

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        key = next(
            (v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == self._header), None
        )
        with self._binder.bind(key, scope):
            await self.app(scope, receive, send)
