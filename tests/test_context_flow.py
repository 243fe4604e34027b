"""Sessions and @audited meet the transport: keys and parent ids reach the HTTP records, across
1,000 concurrent asyncio tasks and 16 threads."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from tests.wire import CHAT_REQUEST, CHAT_RESPONSE, CHAT_URL

import llmaudit
from llmaudit import Auditor, AuditRecord, Query


@pytest.fixture
def auditor(tmp_path: Path) -> Iterator[Auditor]:
    a = Auditor(f"memory://{uuid.uuid4().hex}", spool_dir=str(tmp_path / "spool"), queue_size=1_000_000)
    yield a
    a.close()


def _records(auditor: Auditor) -> list[AuditRecord]:
    assert auditor.flush(30)
    return list(auditor.storage.read(Query()))


def _ok(request: Any) -> Any:
    module = httpx2 if type(request).__module__.startswith("httpx2") else httpx
    return module.Response(200, json=CHAT_RESPONSE)


@pytest.mark.asyncio
async def test_a_thousand_concurrent_tasks_each_keep_their_own_session_key(auditor: Auditor) -> None:
    """1,000 tasks, each in its own session, each making an audited HTTP call that yields to the
    others mid-flight: every record carries its own task's key."""

    async def slow_ok(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(0.001)
        return httpx2.Response(200, json=CHAT_RESPONSE)

    transport = llmaudit.AsyncAuditTransport(httpx2.MockTransport(slow_ok), auditor=auditor)
    async with httpx2.AsyncClient(transport=transport) as client:

        async def task(i: int) -> None:
            async with llmaudit.session(f"task-{i}", user=f"user-{i}"):
                await client.post(CHAT_URL, json={**CHAT_REQUEST, "n": i})

        await asyncio.gather(*(task(i) for i in range(1000)))
    records = _records(auditor)
    assert len(records) == 1000
    for record in records:
        n = record.request["n"]  # type: ignore[index]
        assert (record.session_key, record.user) == (f"task-{n}", f"user-{n}")


def test_sixteen_threads_through_propagate_keep_their_session_on_http_records(auditor: Auditor) -> None:
    """Threads started with propagate() record their HTTP calls under the starting code's session."""
    transport = llmaudit.AuditTransport(httpx.MockTransport(_ok), auditor=auditor)
    client = httpx.Client(transport=transport)
    barrier = threading.Barrier(16)

    def call(i: int) -> None:
        barrier.wait()
        client.post(CHAT_URL, json={**CHAT_REQUEST, "n": i})

    threads = []
    for i in range(16):
        with llmaudit.session(f"thread-{i}"):
            threads.append(threading.Thread(target=llmaudit.propagate(call), args=(i,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    records = _records(auditor)
    assert sorted(r.session_key or "" for r in records) == sorted(f"thread-{i}" for i in range(16))
    assert all(r.session_key == f"thread-{r.request['n']}" for r in records)  # type: ignore[index]


def test_http_records_inside_an_audited_function_carry_its_id_and_client(auditor: Auditor) -> None:
    """The decorator's record parents the transport records made inside it, across nesting."""
    transport = llmaudit.AuditTransport(httpx2.MockTransport(_ok), auditor=auditor)
    client = httpx2.Client(transport=transport)

    @llmaudit.audited(auditor=auditor, client="support-bot", name="inner_step")
    def step() -> None:
        client.post(CHAT_URL, json=CHAT_REQUEST)

    @llmaudit.audited(auditor=auditor, name="answer")
    def answer() -> None:
        client.post(CHAT_URL, json=CHAT_REQUEST)
        step()

    with llmaudit.session("parent-test"):
        answer()
    client.close()
    records = _records(auditor)
    by_op = {r.operation: r for r in records if r.source == "decorator"}
    http = [r for r in records if r.source == "transport"]
    assert len(http) == 2
    parents = sorted(r.parent_id or "" for r in http)
    assert parents == sorted([by_op["answer"].id, by_op["inner_step"].id])
    inner_http = next(r for r in http if r.parent_id == by_op["inner_step"].id)
    assert inner_http.client == "support-bot"
    assert by_op["inner_step"].parent_id == by_op["answer"].id
    assert all(r.session_key == "parent-test" for r in records)


def test_nested_sessions_keep_the_parent_session_key_on_the_record(auditor: Auditor) -> None:
    """Inside a nested session the record carries the inner key and the enclosing one as parent."""
    transport = llmaudit.AuditTransport(httpx.MockTransport(_ok), auditor=auditor)
    with httpx.Client(transport=transport) as client, llmaudit.session("conversation", user="alice"):
        with llmaudit.session("turn-3", tags=["retry"]):
            client.post(CHAT_URL, json=CHAT_REQUEST)
    (record,) = _records(auditor)
    assert (record.session_key, record.parent_session_key, record.user, record.tags) == (
        "turn-3",
        "conversation",
        "alice",
        ("retry",),
    )
