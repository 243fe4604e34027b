"""The query API gives the same answers on every backend (SQL pushes the work into the database,
JSONL and memory stream through the records), and those answers are right."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import backends, store_url_for

import llmaudit
from llmaudit import AuditRecord, ConfigurationError

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import Chain
from llmaudit.read.summary import nearest_rank

T0 = datetime(2026, 11, 20, 23, 0, tzinfo=timezone.utc)


def dataset() -> list[AuditRecord]:
    rng = random.Random(7)
    records = []
    for i in range(300):
        model = rng.choice(["gpt-4o-mini", "claude-sonnet-4-5", None])
        records.append(
            AuditRecord(
                id=f"00000000-0000-7000-8000-{i:012d}",
                created_at=T0 + timedelta(minutes=7 * i, microseconds=rng.randrange(1_000_000)),
                session_key=rng.choice(["s-a", "s-b", "s-c", "s-d", None]),
                user=rng.choice(["alice", "bob", None]),
                client=rng.choice(["support-bot", "search"]),
                provider="openai" if model == "gpt-4o-mini" else "anthropic",
                model=model,
                source=rng.choice(["transport", "transport", "decorator", "manual"]),
                status_code=rng.choice([200, 200, 200, 429, 500, None]),
                error=rng.choice([None, None, None, "ConnectTimeout: timed out"]),
                duration_ms=rng.choice([None, round(rng.uniform(50, 3000), 3)]),
                input_tokens=rng.choice([None, rng.randrange(1, 5000)]),
                output_tokens=rng.choice([None, rng.randrange(1, 900)]),
                cost_usd=rng.choice([None, round(rng.uniform(0, 0.05), 9)]),
            )
        )
    records.append(
        AuditRecord(
            id="00000000-0000-7000-8000-999999999999",
            created_at=T0,
            session_key="s-a",
            is_aggregation=True,
            source="aggregate",
            input_tokens=10**6,
            cost_usd=99.0,
        )
    )
    return Chain(writer_id="reader-test").seal(records)


BACKENDS = backends()


@pytest.fixture
def reference() -> llmaudit.Reader:
    reader = llmaudit.open("memory://reference")
    reader.storage.write(dataset())
    return reader


def _answers(reader: llmaudit.Reader) -> dict[str, Any]:
    return {
        "sessions": [s.to_json() for s in reader.sessions()],
        "sessions_alice": [s.to_json() for s in reader.sessions(user="alice", limit=2)],
        "stats": [r.to_json() for r in reader.stats()],
        "stats_day": [r.to_json() for r in reader.stats(by=("day", "provider"), errors_only=True)],
        "stats_all": [r.to_json() for r in reader.stats(by=(), include_aggregations=True)],
        "stats_functions": [r.to_json() for r in reader.stats(by=("client",), kind="function")],
        "stats_aggregations": [r.to_json() for r in reader.stats(by=("session_key",), kind="aggregation")],
        "functions": [r.id for r in reader.records(kind="function", order="desc", limit=7)],
        "stats_since": [r.to_json() for r in reader.stats(by=("user",), since=T0 + timedelta(hours=5))],
        "records": [r.id for r in reader.records(session="s-b", order="desc", limit=5)],
    }


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_backend_answers_like_the_reference(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, reference: llmaudit.Reader
) -> None:
    with llmaudit.open(store_url_for(kind, request, tmp_path), create=True) as reader:
        reader.storage.write(dataset())
        assert _answers(reader) == _answers(reference)


def test_the_reference_answers_are_right(reference: llmaudit.Reader) -> None:
    """Calls, tokens, cost, latency and errors are the LLM calls' (transport and hand-submitted
    records), each counted once; function and aggregation records are counted apart."""
    records = [r for r in dataset() if not r.is_aggregation]
    calls = [r for r in records if r.source != "decorator"]
    functions = [r for r in records if r.source == "decorator"]
    assert {r.source for r in calls} == {"transport", "manual"} and functions
    (everything,) = reference.stats(by=())
    assert everything.calls == len(calls) and everything.functions == 0
    assert everything.input_tokens == sum(r.input_tokens or 0 for r in calls)
    assert everything.cost_usd == pytest.approx(sum(r.cost_usd or 0 for r in calls))
    errors = [r for r in calls if r.error is not None or (r.status_code or 0) >= 400]
    assert everything.errors == len(errors) and 0 < everything.error_rate < 1
    durations = sorted(r.duration_ms for r in calls if r.duration_ms is not None)
    assert everything.p50_ms == durations[(len(durations) + 1) // 2 - 1]
    assert everything.p95_ms == durations[-(-95 * len(durations) // 100) - 1]
    (of_functions,) = reference.stats(by=(), kind="function")
    assert (of_functions.calls, of_functions.functions) == (0, len(functions))
    assert of_functions.input_tokens == sum(r.input_tokens or 0 for r in functions)
    (with_aggregation,) = reference.stats(by=(), include_aggregations=True)
    assert with_aggregation.input_tokens == everything.input_tokens + 10**6  # counted only when asked
    assert (with_aggregation.calls, with_aggregation.aggregations) == (len(calls), 1)
    sessions = {s.key: s for s in reference.sessions()}
    assert set(sessions) == {"s-a", "s-b", "s-c", "s-d"}
    in_a = [r for r in records if r.session_key == "s-a"]
    calls_a = [r for r in calls if r.session_key == "s-a"]
    assert sessions["s-a"].calls == len(calls_a)
    assert sessions["s-a"].functions == len(in_a) - len(calls_a)
    assert sessions["s-a"].aggregations == 1
    assert sessions["s-a"].input_tokens == sum(r.input_tokens or 0 for r in calls_a)
    assert sessions["s-a"].first == min(r.created_at for r in in_a)  # not the aggregation's
    assert sessions["s-a"].user == min(r.user for r in in_a if r.user)
    assert [s.key for s in reference.sessions()] == sorted(
        sessions, key=lambda k: sessions[k].last, reverse=True
    )
    days = {r.group["day"] for r in reference.stats(by=("day",))}
    assert "2026-11-20" in days and "2026-11-21" in days  # UTC dates


def test_nearest_rank() -> None:
    assert nearest_rank([], 0.5) is None
    assert nearest_rank([5.0], 0.95) == 5.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert nearest_rank(list(map(float, range(1, 101))), 0.95) == 95.0
    assert nearest_rank(list(map(float, range(1, 21))), 0.95) == 19.0


def test_bad_filters_and_groupings_are_clear_errors(reference: llmaudit.Reader) -> None:
    with pytest.raises(ConfigurationError, match="unknown record filter"):
        list(reference.records(colour="red"))
    with pytest.raises(ConfigurationError, match="cannot group by colour"):
        reference.stats(by=("colour",))


def test_get(reference: llmaudit.Reader) -> None:
    first = next(reference.records(limit=1))
    assert reference.get(first.id) == first
    assert reference.get("no-such-id") is None


def test_long_operations_report_progress(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with llmaudit.open(url, create=True) as reader:
        reader.storage.write(dataset())
        seen: list[int] = []
        reader.verify(progress=seen.append)
        assert seen == [301]  # fewer than a thousand: one report at the end
        seen.clear()
        reader.aggregate(session="s-b", progress=seen.append)
        assert sum(seen) == sum(1 for r in dataset() if r.session_key == "s-b" and not r.is_aggregation)
        seen.clear()
        reader.prune(T0, progress=seen.append)  # nothing older than T0: reads everything, deletes nothing
        assert sum(seen) == 302  # the 301 records and the aggregation just written
