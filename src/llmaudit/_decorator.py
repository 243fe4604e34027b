"""@audited: a function-level record that parents the HTTP records made inside it.

Built with wrapt, so signatures, docstrings, ``inspect`` and type checkers see the original. The
variant (function, coroutine, generator, async generator) is chosen at decoration time. On the hot
path the decorator takes a record id, sets the context (parent id, client, session) and times the
call; arguments and results are converted to JSON on the writer thread (`DecoratorCapture.to_record`),
so a mutable argument changed after the call is recorded as it is then. Exceptions are re-raised
unchanged; a generator is recorded when it is exhausted, closed, or collected (then ``incomplete``).
"""

from __future__ import annotations

import inspect
import time
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, ParamSpec, TypeVar, overload

import wrapt

from ._auditor import Auditor, NullAuditor, get_auditor
from ._context import AuditContext, current
from ._convert import to_jsonable
from ._guard import guard
from ._record import AuditRecord, new_id
from ._session import _check_key, _check_text

__all__ = ["DecoratorCapture", "audited"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _Options:
    client: str | None
    name: str | None
    capture_args: bool
    capture_result: bool
    session_key: Callable[[inspect.BoundArguments], str] | None
    tags: tuple[str, ...]
    metadata: Mapping[str, Any]
    auditor: Auditor | NullAuditor | None


@dataclass(frozen=True, slots=True)
class DecoratorCapture:
    """One audited call, handed to the writer; converted to a record there."""

    record_id: str
    name: str
    signature: inspect.Signature | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    error: BaseException | None
    incomplete: bool
    started_at: float
    duration_ms: float
    context: AuditContext
    options: _Options

    def to_record(self) -> AuditRecord:
        arguments: Any = None
        if self.options.capture_args:
            arguments = to_jsonable(_bind(self.signature, self.args, self.kwargs))
        result = to_jsonable(self.result) if self.options.capture_result and self.error is None else None
        ctx = self.context
        return AuditRecord(
            id=self.record_id,
            created_at=datetime.fromtimestamp(self.started_at, timezone.utc),
            session_key=ctx.session_key,
            user=ctx.user,
            tags=ctx.tags,
            metadata=to_jsonable(dict(ctx.metadata)),
            client=ctx.client,
            operation=self.name[:128],
            request={"function": self.name, "arguments": arguments},
            response=result,
            error=_describe(self.error),
            incomplete=self.incomplete,
            duration_ms=self.duration_ms,
            source="decorator",
            parent_id=ctx.parent_id,
        )


def _describe(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _bind(signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if signature is None:
        return {"args": list(args), "kwargs": kwargs}
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": kwargs}
    bound.apply_defaults()
    return dict(bound.arguments)


class _Call:
    """One call in flight: enters the context on start, submits the capture on finish (once)."""

    __slots__ = ("args", "child", "done", "kwargs", "own", "site", "started", "started_at", "token")

    def __init__(self, site: _Site, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.site = site
        self.args = args if instance is None or site.is_static else (instance, *args)
        self.kwargs, self.done = kwargs, False
        parent = current.get() or AuditContext()
        self.child = self._child_context(parent, new_id())
        self.own = replace(self.child, parent_id=parent.parent_id)  # what this record itself carries
        self.token = current.set(self.child)
        self.started_at, self.started = time.time(), time.perf_counter()

    def _child_context(self, parent: AuditContext, record_id: str) -> AuditContext:
        o = self.site.options
        key = parent.session_key
        if o.session_key is not None and self.site.signature is not None:
            key = _check_key(o.session_key(self.site.signature.bind(*self.args, **self.kwargs)))
        return AuditContext(
            session_key=key,
            parent_session_key=parent.parent_session_key if key == parent.session_key else parent.session_key,
            user=parent.user,
            tags=tuple(dict.fromkeys((*parent.tags, *o.tags))) if o.tags else parent.tags,
            metadata={**parent.metadata, **o.metadata} if o.metadata else parent.metadata,
            client=o.client or parent.client,
            parent_id=record_id,
        )

    def leave(self) -> None:
        """Restore the caller's context (the body's context ends with the call)."""
        current.reset(self.token)

    def finish(
        self, result: Any = None, error: BaseException | None = None, *, incomplete: bool = False
    ) -> None:
        if self.done:
            return
        self.done = True
        duration = (time.perf_counter() - self.started) * 1000
        with guard("decorator capture"):
            site = self.site
            capture = DecoratorCapture(
                self.child.parent_id or new_id(),
                site.name,
                site.signature,
                self.args,
                self.kwargs,
                result,
                error,
                incomplete,
                self.started_at,
                duration,
                self.own,
                site.options,
            )
            (site.options.auditor or get_auditor()).submit(capture)


class _Site:
    """What is known at decoration time about the audited callable."""

    def __init__(self, wrapped: Any, options: _Options) -> None:
        self.options = options
        target = wrapped.__func__ if isinstance(wrapped, (classmethod, staticmethod)) else wrapped
        self.is_static = isinstance(wrapped, staticmethod)
        self.name = (
            options.name
            or f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
        )
        try:
            self.signature: inspect.Signature | None = inspect.signature(target)
        except (TypeError, ValueError):
            self.signature = None


def _start(site: _Site, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call | None:
    with guard("decorator call start"):
        return _Call(site, instance, args, kwargs)
    return None  # the guard logged why; the call goes on unrecorded


def _make_wrapper(site: _Site, wrapped: Any) -> Callable[..., Any]:
    target = wrapped.__func__ if isinstance(wrapped, (classmethod, staticmethod)) else wrapped
    if inspect.isasyncgenfunction(target):
        return _async_gen_wrapper(site)
    if inspect.isgeneratorfunction(target):
        return _gen_wrapper(site)
    if inspect.iscoroutinefunction(target):
        return _coroutine_wrapper(site)
    return _function_wrapper(site)


def _function_wrapper(site: _Site) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _start(site, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.leave()
            call.finish(error=exc)
            raise
        call.leave()
        call.finish(result)
        return result

    return wrapper


def _coroutine_wrapper(site: _Site) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        async def run() -> Any:
            call = _start(site, instance, args, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                call.leave()
                call.finish(error=exc)
                raise
            call.leave()
            call.finish(result)
            return result

        return run()

    return wrapper


def _collected(call: _Call, count: list[int]) -> None:
    call.finish({"yielded": count[0]}, incomplete=True)


def _gen_wrapper(site: _Site) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _start(site, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        call.leave()  # the body runs step by step, each step in the call's context
        count = [0]
        generator = _stepped(call, wrapped(*args, **kwargs), count)
        weakref.finalize(generator, _collected, call, count)
        return generator

    return wrapper


def _stepped(call: _Call, inner: Generator[Any, Any, Any], count: list[int]) -> Generator[Any, Any, Any]:
    """Delegate to *inner* like ``yield from`` (send and throw included), each step in context."""
    sent: Any = None
    pending: BaseException | None = None
    try:
        while True:
            token = current.set(call.child)
            try:
                item = inner.send(sent) if pending is None else inner.throw(pending)
            finally:
                current.reset(token)
            count[0] += 1
            sent, pending = None, None
            try:
                sent = yield item
            except GeneratorExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - thrown in by the consumer: forward it to the body
                pending = exc
    except StopIteration as stop:
        call.finish({"yielded": count[0], "return": stop.value})
        return stop.value
    except GeneratorExit:
        inner.close()
        call.finish({"yielded": count[0]}, incomplete=True)
        raise
    except BaseException as exc:
        call.finish({"yielded": count[0]}, error=exc, incomplete=True)
        raise


def _async_gen_wrapper(site: _Site) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _start(site, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        call.leave()
        count = [0]
        generator = _astepped(call, wrapped(*args, **kwargs), count)
        weakref.finalize(generator, _collected, call, count)
        return generator

    return wrapper


async def _astepped(call: _Call, inner: Any, count: list[int]) -> AsyncIterator[Any]:
    """The async twin of `_stepped`: asend/athrow/aclose instead of send/throw/close."""
    sent: Any = None
    pending: BaseException | None = None
    try:
        while True:
            token = current.set(call.child)
            try:
                item = await (inner.asend(sent) if pending is None else inner.athrow(pending))
            finally:
                current.reset(token)
            count[0] += 1
            sent, pending = None, None
            try:
                sent = yield item
            except GeneratorExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded to the body, like `yield from`
                pending = exc
    except StopAsyncIteration:
        call.finish({"yielded": count[0]})
    except GeneratorExit:
        await inner.aclose()
        call.finish({"yielded": count[0]}, incomplete=True)
        raise
    except BaseException as exc:
        call.finish({"yielded": count[0]}, error=exc, incomplete=True)
        raise


@overload
def audited(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def audited(
    *,
    client: str | None = None,
    name: str | None = None,
    capture_args: bool = True,
    capture_result: bool = True,
    session_key: Callable[[inspect.BoundArguments], str] | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    auditor: Auditor | NullAuditor | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def audited(
    fn: Any = None,
    /,
    *,
    client: str | None = None,
    name: str | None = None,
    capture_args: bool = True,
    capture_result: bool = True,
    session_key: Callable[[inspect.BoundArguments], str] | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    auditor: Auditor | NullAuditor | None = None,
) -> Any:
    """Record each call of the decorated function (``source="decorator"``), and parent the HTTP
    records made inside it.

    Works bare (``@audited``) or with options (``@audited(client="support-bot")``) on functions,
    methods, classmethods, staticmethods, coroutines, generators and async generators.

    Args:
        client: the client name for this record and the calls inside it.
        name: the recorded name (default: the qualified name).
        capture_args, capture_result: record the bound arguments / the return value.
        session_key: a callable receiving the ``inspect.BoundArguments``, returning the session key.
        tags, metadata: added to this record and the calls inside it.
        auditor: where the records go (default: the process-wide auditor).
    """
    options = _Options(
        _check_text("client", client),
        name,
        capture_args,
        capture_result,
        session_key,
        tuple(tags),
        dict(metadata or {}),
        auditor,
    )

    def decorate(wrapped: Any) -> Any:
        site = _Site(wrapped, options)
        return wrapt.decorator(_make_wrapper(site, wrapped))(wrapped)

    return decorate if fn is None else decorate(fn)
