"""session(), current_session() and propagate(): who and what the code inside is working for.

A `session` binds a key (and user, tags, metadata, client) to everything that runs inside it, through
the ContextVar in `context`, so it follows asyncio tasks created inside it. Threads do not inherit
context by themselves (ThreadPoolExecutor does not copy it), so `propagate` and `ContextThreadPoolExecutor`
carry it across. Runs on the caller's thread: validation at construction, one ContextVar set per entry.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import Token
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar

from .._errors import ConfigurationError
from ..record.model import STRING_LIMITS, new_id
from .context import AuditContext, current

__all__ = ["ContextThreadPoolExecutor", "current_session", "propagate", "session"]

P = ParamSpec("P")
R = TypeVar("R")
_KEY_LIMIT = STRING_LIMITS["session_key"]


def _check_key(key: object) -> str:
    if key is None:
        return new_id()
    if not isinstance(key, str):
        # ValueError, as documented: callers catch one exception type for every bad key
        raise ValueError(f"session key must be a string, not {type(key).__name__}")  # noqa: TRY004
    if not key:
        raise ValueError("session key must not be empty")
    if len(key) > _KEY_LIMIT:
        raise ValueError(f"session key is {len(key)} characters long; the limit is {_KEY_LIMIT}")
    if "\x00" in key:
        raise ValueError("session key must not contain NUL characters")
    return key


def _check_text(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > STRING_LIMITS[name]:
        raise ConfigurationError(f"{name} must be a string of at most {STRING_LIMITS[name]} characters")
    return value


def _check_tags(tags: object) -> tuple[str, ...]:
    """``tags=``: a sequence of strings (one string alone is a mistake: it would become its letters)."""
    if isinstance(tags, str) or not isinstance(tags, (Sequence, set, frozenset)):
        raise ConfigurationError(f"invalid tags={tags!r}: expected a list of strings, e.g. tags=['beta']")
    bad = [t for t in tags if not isinstance(t, str)]
    if bad:
        raise ConfigurationError(f"invalid tags=: {bad[0]!r} is not a string (tags are strings)")
    return tuple(tags)


def _check_metadata(metadata: object) -> dict[str, Any]:
    """``metadata=``: a mapping with string keys (it is stored as a JSON object), or None."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise ConfigurationError(
            f"invalid metadata={metadata!r}: expected a dict with string keys (stored as a JSON object)"
        )
    return dict(metadata)


def _check_auditor(auditor: object) -> None:
    """``auditor=``: None (the default auditor) or an `Auditor` (anything with ``submit``)."""
    if auditor is not None and not callable(getattr(auditor, "submit", None)):
        raise ConfigurationError(
            f"invalid auditor={auditor!r}: expected a llmaudit.Auditor (or None for the default auditor)"
        )


def _merge_tags(parent: Sequence[str], own: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*parent, *own)))


class session:  # noqa: N801 - used like a function: `with llmaudit.session("abc"):`
    """Bind a session key, user, tags and metadata to every record made inside.

    A sync and async context manager and a decorator. Nested sessions: the innermost key wins, the
    enclosing key is kept as ``parent_session_key``, tags and metadata merge (inner values win).

    Args:
        key: the session key; a UUIDv7 is generated when omitted.
        user, tags, metadata, client: recorded on every record made inside.

    Raises:
        ValueError: the key is not a string, is empty, contains NUL or is longer than the storage column.
        ConfigurationError: (a ValueError too) user, client, tags or metadata is not what it accepts.
    """

    def __init__(
        self,
        key: str | None = None,
        *,
        user: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        client: str | None = None,
    ) -> None:
        self.key = _check_key(key)
        self.user = _check_text("user", user)
        self.client = _check_text("client", client)
        self.tags = _check_tags(tags)
        self.metadata = MappingProxyType(_check_metadata(metadata))
        self._own = AuditContext(self.key, None, self.user, self.tags, self.metadata, self.client)
        self._tokens: list[Token[AuditContext | None]] = []

    def _context(self, parent: AuditContext | None) -> AuditContext:
        if parent is None:
            return AuditContext(self.key, None, self.user, self.tags, self.metadata, self.client)
        return AuditContext(
            session_key=self.key,
            parent_session_key=parent.session_key
            if parent.session_key != self.key
            else parent.parent_session_key,
            user=self.user or parent.user,
            tags=_merge_tags(parent.tags, self.tags),
            metadata={**parent.metadata, **self.metadata},
            client=self.client or parent.client,
            parent_id=parent.parent_id,
        )

    def __enter__(self) -> session:
        self._tokens.append(current.set(self._context(current.get())))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        current.reset(self._tokens.pop())

    async def __aenter__(self) -> session:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _fresh(self) -> session:
        return session(self.key, user=self.user, tags=self.tags, metadata=self.metadata, client=self.client)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Use as a decorator: each call runs inside this session (a fresh entry per call)."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with self._fresh():
                return fn(*args, **kwargs)

        return run

    def __repr__(self) -> str:
        return f"session({self.key!r}, user={self.user!r})"


def current_session() -> AuditContext | None:
    """The session context in force here (None outside every session)."""
    value = current.get()
    return value if value is not None and value.session_key is not None else None


def propagate(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap *fn* so it runs, wherever it is called (another thread), in the context of this moment."""
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the submitter's context (sessions included)."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(propagate(fn), *args, **kwargs)
