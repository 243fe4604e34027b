"""`fast_init`: a faster ``__init__`` for the frozen, slotted dataclasses built once or more per call.

A frozen dataclass's generated ``__init__`` stores each field through ``object.__setattr__`` (its own
``__setattr__`` refuses), which is slow for a class of many fields such as `AuditRecord`. The
``__init__`` made here has the same signature, defaults, default factories and ``__post_init__`` call,
and stores each field through its slot's descriptor instead (about half the time: benchmarks/RESULTS.md).
The class stays frozen. Pure code generation at import: no I/O, nothing of llmaudit's imported.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

__all__ = ["fast_init"]

_T = TypeVar("_T", bound=type)


class _Factory:
    """The default of a field with a default factory, shown as dataclasses show it."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def fast_init(cls: _T) -> _T:
    """Give the frozen, slotted dataclass *cls* the faster ``__init__`` (a class decorator, applied
    above ``@dataclass``)."""
    namespace: dict[str, Any] = {"_factory": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for f in fields(cls):
        if not f.init:
            raise TypeError(f"fast_init: {cls.__name__}.{f.name} is not an __init__ field")
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        value = f.name
        if f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
            param = f"{f.name}=_default_{f.name}"
        elif f.default_factory is not MISSING:
            namespace[f"_make_{f.name}"] = f.default_factory
            param = f"{f.name}=_factory"
            value = f"_make_{f.name}() if {f.name} is _factory else {f.name}"
        else:
            param = f.name
        (keyword if f.kw_only else positional).append(param)
        body.append(f"    _set_{f.name}(self, {value})")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    exec(f"def __init__({params}):\n" + "\n".join(body or ["    pass"]), namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[misc]
    return cls
