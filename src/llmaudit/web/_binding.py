"""What every middleware shares: turning a request's key and user into a `session`, safely."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .._guard import report
from .._session import session

__all__ = ["DEFAULT_HEADER", "Binder", "Middleware", "Resolver"]

logger = logging.getLogger("llmaudit")
DEFAULT_HEADER = "X-Session-Key"
Resolver = Callable[[Any], "str | None"]


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
    ) -> None:
        self.header = header
        self.key_resolver, self.user_resolver = key_resolver, user_resolver
        self.tags, self.metadata, self.client = tuple(tags), dict(metadata or {}), client

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
        header: the request header holding the session key.
        key_resolver: ``request -> key`` when the header is absent (the ASGI scope or WSGI environ).
        user_resolver: ``request -> user``.
        tags, metadata, client: recorded on every record made while handling the request.
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
    ) -> None:
        super().__init__(
            header=header,
            key_resolver=key_resolver,
            user_resolver=user_resolver,
            tags=tags,
            metadata=metadata,
            client=client,
        )
        self.app = app
