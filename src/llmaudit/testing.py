"""Public helpers for tests: of a third-party storage backend, and of an application that records.

- `check_storage(factory)` runs llmaudit's storage contract (the rules its own backends are tested
  against) over any `Storage`, and raises `AssertionError` naming the first rule it breaks. Usable
  from pytest or from plain code; it needs no test framework.
- `capture_records()` is a context manager (like structlog's ``capture_logs``) that points the
  default auditor at an in-memory store for the ``with`` block and gives back the `AuditRecord` s
  the application made in it.

Built on the public API only (``llmaudit.configure``, ``llmaudit.open``, ``llmaudit.open_storage``,
``memory://``): this module must not reach into the writer or a backend's private state, and is
never imported by llmaudit itself.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import llmaudit

from .integrity.chain import Chain, erasure_changes
from .record.codec import encode_record
from .record.model import AuditRecord, new_id
from .storage import ChainStore, Query, RegistryStore, Storage, SummaryStore, open_storage, select

__all__ = ["CONTRACT_RULES", "capture_records", "check_storage"]

_S = TypeVar("_S", bound=Storage)

_T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _tricky_records() -> list[AuditRecord]:
    """Records whose every field a backend could get subtly wrong: big integers, floats that JSON
    text rewrites (``1e16``, ``1.0``), NUL in a payload, non-ASCII text, microseconds, empty and
    nested containers, an error, a streamed call, a chain's fields."""
    full = AuditRecord(
        created_at=datetime(2026, 11, 24, 13, 55, 16, 123, tzinfo=timezone.utc),
        session_key="sess-é-😀",
        parent_session_key="parent",
        user="alice@example.com",
        tags=("a", "β"),
        metadata={"n": 2**63 - 1, "f": 1e16, "one": 1.0, "nested": {"list": [1, None, True, "x"]}},
        client="support-bot",
        provider="openai",
        operation="chat.completions",
        model="gpt-4o-mini",
        method="POST",
        url="https://api.example.com/v1/chat/completions?page=2",
        headers={"content-type": "application/json"},
        request={"messages": [{"role": "user", "content": "hi\u0000there ✓"}], "temperature": 0.0},
        response={"choices": [{"message": {"content": "hello"}}], "usage": {"total_tokens": 12}},
        input_text="hi there",
        output_text="hello",
        tool_calls=({"arguments": "{}", "id": "call_1", "name": "lookup"},),
        status_code=200,
        is_stream=True,
        incomplete=True,
        duration_ms=12.5,
        ttft_ms=0.25,
        input_tokens=7,
        output_tokens=5,
        total_tokens=12,
        cost_usd=0.000123456789,
        source="transport",
        parent_id=new_id(),
        attempt=2,
        notes=("redacted: 1",),
        writer_id="w-tricky",
        seq=2**62,
        prev_hash="0" * 64,
        hash="f" * 64,
    )
    bare = AuditRecord(created_at=datetime(2000, 1, 1, tzinfo=timezone.utc))
    failed = AuditRecord(error="ReadTimeout: timed out", status_code=None, request=[], response="text")
    aggregation = AuditRecord(is_aggregation=True, source="aggregate", request={}, response=-0.5)
    return [full, bare, failed, aggregation]


def _population() -> list[AuditRecord]:
    out = [
        AuditRecord(
            created_at=_T0 + timedelta(hours=7 * i, microseconds=i),
            session_key=f"s{i % 4}",
            user=["alice", "bob", None][i % 3],
            client=["support-bot", "search"][i % 2],
            provider=["openai", "anthropic"][i % 2],
            model=["gpt-4o-mini", "claude-sonnet-4", "gpt-4o"][i % 3],
            source=["transport", "decorator"][i % 5 == 0],
            status_code=[200, 200, 429, 500, None][i % 5],
            error="ReadTimeout: timed out" if i % 7 == 0 else None,
            is_aggregation=i % 9 == 0,
            duration_ms=float(10 + (i * 37) % 90),
            input_tokens=i,
            output_tokens=2 * i,
            cost_usd=i / 1000,
        )
        for i in range(40)
    ]
    # two records in the same microsecond: the id breaks the tie, in both orders
    out += [AuditRecord(created_at=_T0, session_key="tie"), AuditRecord(created_at=_T0, session_key="tie")]
    return out


_T1 = datetime(2026, 11, 21, tzinfo=timezone.utc)
#: The queries every backend must answer exactly as the reference `select` does.
QUERIES = (
    Query(),
    Query(order="desc"),
    Query(limit=5),
    Query(order="desc", limit=3),
    Query(session_key="s1"),
    Query(session_key="nope"),
    Query(user="alice", client="search"),
    Query(provider="anthropic", model="gpt-4o"),
    Query(source="decorator"),
    Query(since=_T1),
    Query(until=_T1),
    Query(since=_T1, until=_T1 + timedelta(days=2), order="desc", limit=4),
    Query(errors_only=True),
    Query(is_aggregation=True),
    Query(is_aggregation=False, errors_only=True, session_key="s2"),
    Query(session_key="tie"),
)


def _check(condition: bool, rule: str, detail: str) -> None:
    if not condition:
        raise AssertionError(f"storage contract, rule {rule!r}: {detail}")


@contextlib.contextmanager
def _opened(factory: Callable[[], _S]) -> Iterator[_S]:
    store = factory()
    _check(isinstance(store, Storage), "protocol", f"{store!r} lacks url, write, read or close")
    try:
        yield store
    finally:
        store.close()


def _round_trip(store: Storage) -> None:
    batch = _tricky_records()
    store.write(batch)
    got = {r.id: r for r in store.read(Query(ids=tuple(r.id for r in batch)))}
    _check(set(got) == {r.id for r in batch}, "round-trip", f"wrote {len(batch)} records, read {len(got)}")
    for record in batch:
        _check(
            encode_record(got[record.id]) == encode_record(record),
            "round-trip",
            f"record {record.id} came back changed: wrote {encode_record(record)!r}, "
            f"read {encode_record(got[record.id])!r}",
        )


def _idempotent(store: Storage) -> None:
    first = [AuditRecord(session_key="twice", request={"n": i}) for i in range(5)]
    store.write(first)
    store.write([*first[2:], AuditRecord(session_key="twice")])
    store.write([])
    ids = [r.id for r in store.read(Query(session_key="twice"))]
    _check(len(ids) == 6 == len(set(ids)), "idempotent", f"6 distinct ids written, read {len(ids)} ids")
    _check(list(store.read(Query(ids=(new_id(),)))) == [], "idempotent", "an unknown id was found")


def _queries(store: Storage) -> None:
    population = _population()
    store.write(population[:20])
    store.write(population[20:])
    for query in QUERIES:
        expected = [r.id for r in select(population, query)]
        got = [r.id for r in store.read(query)]
        _check(
            got == expected, "queries", f"{query!r} gave {len(got)} ids {got[:3]}…, expected {expected[:3]}…"
        )


def _chained(writer: str, count: int) -> list[AuditRecord]:
    records = [AuditRecord(created_at=_T0 + timedelta(seconds=i), session_key=writer) for i in range(count)]
    return Chain(None, writer_id=writer).seal(records)


def _chain_heads(store: Storage) -> None:
    if not isinstance(store, ChainStore):
        return
    sealed = _chained("w-heads", 3)
    store.write(sealed)
    store.write(sealed[:2])  # a replayed spool file brings older records: the head never goes back
    head = store.chain_states().get("w-heads")
    _check(head is not None, "chain-heads", "no head kept for a writer whose records were written")
    assert head is not None
    _check(
        (head.head_seq, head.head_hash) == (sealed[-1].seq, sealed[-1].hash),
        "chain-heads",
        f"head is seq {head.head_seq}, expected {sealed[-1].seq} (the highest written, never lowered)",
    )
    if isinstance(store, RegistryStore):
        writers = {e.writer_id for e in store.registry() if e.kind == "writer"}
        _check("w-heads" in writers, "registry", "a new writer was not registered by its first write")


def _erase_and_delete(store: Storage) -> None:
    if not isinstance(store, ChainStore):
        return
    sealed = _chained("w-prune", 3)
    store.write(sealed)
    changes = erasure_changes(sealed[0], _T0, None)
    _check(store.erase({sealed[0].id: changes}) == 1, "erase", "erase did not report one record changed")
    erased = list(store.read(Query(ids=(sealed[0].id,))))
    _check(
        len(erased) == 1 and encode_record(erased[0]) == encode_record(replace(sealed[0], **changes)),
        "erase",
        "the erased record does not read back with exactly the erased fields",
    )
    removed = store.delete(
        [r.id for r in sealed[:2]], {"w-prune": (sealed[1].seq or 0, sealed[1].hash or "")}
    )
    left = [r.id for r in store.read(Query(session_key="w-prune"))]
    _check(removed == 2 and left == [sealed[2].id], "delete", f"delete removed {removed}, left {len(left)}")
    state = store.chain_states().get("w-prune")
    _check(
        state is not None and state.base_seq == sealed[1].seq,
        "delete",
        "delete did not leave the prune checkpoint at the last deleted seq",
    )


def _summaries(store: Storage) -> None:
    if not isinstance(store, SummaryStore):
        return
    population = _population()
    store.write(population)
    reference = open_storage("memory://")
    reference.write(population)
    with llmaudit.open(store) as native, llmaudit.open(reference) as python:
        for by in (("client", "model"), ("day",), ()):
            got, expected = native.stats(by=by), python.stats(by=by)
            _check(got == expected, "summaries", f"stats(by={by}) gave {got}, the reference {expected}")
        got_sessions, expected_sessions = native.sessions(limit=3), python.sessions(limit=3)
        _check(got_sessions == expected_sessions, "summaries", f"sessions gave {got_sessions}")
    reference.close()


def _close_twice(store: Storage) -> None:
    store.write([AuditRecord(session_key="closing")])
    store.close()
    store.close()


#: Each rule of the contract: its name and the check, run on a fresh store from the factory. A
#: capability's rules (chain heads, registry, erase, delete, summaries) run only on a store that has it.
CONTRACT_RULES: tuple[tuple[str, Callable[[Storage], None]], ...] = (
    ("round-trip", _round_trip),
    ("idempotent", _idempotent),
    ("queries", _queries),
    ("chain-heads", _chain_heads),
    ("erase-and-delete", _erase_and_delete),
    ("summaries", _summaries),
    ("close-twice", _close_twice),
)


def check_storage(factory: Callable[[], _S], *, reopen: Callable[[_S], Storage] | None = None) -> None:
    """Run llmaudit's storage contract over the backend that *factory* opens.

    Every backend must give back exactly the record it was given (compared as canonical JSON bytes),
    store an id once however often it is written, answer every `Query` exactly as the in-memory
    reference `select` does, and close idempotently. A backend with an optional capability must also
    honour that capability's rules: a `ChainStore` raises each writer's head and never lowers it,
    erases and deletes with a prune checkpoint; a `RegistryStore` registers a new writer on its first
    write; a `SummaryStore` computes the same `stats` and `sessions` as the reader's Python fallback.

    Args:
        factory: called once per rule; returns a `Storage` over a new, empty store.
        reopen: given a store from *factory* (closed after writing), returns a new `Storage` over the
            same data, to check that records survive close and reopen; skipped when None.

    Raises:
        AssertionError: the first rule the backend breaks, named, with what was expected.
    """
    for _name, rule in CONTRACT_RULES:
        with _opened(factory) as store:
            rule(store)
    if reopen is not None:
        record = AuditRecord(session_key="durable")
        with _opened(factory) as first:
            first.write([record])
        second = reopen(first)
        try:
            ids = [r.id for r in second.read(Query(session_key="durable"))]
            _check(ids == [record.id], "durable", "a record written before close was not read after reopen")
        finally:
            second.close()


@contextlib.contextmanager
def capture_records(**options: Any) -> Iterator[list[AuditRecord]]:
    """Collect the records the application makes inside the ``with`` block.

    The default auditor (behind ``AuditTransport()``, ``@audited``, ``llmaudit.session`` …) is
    configured for the block to write to a private in-memory store, synchronously (``mode="sync"``)
    on a thread writer, with recording enabled whatever ``LLMAUDIT_DISABLED`` says; *options* are
    passed on to `llmaudit.configure` (``redactor=False``, ``processors=[…]``, ``mode=…``). The
    default redaction runs as in production, so the records are those that would be stored.

    On exit the records are flushed, put in the yielded list (oldest first) and the default auditor is
    shut down: the next use creates it afresh from the environment, as on first use. An auditor the
    application configured itself before the block is flushed and closed on entry and not restored:
    configure it again after the block (or in the fixture that uses this).

    Example:
        >>> with capture_records() as records:
        ...     llmaudit.get_auditor().submit(llmaudit.AuditRecord(session_key="s"))
        >>> [r.session_key for r in records]
        ['s']
    """
    store = open_storage("memory://")
    settings: dict[str, Any] = {"mode": "sync", "writer": "thread", "disabled": False} | options
    captured: list[AuditRecord] = []
    with contextlib.ExitStack() as cleanup:
        if "spool_dir" not in settings:  # nothing of the block's is left in the user's data directory
            settings["spool_dir"] = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="llmaudit-"))
        llmaudit.configure(store, **settings)
        try:
            yield captured
        finally:
            llmaudit.shutdown()
            with llmaudit.open(store) as reader:
                captured.extend(reader.records())
            store.close()
