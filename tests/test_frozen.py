"""`fast_init` keeps a frozen dataclass's constructor contract while storing fields faster."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from llmaudit import AuditRecord
from llmaudit.providers import Exchange, Parsed

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.frozen import fast_init
from llmaudit.record.raw import RawCapture


def _reference(cls: type) -> Any:
    """The same fields in a plain frozen dataclass, with the ``__init__`` dataclasses generate."""
    specs = []
    for f in dataclasses.fields(cls):
        spec = dataclasses.field(default=f.default, default_factory=f.default_factory, kw_only=f.kw_only)
        specs.append((f.name, f.type, spec))
    return dataclasses.make_dataclass(f"Reference{cls.__name__}", specs, frozen=True, slots=True)


@pytest.mark.parametrize("cls", [AuditRecord, RawCapture, Exchange, Parsed])
def test_signature_is_the_dataclass_one(cls: type) -> None:
    ours, theirs = inspect.signature(cls), inspect.signature(_reference(cls))
    assert [(p.name, p.kind) for p in ours.parameters.values()] == [
        (p.name, p.kind) for p in theirs.parameters.values()
    ]
    assert [repr(p.default) for p in ours.parameters.values()] == [
        repr(p.default) for p in theirs.parameters.values()
    ]


def test_positional_defaults_factories_post_init_and_frozenness() -> None:
    calls: list[str] = []

    @fast_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Point:
        x: int
        y: int = 2
        tags: list[str] = dataclasses.field(default_factory=list)
        label: str = dataclasses.field(default="p", kw_only=True)

        def __post_init__(self) -> None:
            calls.append(f"{self.x},{self.y}")
            if self.x < 0:
                raise ValueError("x must not be negative")

    first, second = Point(1), Point(3, 4, label="q")
    assert (first.x, first.y, first.tags, first.label) == (1, 2, [], "p")
    assert (second.x, second.y, second.label) == (3, 4, "q")
    assert first.tags is not Point(1).tags
    assert calls[:2] == ["1,2", "3,4"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.x = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, 2, [], "r")  # type: ignore[misc]
    with pytest.raises(ValueError, match="negative"):
        Point(-1)
    assert dataclasses.replace(second, y=9) == Point(3, 9, label="q")
