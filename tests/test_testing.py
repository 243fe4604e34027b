"""`llmaudit.testing`: the storage contract runs against every built-in backend, the example
third-party backend, and rejects broken backends by rule; `capture_records` collects an
application's records and leaves the default auditor as the environment makes it."""

from __future__ import annotations

import importlib.util
import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.conftest import backends

import llmaudit
from llmaudit import AuditRecord, Query

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import ChainState, new_state
from llmaudit.storage import ChainStore, ProblemHandler, Storage, SummaryStore, open_storage, select
from llmaudit.storage import StatsRow as Row
from llmaudit.testing import check_storage

BACKENDS = backends()


@pytest.fixture(params=BACKENDS)
def store_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes the URL of a new, empty store on each backend in turn (SQL servers: a table each,
    dropped afterwards)."""
    kind, names = request.param, itertools.count()
    tables: list[str] = []
    base = ""
    if kind in ("postgres", "mariadb"):
        base = str(request.getfixturevalue("pg_url" if kind == "postgres" else "mariadb_url")).split("?")[0]

    def new_url() -> str:
        n = next(names)
        if kind == "memory":
            return f"memory://{uuid.uuid4().hex}"
        if kind == "jsonl":
            return f"jsonl://{tmp_path / f'log{n}'}"
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'audit{n}.db'}"
        tables.append(f"contract_{uuid.uuid4().hex[:12]}")
        return f"{base}?table={tables[-1]}"

    yield new_url
    if tables:
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            for table in tables:
                for name in (table, f"{table}_meta", f"{table}_chain", f"{table}_registry"):
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        engine.dispose()


def test_every_built_in_backend_passes_the_contract(store_urls: Callable[[], str]) -> None:
    """What `check_storage` checks is what llmaudit's own backends do, on every one of them."""
    urls: dict[int, str] = {}

    def factory() -> Storage:
        url = store_urls()
        store = open_storage(url)
        urls[id(store)] = url
        return store

    check_storage(factory, reopen=lambda store: open_storage(urls[id(store)]))


def _example() -> Any:
    path = Path(__file__).resolve().parent.parent / "examples" / "custom_storage.py"
    spec = importlib.util.spec_from_file_location("custom_storage_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_third_party_backend_passes_the_contract(tmp_path: Path) -> None:
    """examples/custom_storage.py's shelve-backed store has none of the optional capabilities and
    passes: the capabilities' rules apply only to a backend that has them."""
    shelve_storage = _example().ShelveStorage
    names = itertools.count()
    check_storage(
        lambda: shelve_storage(tmp_path / f"s{next(names)}"),
        reopen=lambda store: shelve_storage(store.path),
    )


class DictStorage:
    """A minimal correct backend; the broken ones below each break one rule of it."""

    def __init__(self) -> None:
        self.url = "dict://"
        self.records: dict[str, AuditRecord] = {}

    def write(self, records: Sequence[AuditRecord]) -> None:
        for record in records:
            self.records.setdefault(record.id, record)

    def read(
        self, query: Query = Query(), *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        return iter(select(list(self.records.values()), query))

    def close(self) -> None:
        pass


class Duplicating(DictStorage):
    """Appends every record it is given: a retried batch is stored twice."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[AuditRecord] = []

    def write(self, records: Sequence[AuditRecord]) -> None:
        self.rows.extend(records)

    def read(
        self, query: Query = Query(), *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        return iter(select(self.rows, query))


class Lossy(DictStorage):
    """Keeps floats of the metadata as floats of a lower precision (a REAL column, say)."""

    def write(self, records: Sequence[AuditRecord]) -> None:
        super().write([replace(r, metadata={k: str(v) for k, v in r.metadata.items()}) for r in records])


class Unordered(DictStorage):
    """Ignores ``order="desc"``."""

    def read(
        self, query: Query = Query(), *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        return super().read(replace(query, order="asc"), on_problem=on_problem)


class HeadLowering(DictStorage):
    """A `ChainStore` whose head is the last batch's, even when a replay brings older records."""

    def __init__(self) -> None:
        super().__init__()
        self.heads: dict[str, ChainState] = {}

    def write(self, records: Sequence[AuditRecord]) -> None:
        super().write(records)
        for r in records:
            if r.writer_id is not None and r.seq is not None and r.hash is not None:
                self.heads[r.writer_id] = new_state(r.writer_id, r.seq, r.hash, None)

    def chain_states(self) -> dict[str, ChainState]:
        return dict(self.heads)

    def erase(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        return 0

    def delete(self, ids: Sequence[str], checkpoints: Mapping[str, tuple[int, str]]) -> int:
        return 0


class Miscounting(DictStorage):
    """A `SummaryStore` that counts every record as a call."""

    def summarize_sessions(self, query: Query, limit: int | None) -> Iterator[Any]:
        with llmaudit.open(_plain(self)) as reader:
            return iter(reader.sessions(limit=limit))

    def summarize(self, by: tuple[str, ...], query: Query) -> Iterator[Row]:
        with llmaudit.open(_plain(self)) as reader:
            rows = reader.stats(by=by)
        return iter(replace(row, calls=row.calls + 1) for row in rows)


def _plain(store: DictStorage) -> DictStorage:
    """The same records behind a store without the summary capability (the reference)."""
    plain = DictStorage()
    plain.records = store.records
    return plain


class Unclosable:
    """Has no ``close``: not a `Storage` at all."""

    url = "broken://"

    def write(self, records: Sequence[AuditRecord]) -> None:
        pass


def test_a_correct_minimal_backend_passes() -> None:
    """The broken backends below fail because of what they break, not because of the harness."""
    check_storage(DictStorage)


@pytest.mark.parametrize(
    ("backend", "rule"),
    [
        (Duplicating, "idempotent"),
        (Lossy, "round-trip"),
        (Unordered, "queries"),
        (HeadLowering, "chain-heads"),
        (Miscounting, "summaries"),
        (Unclosable, "protocol"),
    ],
)
def test_a_broken_backend_is_rejected_naming_the_rule_it_breaks(
    backend: Callable[[], Any], rule: str
) -> None:
    with pytest.raises(AssertionError, match=f"storage contract, rule '{rule}'"):
        check_storage(backend)


def test_the_broken_capabilities_are_detected_as_capabilities() -> None:
    """The capability rules ran because isinstance found the capability (not by accident)."""
    assert isinstance(HeadLowering(), ChainStore)
    assert isinstance(Miscounting(), SummaryStore)
    assert not isinstance(DictStorage(), ChainStore)
    assert not isinstance(DictStorage(), SummaryStore)


def test_a_backend_that_loses_records_on_reopen_is_rejected() -> None:
    with pytest.raises(AssertionError, match="rule 'durable'"):
        check_storage(DictStorage, reopen=lambda store: DictStorage())


def _client() -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"model": "gpt-4o-mini", "choices": [], "usage": {"total_tokens": 3}})

    transport = llmaudit.AuditTransport(httpx.MockTransport(answer))
    return httpx.Client(transport=transport, base_url="https://api.openai.com")


def test_capture_records_collects_what_the_application_recorded_inside_the_block() -> None:
    with _client() as client:
        with llmaudit.testing.capture_records() as records:
            with llmaudit.session("captured", user="alice"):
                client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []})
            assert records == []  # filled on exit
        assert [(r.session_key, r.user, r.provider, r.status_code) for r in records] == [
            ("captured", "alice", "openai", 200)
        ]
        assert records[0].hash is not None  # sealed into a chain, like every stored record
        with llmaudit.testing.capture_records() as second:
            pass
        assert second == []  # each block has a store of its own


def test_capture_records_redacts_as_in_production_unless_told_otherwise() -> None:
    email = "alice@example.com"
    with llmaudit.testing.capture_records() as redacted:
        llmaudit.get_auditor().submit(AuditRecord(request={"text": email}))
    with llmaudit.testing.capture_records(redactor=False) as raw:
        llmaudit.get_auditor().submit(AuditRecord(request={"text": email}))
    assert email not in str(redacted[0].request)
    assert raw[0].request == {"text": email}


def test_capture_records_records_even_when_disabled_and_leaves_the_default_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMAUDIT_DISABLED", "1")
    with llmaudit.testing.capture_records() as records:
        llmaudit.get_auditor().submit(AuditRecord(session_key="on"))
    assert [r.session_key for r in records] == ["on"]
    # afterwards the default is the environment's again: disabled
    assert isinstance(llmaudit.get_auditor(), llmaudit.NullAuditor)
    llmaudit.shutdown()
