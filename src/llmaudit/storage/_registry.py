"""The scheme registry: storage URL -> backend.

Built-in schemes are imported lazily, so that writing JSONL never imports SQLAlchemy. Third parties
add schemes through the ``llmaudit.storage`` entry-point group (the entry point's name is the scheme
and its object a callable ``factory(url) -> Storage``) or at run time with `register_storage`.

A factory that takes a keyword ``create`` is told whether it may create the store: the read side
(``llmaudit.open``, the CLI's read commands) passes ``create=False`` and expects an
`StorageNotFoundError` when there is no store, never a new empty one. A factory without that keyword
is called with the URL alone (the plug-in decides).
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import cast

from .._errors import ConfigurationError, LLMAuditError, StorageError
from ._base import Storage, redact_url

__all__ = ["ENTRY_POINT_GROUP", "StorageFactory", "open_storage", "register_storage"]

ENTRY_POINT_GROUP = "llmaudit.storage"
StorageFactory = Callable[[str], Storage]

_BUILTIN: dict[str, str] = {
    "memory": "llmaudit.storage.memory:MemoryStorage.from_url",
    "jsonl": "llmaudit.storage.jsonl:JSONLStorage.from_url",
    "sqlite": "llmaudit.storage.sql:SQLStorage.from_url",
    "postgresql": "llmaudit.storage.sql:SQLStorage.from_url",
    "postgres": "llmaudit.storage.sql:SQLStorage.from_url",
    "mysql": "llmaudit.storage.sql:SQLStorage.from_url",
    "mariadb": "llmaudit.storage.sql:SQLStorage.from_url",
    "otlp": "llmaudit.otel._sink:OTLPStorage.from_url",  # write-only; otlp+grpc:// too (the base scheme)
}
_registered: dict[str, StorageFactory] = {}
_lock = threading.Lock()


def register_storage(scheme: str, factory: StorageFactory) -> None:
    """Make ``scheme://…`` URLs open with *factory* (replacing any earlier registration)."""
    with _lock:
        _registered[scheme.lower()] = factory


def _load(target: str) -> StorageFactory:
    module_name, _, attr_path = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        obj = getattr(obj, attr)
    return cast(StorageFactory, obj)


def _find_factory(scheme: str) -> StorageFactory | None:
    base = scheme.split("+", 1)[0]
    for name in (scheme, base):
        if name in _registered:
            return _registered[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() in (scheme, base):
            factory = cast(StorageFactory, ep.load())
            register_storage(ep.name, factory)
            return factory
    for name in (scheme, base):
        if name in _BUILTIN:
            return _load(_BUILTIN[name])
    return None


def known_schemes() -> list[str]:
    """Every scheme that `open_storage` accepts right now."""
    names = set(_BUILTIN) | set(_registered)
    names.update(ep.name.lower() for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def _takes_create(factory: StorageFactory) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False
    create = parameters.get("create")
    return create is not None and create.kind in (create.KEYWORD_ONLY, create.POSITIONAL_OR_KEYWORD)


def open_storage(url: str, *, create: bool = True) -> Storage:
    """Open the backend for *url*.

    Args:
        url: the storage URL.
        create: create the store (file, directory, table) when it does not exist: what a writer
            does. ``False`` opens existing stores only, as the read side does.

    Raises:
        ConfigurationError: the URL is malformed or its scheme is unknown.
        StorageNotFoundError: *create* is False and there is no store at *url*.
        StorageError: the backend could not be opened (the message names the URL, password removed).
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"storage URL {redact_url(str(url))!r} must look like scheme://…, "
            f"for example sqlite:///audit.db or jsonl:///var/log/llm"
        )
    scheme = url.split("://", 1)[0].lower()
    factory = _find_factory(scheme)
    if factory is None:
        raise ConfigurationError(
            f"unknown storage scheme {scheme!r} in {redact_url(url)!r}; known: {', '.join(known_schemes())}"
        )
    try:
        if _takes_create(factory):
            return cast(Callable[..., Storage], factory)(url, create=create)
        return factory(url)
    except LLMAuditError:
        raise
    except Exception as exc:  # a third-party factory's own error: name the URL, keep the cause
        raise StorageError(f"cannot open storage {redact_url(url)}: {exc}") from exc
