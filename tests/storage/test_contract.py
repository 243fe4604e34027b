"""The storage contract, run over every backend (memory, JSONL, SQLite, PostgreSQL, MariaDB).

Every backend must give back exactly the record it was given (compared as canonical bytes), store an
id once however often it is written, and answer a `Query` exactly as the in-memory reference `select`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.codec import encode_record
from llmaudit.record.model import STRING_LIMITS, AuditRecord, new_id
from llmaudit.storage import Query, Storage, open_storage, select

# private: the contract's own sample records and queries, one copy shared with check_storage
from llmaudit.testing import QUERIES, _population

# PostgreSQL text columns cannot hold NUL and no backend can store lone surrogates: the capture layer
# cleans both before a record exists, so scalar text here excludes them. Payloads keep NUL.
_SCALAR_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_PAYLOAD_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def _short(name: str) -> st.SearchStrategy[str | None]:
    return st.none() | st.text(_SCALAR_TEXT, min_size=1, max_size=min(STRING_LIMITS[name], 40))


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _PAYLOAD_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_PAYLOAD_TEXT, children, max_size=4),
    max_leaves=12,
)
_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(timezone.utc)
)
_COUNTS = st.none() | st.integers(0, 2**62)
_MEASURES = st.none() | st.floats(0, 1e9, allow_nan=False)

records = st.builds(
    AuditRecord,
    id=st.builds(new_id),
    created_at=_TIMES,
    session_key=_short("session_key"),
    parent_session_key=_short("parent_session_key"),
    user=_short("user"),
    tags=st.lists(st.text(_SCALAR_TEXT, max_size=10), max_size=3).map(tuple),
    metadata=st.dictionaries(_PAYLOAD_TEXT, _JSON, max_size=3),
    client=_short("client"),
    provider=_short("provider"),
    operation=_short("operation"),
    model=_short("model"),
    method=st.sampled_from([None, "POST", "GET"]),
    url=st.none() | st.text(_SCALAR_TEXT, max_size=200),
    request=_JSON,
    response=_JSON,
    input_text=st.none() | st.text(_SCALAR_TEXT, max_size=200),
    output_text=st.none() | st.text(_SCALAR_TEXT, max_size=200),
    tool_calls=st.none()
    | st.lists(
        st.fixed_dictionaries(
            {"arguments": _PAYLOAD_TEXT, "id": st.none() | _PAYLOAD_TEXT, "name": st.none() | _PAYLOAD_TEXT}
        ),
        min_size=1,
        max_size=3,
    ).map(tuple),
    status_code=st.none() | st.integers(100, 599),
    error=st.none() | st.text(_SCALAR_TEXT, max_size=100),
    is_stream=st.booleans(),
    incomplete=st.booleans(),
    is_aggregation=st.booleans(),
    duration_ms=_MEASURES,
    ttft_ms=_MEASURES,
    input_tokens=_COUNTS,
    output_tokens=_COUNTS,
    total_tokens=_COUNTS,
    cost_usd=_MEASURES,
    source=st.sampled_from(["transport", "decorator", "aggregate", "manual"]),
    parent_id=st.none() | st.builds(new_id),
    attempt=st.integers(0, 10),
    notes=st.lists(st.text(_SCALAR_TEXT, max_size=20), max_size=2).map(tuple),
    writer_id=_short("writer_id"),
    seq=st.none() | st.integers(0, 2**62),
    prev_hash=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    hash=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
)


@pytest.fixture
def storage(storage_url: str) -> Iterator[Storage]:
    store = open_storage(storage_url)
    yield store
    store.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(records, min_size=1, max_size=8))
def test_every_field_round_trips_exactly(storage: Storage, batch: list[AuditRecord]) -> None:
    """What a backend returns is byte-for-byte the canonical encoding of what it was given."""
    storage.write(batch)
    got = {r.id: r for r in storage.read(Query(ids=tuple(r.id for r in batch)))}
    assert set(got) == {r.id for r in batch}
    for record in batch:
        assert encode_record(got[record.id]) == encode_record(record)
        assert got[record.id] == record


def test_writing_the_same_id_twice_stores_one_record(storage: Storage) -> None:
    """Writes are idempotent on id, so spool replay and retries never duplicate a record."""
    first = [AuditRecord(session_key="s", request={"n": i}) for i in range(5)]
    storage.write(first)
    storage.write([*first[2:], AuditRecord(session_key="s")])
    stored = list(storage.read(Query(session_key="s")))
    assert len(stored) == 6
    assert len({r.id for r in stored}) == 6


@pytest.mark.parametrize("query", QUERIES, ids=[repr(q) for q in QUERIES])
def test_queries_match_the_reference_semantics(storage: Storage, query: Query) -> None:
    """Every backend filters, orders (created_at, then id) and limits exactly as `select` does."""
    population = _population()
    storage.write(population[:20])
    storage.write(population[20:])
    expected = [r.id for r in select(population, query)]
    assert [r.id for r in storage.read(query)] == expected


def test_a_record_written_after_close_and_reopen_is_still_read(storage_url: str) -> None:
    """A store is durable across close and reopen: what one process wrote, the next one reads."""
    record = AuditRecord(session_key="durable")
    first = open_storage(storage_url)
    first.write([record])
    first.close()
    first.close()  # closing twice is harmless
    second = open_storage(storage_url)
    try:
        assert [r.id for r in second.read(Query(session_key="durable"))] == [record.id]
    finally:
        second.close()
