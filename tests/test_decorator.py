"""@audited on every callable kind: signature kept, records written, exceptions unchanged, parents linked."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import gc
import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import llmaudit
from llmaudit import Auditor, AuditRecord, Query, audited, current_session, session

# private: the capture layer, driven directly below the public transports
from llmaudit.capture.context import current
from llmaudit.record.model import format_id


@pytest.fixture
def auditor(tmp_path: Path) -> Iterator[Auditor]:
    a = Auditor(f"memory://{uuid.uuid4().hex}", spool_dir=str(tmp_path / "spool"))
    yield a
    a.close()


def records(auditor: Auditor) -> list[AuditRecord]:
    assert auditor.flush(10)
    return list(auditor.storage.read(Query()))


def test_function_record_holds_name_bound_arguments_result_and_duration(auditor: Auditor) -> None:
    """A decorated function records its qualified name, bound arguments (defaults applied) and result."""

    @audited(auditor=auditor, client="support-bot")
    def answer(question: str, *, temperature: float = 0.2) -> dict[str, str]:
        """Answers."""
        return {"answer": question.upper()}

    assert answer("hi") == {"answer": "HI"}
    (record,) = records(auditor)
    assert record.source == "decorator"
    test_name = test_function_record_holds_name_bound_arguments_result_and_duration.__name__
    assert record.request == {
        "function": f"{__name__}.{test_name}.<locals>.answer",
        "arguments": {"question": "hi", "temperature": 0.2},
    }
    assert record.response == {"answer": "HI"}
    assert record.client == "support-bot"
    assert record.duration_ms is not None
    assert record.duration_ms >= 0
    assert (record.error, record.incomplete) == (None, False)


def test_signature_docstring_and_name_are_preserved() -> None:
    """inspect and type checkers see the original callable."""

    @audited
    def f(a: int, b: str = "x") -> str:
        """Doc."""
        return b * a

    assert inspect.signature(f) == inspect.signature(f.__wrapped__)
    assert (f.__name__, f.__doc__) == ("f", "Doc.")


def test_a_failing_function_is_recorded_and_its_exception_reraised_unchanged(auditor: Auditor) -> None:
    """The very same exception object reaches the caller; the record holds its type and message."""
    boom = KeyError("missing")

    @audited(auditor=auditor)
    def fail() -> None:
        raise boom

    with pytest.raises(KeyError) as info:
        fail()
    assert info.value is boom
    (record,) = records(auditor)
    assert record.error == "KeyError: 'missing'"
    assert record.response is None


class Service:
    @audited
    def method(self, x: int) -> int:
        return x + 1

    @audited
    @classmethod
    def klass(cls, x: int) -> int:
        return x + 2

    @audited
    @staticmethod
    def static(x: int) -> int:
        return x + 3


def test_methods_classmethods_and_staticmethods(tmp_path: Path) -> None:
    """Bound methods record their arguments (self/cls by repr); class and static methods work."""
    llmaudit.configure(f"memory://{uuid.uuid4().hex}", spool_dir=str(tmp_path / "s"))
    assert (Service().method(1), Service.klass(1), Service.static(1)) == (2, 3, 4)
    auditor = llmaudit.get_auditor()
    assert isinstance(auditor, Auditor)
    got = {r.request["function"].rsplit(".", 1)[1]: r for r in records(auditor)}  # type: ignore[index]
    assert set(got) == {"method", "klass", "static"}
    assert got["method"].request["arguments"]["x"] == 1  # type: ignore[index]
    assert "Service object" in got["method"].request["arguments"]["self"]  # type: ignore[index]
    assert got["static"].request["arguments"] == {"x": 1}  # type: ignore[index]


@pytest.mark.asyncio
async def test_coroutines_are_awaited_and_recorded(auditor: Auditor) -> None:
    """An async function stays a coroutine function and is recorded when it completes."""

    @audited(auditor=auditor)
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch(21) == 42
    (record,) = records(auditor)
    assert record.response == 42


def test_generator_recorded_when_exhausted_and_when_closed_early(auditor: Auditor) -> None:
    """A generator's record is written when it ends: complete if exhausted, incomplete if closed."""

    @audited(auditor=auditor, name="count")
    def count(n: int) -> Iterator[int]:
        yield from range(n)

    assert inspect.isgeneratorfunction(count)
    assert list(count(3)) == [0, 1, 2]
    gen = count(10)
    next(gen)
    next(gen)
    gen.close()
    done, closed = sorted(records(auditor), key=lambda r: r.incomplete)
    assert (done.incomplete, done.response["yielded"]) == (False, 3)  # type: ignore[index]
    assert (closed.incomplete, closed.response["yielded"]) == (True, 2)  # type: ignore[index]


def test_generator_send_and_throw_are_delegated(auditor: Auditor) -> None:
    """The wrapper behaves like `yield from`: values sent and exceptions thrown reach the body."""

    @audited(auditor=auditor)
    def echo() -> Iterator[Any]:
        received = None
        while True:
            try:
                received = yield received
            except ValueError:
                received = "caught"

    gen = echo()
    assert next(gen) is None
    assert gen.send("x") == "x"
    assert gen.throw(ValueError("boom")) == "caught"
    gen.close()


def test_abandoned_generator_is_recorded_when_collected(auditor: Auditor) -> None:
    """A generator nobody closes is recorded as incomplete once it is garbage collected."""

    @audited(auditor=auditor)
    def forever() -> Iterator[int]:
        while True:
            yield 1

    gen = forever()
    next(gen)
    del gen
    gc.collect()
    (record,) = records(auditor)
    assert record.incomplete is True


@pytest.mark.asyncio
async def test_async_generator_abandoned_half_way_is_incomplete(auditor: Auditor) -> None:
    """An async generator closed after two items is recorded as incomplete with the count."""

    @audited(auditor=auditor)
    async def stream() -> AsyncIterator[int]:
        for i in range(10):
            await asyncio.sleep(0)
            yield i

    assert inspect.isasyncgenfunction(stream)
    agen = stream()
    assert [await agen.__anext__(), await agen.__anext__()] == [0, 1]
    await agen.aclose()
    (record,) = records(auditor)
    assert (record.incomplete, record.response) == (True, {"yielded": 2})


def test_nested_audited_functions_link_parent_ids(auditor: Auditor) -> None:
    """An audited function called inside another records the outer one's id as parent_id."""

    @audited(auditor=auditor, name="inner")
    def inner() -> str | None:
        ctx = current.get()
        return format_id(ctx.parent_id) if ctx and ctx.parent_id is not None else None

    @audited(auditor=auditor, name="outer", client="bot")
    def outer() -> str | None:
        return inner()

    inner_parent_seen_inside = outer()
    by_name = {r.operation: r for r in records(auditor)}
    assert by_name["outer"].parent_id is None
    assert by_name["inner"].parent_id == by_name["outer"].id
    assert by_name["inner"].client == "bot"  # inherited
    assert inner_parent_seen_inside == by_name["inner"].id


def test_session_key_from_arguments(auditor: Auditor) -> None:
    """session_key=callable(bound_args) binds the session for the call and its record."""

    @audited(auditor=auditor, session_key=lambda b: f"user-{b.arguments['user_id']}")
    def handle(user_id: int) -> str | None:
        ctx = current_session()
        return ctx.session_key if ctx else None

    with session("outer"):
        assert handle(7) == "user-7"
    (record,) = records(auditor)
    assert record.session_key == "user-7"


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    when: datetime


def test_arguments_are_converted_safely_whatever_they_are(auditor: Auditor) -> None:
    """Dataclasses, enums, datetimes, bytes, cycles and unprintable objects never break the call."""

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    cyclic: list[Any] = []
    cyclic.append(cyclic)

    @audited(auditor=auditor)
    def take(*args: Any) -> str:
        return "ok"

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert take(Point(1, when), Colour.RED, b"\x00\x01", cyclic, Unprintable(), {1: {2, 3}}) == "ok"
    (record,) = records(auditor)
    args = record.request["arguments"]["args"]  # type: ignore[index]
    assert args[0] == {"x": 1, "when": "2026-01-01T00:00:00+00:00"}
    assert args[1] == "red"
    assert args[2]["bytes"] == 2
    assert args[3] == ["<cut: cycle>"]
    assert args[4].startswith("<unrepresentable Unprintable")
    assert args[5] == {"1": [2, 3]}


def test_capture_args_and_result_can_be_turned_off(auditor: Auditor) -> None:
    """capture_args=False / capture_result=False keep sensitive values out of the record."""

    @audited(auditor=auditor, capture_args=False, capture_result=False)
    def secret(password: str) -> str:
        return password[::-1]

    secret("hunter2")
    (record,) = records(auditor)
    assert "hunter2" not in repr(record.request)
    assert record.response is None


def test_tags_metadata_and_pydantic_values_reach_the_record(auditor: Auditor) -> None:
    """Decorator tags and metadata merge with the session's; pydantic models convert via model_dump."""
    pydantic = pytest.importorskip("pydantic")

    class Answer(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        text: str
        score: float

    @audited(auditor=auditor, tags=["rag"], metadata={"index": "v2"})
    def respond(question: str) -> Any:
        return Answer(text=question.upper(), score=0.5)

    with session("s", tags=["beta"], metadata={"plan": "pro"}):
        respond("hi")
    (record,) = records(auditor)
    assert record.tags == ("beta", "rag")
    assert record.metadata == {"plan": "pro", "index": "v2"}
    assert record.response == {"text": "HI", "score": 0.5}
