"""The httpx branches (``httpx`` and ``httpx2``): binding the transport core to one, finding the branch
an object belongs to, and checking that what a transport wraps is a transport of the right flavour.

A branch's binding (`bind_branch`, made by ``transports/httpx.py`` and ``transports/httpx2.py``) holds
the tee stream classes built on that branch's byte streams and its default transports; the core finds
it by the module an object's class comes from. Runs when a transport is made or sees its first
request: no I/O, no parsing; it must not import the edges but by name, at run time (the binding modules
import this one).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from .._errors import ConfigurationError
from .streams import AsyncTeeMixin, SyncTeeMixin

__all__ = ["Branch", "bind_branch", "branch_of"]


class Branch(Protocol):
    """What a branch binding module provides (see ``transports/httpx.py``)."""

    name: str
    SyncTee: type[Any]
    AsyncTee: type[Any]

    def default_transport(self) -> Any: ...

    def default_async_transport(self) -> Any: ...


class _Binding:
    """A branch's tee stream classes and default transports, made by `bind_branch`."""

    def __init__(self, module: Any) -> None:
        self.name: str = module.__name__
        self._module = module
        self.SyncTee: type[Any] = type("SyncTee", (SyncTeeMixin, module.SyncByteStream), {})
        self.AsyncTee: type[Any] = type("AsyncTee", (AsyncTeeMixin, module.AsyncByteStream), {})

    def default_transport(self) -> Any:
        return self._module.HTTPTransport()

    def default_async_transport(self) -> Any:
        return self._module.AsyncHTTPTransport()


def bind_branch(module: Any) -> Branch:
    """Bind the core to one httpx branch: its tees must be real instances of that branch's byte
    streams, because the clients check the stream type."""
    return _Binding(module)


def _branch_named(name: str) -> Branch:
    module: Any = importlib.import_module(f"llmaudit.transports.{name}")
    return module.BRANCH  # type: ignore[no-any-return]


def branch_of(obj: object) -> Branch:
    """The httpx branch an object (transport, request) belongs to, from its class's module."""
    for cls in type(obj).__mro__:
        root = cls.__module__.split(".", 1)[0]
        if root in ("httpx", "httpx2"):
            return _branch_named(root)
    raise ConfigurationError(
        f"{type(obj).__name__} is not an httpx or httpx2 transport; AuditTransport wraps either branch"
    )


def _check_inner(inner: object, method: str, shell: str) -> None:
    """The wrapped transport must be one, of the shell's flavour: a client, a sync transport given
    to the async shell (or the reverse) would fail on the caller's first call."""
    if callable(getattr(inner, method, None)):
        return
    hint = ""
    if callable(getattr(inner, "send", None)):
        hint = (
            " (that is a client: wrap a transport such as httpx.HTTPTransport() and give the "
            "AuditTransport to the client as transport=)"
        )
    elif method == "handle_request" and callable(getattr(inner, "handle_async_request", None)):
        hint = " (that is an async transport: wrap it with AsyncAuditTransport)"
    elif method == "handle_async_request" and callable(getattr(inner, "handle_request", None)):
        hint = " (that is a sync transport: wrap it with AuditTransport)"
    raise ConfigurationError(
        f"{shell} wraps a transport with {method}(); {type(inner).__name__} has none{hint}"
    )
