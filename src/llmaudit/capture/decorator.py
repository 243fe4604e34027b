"""@audited: a function-level record that parents the HTTP records made inside it.

Built with wrapt, so signatures, docstrings, ``inspect`` and type checkers see the original. The
variant (function, coroutine, generator, async generator) is chosen at decoration time. On the hot
path the decorator takes a record id, sets the context (parent id, client, session) and times the
call; arguments and results are converted to JSON on the writer thread (`DecoratorCapture.to_record`,
in `decorated`),
so a mutable argument changed after the call is recorded as it is then. There an argument or field named
like a credential (``api_key``, ``token``, ``password``…) is masked, and its value scrubbed from the rest
of the record (the result, the error message). Exceptions are re-raised
unchanged; a generator is recorded when it is exhausted, closed, or collected (then ``incomplete``).

In strict mode a record that can be neither stored nor spilled raises `AuditError` where the call
ends: instead of the return value, at the generator's exhaustion, or instead of an `Exception` the
body raised (chained to it). It never replaces a cancellation or an interrupt, and a generator
closed early (``close()``, ``break``, garbage collection) has nobody to raise to: that loss is
logged and counted.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, overload

import wrapt

from .._errors import ConfigurationError
from ..pipeline.auditor import Auditor, NullAuditor
from .context import current
from .decorated import DecoratorCapture, _Call, _Options, _Site, _start
from .session import _check_auditor, _check_metadata, _check_tags, _check_text

__all__ = ["DecoratorCapture", "audited"]  # DecoratorCapture: from `decorated`

P = ParamSpec("P")
R = TypeVar("R")


def _check_options(
    name: object, capture_args: object, capture_result: object, session_key: object, auditor: object
) -> None:
    """`audited`'s keywords, checked at decoration time (not on the first call)."""
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigurationError(f"invalid name={name!r}: expected the recorded name as a str, or None")
    for keyword, value in (("capture_args", capture_args), ("capture_result", capture_result)):
        if not isinstance(value, bool):
            raise ConfigurationError(f"invalid {keyword}={value!r}: expected True or False")
    if session_key is not None and not callable(session_key):
        raise ConfigurationError(
            f"invalid session_key={session_key!r}: expected a callable BoundArguments -> str "
            "(for a fixed key, wrap the call in llmaudit.session(key))"
        )
    _check_auditor(auditor)


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
            current.reset(call.token)
            call.finish(error=exc)
            raise
        current.reset(call.token)  # inlined `leave()`: this wrapper is the hot path
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
    call.finish({"yielded": count[0]}, incomplete=True, closing=True)


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
        call.finish({"yielded": count[0]}, incomplete=True, closing=True)
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
        call.finish({"yielded": count[0]}, incomplete=True, closing=True)
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
    _check_options(name, capture_args, capture_result, session_key, auditor)
    options = _Options(
        _check_text("client", client),
        name,
        capture_args,
        capture_result,
        session_key,
        _check_tags(tags),
        _check_metadata(metadata),
        auditor,
        bool(client or session_key or tags or metadata),
    )

    def decorate(wrapped: Any) -> Any:
        site = _Site(wrapped, options)
        return wrapt.decorator(_make_wrapper(site, wrapped))(wrapped)

    return decorate if fn is None else decorate(fn)
