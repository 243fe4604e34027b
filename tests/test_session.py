"""session(), current_session(), propagate(): the context follows the code across tasks and threads."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import llmaudit
from llmaudit import current_session, propagate, session


def test_session_binds_key_user_tags_and_metadata_and_resets_on_exit() -> None:
    """Inside the block the session is current; after it, nothing is."""
    assert current_session() is None
    with session("abc", user="alice", tags=["beta"], metadata={"plan": "pro"}) as s:
        ctx = current_session()
        assert ctx is not None
        assert (ctx.session_key, ctx.user, ctx.tags, ctx.metadata) == (
            "abc",
            "alice",
            ("beta",),
            {"plan": "pro"},
        )
        assert s.key == "abc"
    assert current_session() is None


def test_a_key_is_generated_when_none_is_given() -> None:
    """session() without a key makes a UUIDv7."""
    with session() as s:
        assert uuid.UUID(s.key).version == 7


def test_nested_sessions_innermost_wins_and_tags_metadata_merge() -> None:
    """The inner key wins, the outer key is kept as parent, tags and metadata merge."""
    with session("outer", user="alice", tags=["a"], metadata={"x": 1, "y": 1}):
        with session("inner", tags=["b", "a"], metadata={"y": 2}):
            ctx = current_session()
            assert ctx is not None
            assert (ctx.session_key, ctx.parent_session_key, ctx.user) == ("inner", "outer", "alice")
            assert ctx.tags == ("a", "b")
            assert ctx.metadata == {"x": 1, "y": 2}
        assert current_session().session_key == "outer"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (123, "must be a string, not int"),
        ("", "must not be empty"),
        ("k" * 256, "the limit is 255"),
        ("a\x00b", "NUL"),
    ],
)
def test_bad_session_keys_are_a_clear_value_error(key: object, message: str) -> None:
    """Bad keys fail at the session(...) call, naming the problem (and the column limit)."""
    with pytest.raises(ValueError, match=message):
        session(key)  # type: ignore[arg-type]


def test_session_as_a_decorator_on_sync_and_async_functions() -> None:
    """@session(...) runs each call inside the session; the signature is kept."""

    @session("deco", user="bob")
    def sync_fn(x: int) -> str | None:
        return current_session().session_key if current_session() else None  # type: ignore[union-attr]

    @session("adeco")
    async def async_fn() -> str | None:
        ctx = current_session()
        return ctx.session_key if ctx else None

    assert sync_fn(1) == "deco"
    assert asyncio.run(async_fn()) == "adeco"
    assert sync_fn.__name__ == "sync_fn"
    assert current_session() is None


@pytest.mark.asyncio
async def test_async_context_manager_and_tasks_inherit_the_session() -> None:
    """Tasks created inside a session carry it; sibling tasks never see each other's."""

    async def worker(key: str) -> str | None:
        async with session(key):
            await asyncio.sleep(0)
            inner = asyncio.create_task(_read_key())
            return await inner

    keys = [f"task-{i}" for i in range(200)]
    results = await asyncio.gather(*(worker(k) for k in keys))
    assert results == keys


async def _read_key() -> str | None:
    await asyncio.sleep(0)
    ctx = current_session()
    return ctx.session_key if ctx else None


def test_thread_pool_does_not_copy_context_but_propagate_does() -> None:
    """ThreadPoolExecutor drops the session; propagate() and ContextThreadPoolExecutor carry it."""

    def read() -> str | None:
        ctx = current_session()
        return ctx.session_key if ctx else None

    with session("threaded"):
        with ThreadPoolExecutor(2) as pool:
            assert pool.submit(read).result() is None
            assert pool.submit(propagate(read)).result() == "threaded"
        with llmaudit.ContextThreadPoolExecutor(2) as pool:
            assert list(pool.map(lambda _: read(), range(4))) == ["threaded"] * 4


def test_sixteen_threads_each_with_their_own_session_through_propagate() -> None:
    """16 threads started with propagate() each see the session of the code that started them."""
    results: dict[int, str | None] = {}

    def read(i: int) -> None:
        ctx = current_session()
        results[i] = ctx.session_key if ctx else None

    threads = []
    for i in range(16):
        with session(f"t{i}"):
            threads.append(threading.Thread(target=propagate(read), args=(i,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"t{i}" for i in range(16)}
