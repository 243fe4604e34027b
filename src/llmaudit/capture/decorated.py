"""One audited call as `@audited` captures it: `DecoratorCapture`, and what is known of the decorated
callable at decoration time (`_Site`, `_Options`).

A capture is made on the caller's hot path (a record id, the child context, the start time: no
conversion, no I/O) and submitted once when the call ends; the writer thread turns it into an
`AuditRecord` (`DecoratorCapture.to_record`: arguments and result to JSON, credentials masked by name).
The wrappers that drive it, one per variant, and `audited` itself are `decorator`. It must never raise
into the caller's call, except strict mode's `AuditError`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._errors import AuditError
from .._guard import report
from ..pipeline.auditor import Auditor, NullAuditor, get_auditor
from ..record.jsonable import scrub, to_jsonable
from ..record.model import AuditRecord, format_id, new_id_value
from .context import AuditContext, current
from .session import _check_key

__all__ = ["DecoratorCapture"]


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

    changes_context: bool  # precomputed: read on every call


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


class DecoratorCapture:
    """One audited call in flight; handed to the writer when it ends and converted there.

    Enters the call's context on creation, restores the caller's on `leave`, and submits itself
    once on `finish`. A plain slotted class: it is built on every audited call.
    """

    __slots__ = (
        "args",
        "child",
        "done",
        "duration_ms",
        "error",
        "incomplete",
        "kwargs",
        "outer_parent_id",
        "result",
        "site",
        "started",
        "started_at",
        "token",
    )

    def __init__(self, site: _Site, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.site = site
        self.args = args if instance is None or site.is_static else (instance, *args)
        self.kwargs, self.done = kwargs, False
        parent = current.get() or _NO_CONTEXT
        self.child = self._child_context(parent, new_id_value())
        self.outer_parent_id = parent.parent_id  # this record's own parent
        self.token = current.set(self.child)
        self.started_at, self.started = time.time(), time.perf_counter()

    def _child_context(self, parent: AuditContext, record_id: int) -> AuditContext:
        o = self.site.options
        if not o.changes_context:  # the common case: only the parent id changes
            return AuditContext(
                parent.session_key,
                parent.parent_session_key,
                parent.user,
                parent.tags,
                parent.metadata,
                parent.client,
                record_id,
            )
        key = parent.session_key
        if o.session_key is not None and self.site.signature is not None:
            key = _check_key(o.session_key(self.site.signature.bind(*self.args, **self.kwargs)))
        return AuditContext(
            key,
            parent.parent_session_key if key == parent.session_key else parent.session_key,
            parent.user,
            tuple(dict.fromkeys((*parent.tags, *o.tags))) if o.tags else parent.tags,
            {**parent.metadata, **o.metadata} if o.metadata else parent.metadata,
            o.client or parent.client,
            record_id,
        )

    def leave(self) -> None:
        """Restore the caller's context (the body's context ends with the call)."""
        current.reset(self.token)

    def finish(
        self,
        result: Any = None,
        error: BaseException | None = None,
        *,
        incomplete: bool = False,
        closing: bool = False,
    ) -> None:
        """Submit the record once. In strict mode an unrecordable call raises `AuditError`, unless
        *closing* (a generator closed or collected: nobody to raise to) or *error* is a cancellation
        or an interrupt, which must propagate unchanged; the writer has logged and counted the loss."""
        if self.done:
            return
        self.done = True
        self.duration_ms: float = (time.perf_counter() - self.started) * 1000
        self.result: Any = result
        self.error: BaseException | None = error
        self.incomplete = incomplete
        try:
            (self.site.options.auditor or get_auditor()).submit(self)
        except AuditError:
            if not closing and (error is None or isinstance(error, Exception)):
                raise
        except Exception as exc:  # noqa: BLE001 - never into the caller
            report("decorator capture", exc)

    def to_record(self) -> AuditRecord:
        """Runs on the writer thread: arguments and result become JSON here, not on the hot path."""
        options, ctx = self.site.options, self.child
        secrets: list[str] = []  # credentials found by name in the arguments: scrubbed everywhere else
        arguments = (
            to_jsonable(_bind(self.site.signature, self.args, self.kwargs), secrets)
            if options.capture_args
            else None
        )
        result = to_jsonable(self.result, secrets) if options.capture_result and self.error is None else None
        error = _describe(self.error)
        if secrets:
            arguments, result, error = (
                scrub(arguments, secrets),
                scrub(result, secrets),
                scrub(error, secrets),
            )
        return AuditRecord(
            id=format_id(self.child.parent_id or new_id_value()),
            created_at=datetime.fromtimestamp(self.started_at, timezone.utc),
            session_key=ctx.session_key,
            parent_session_key=ctx.parent_session_key,
            user=ctx.user,
            tags=ctx.tags,
            metadata=to_jsonable(dict(ctx.metadata)),
            client=ctx.client,
            operation=self.site.name[:128],
            request={"function": self.site.name, "arguments": arguments},
            response=result,
            error=error,
            incomplete=self.incomplete,
            duration_ms=self.duration_ms,
            source="decorator",
            parent_id=None if self.outer_parent_id is None else format_id(self.outer_parent_id),
        )


_NO_CONTEXT = AuditContext()
_Call = DecoratorCapture


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
    try:
        return _Call(site, instance, args, kwargs)
    except Exception as exc:  # the call goes on unrecorded; the failure is logged...
        report("decorator call start", exc)
        if (site.options.auditor or get_auditor()).settings.strict:  # ...unless it must not
            raise AuditError(
                f"llmaudit strict mode stopped this call: recording could not start ({_describe(exc)})"
            ) from exc
        return None
