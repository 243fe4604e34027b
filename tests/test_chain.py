"""The hash chain end to end: records written through an Auditor, then tampered with in the raw files
or tables (never through llmaudit), and `verify` must say what happened, on JSONL, SQLite and
PostgreSQL; erasure and pruning keep the log verifiable."""

from __future__ import annotations

import dataclasses
import itertools
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import GENESIS, Chain, ChainState, compute_hash
from llmaudit.integrity.verify import verify_chain
from llmaudit.storage.jsonl import JSONLStorage
from llmaudit.storage.sql import SQLStorage

SECRET_TEXT = "my-private-diagnosis-7731"


def _records(n: int, start: datetime | None = None, session: str = "s1") -> list[AuditRecord]:
    start = start or datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    return [
        AuditRecord(
            created_at=start + timedelta(seconds=i),
            session_key=session,
            user="alice",
            model="gpt-4o-mini",
            request={"messages": [{"role": "user", "content": f"question {i} {SECRET_TEXT}"}]},
            response={"choices": [{"message": {"content": f"answer {i}"}}]},
            metadata={"n": i},
            input_tokens=10 + i,
        )
        for i in range(n)
    ]


class Tamper:
    """Edits a store behind llmaudit's back: raw JSONL lines, or raw SQL."""

    def __init__(self, kind: str, url: str, root: Path | None) -> None:
        self.kind, self.url, self.root = kind, url, root

    # JSONL: the lines of every data file, edited as JSON objects
    def _lines(self) -> list[tuple[Path, list[dict[str, Any]]]]:
        assert self.root is not None
        store = JSONLStorage(self.root)
        return [
            (p, [orjson.loads(line) for line in p.read_bytes().splitlines() if line]) for p in store.files()
        ]

    def _save(self, path: Path, rows: list[dict[str, Any]]) -> None:
        path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in rows))

    def _sql(self, statement: str, **params: Any) -> None:
        store = SQLStorage(self.url)
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        with store._engine.begin() as conn:
            conn.execute(sa.text(statement.format(table=store.table.name)), params)
        store.close()

    def update(self, record_id: str, **fields: Any) -> None:
        if self.kind == "jsonl":
            for path, rows in self._lines():
                for row in rows:
                    if row["id"] == record_id:
                        row.update(fields)
                self._save(path, rows)
            return
        sets = ", ".join(f"{k} = :{k}" for k in fields)
        values = {
            k: orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v for k, v in fields.items()
        }
        self._sql(f"UPDATE {{table}} SET {sets} WHERE id = :id", id=record_id, **values)

    def delete(self, *record_ids: str) -> None:
        if self.kind == "jsonl":
            for path, rows in self._lines():
                self._save(path, [r for r in rows if r["id"] not in record_ids])
            return
        for record_id in record_ids:
            self._sql("DELETE FROM {table} WHERE id = :id", id=record_id)

    def insert(self, record: AuditRecord) -> None:
        store = JSONLStorage(self.root) if self.kind == "jsonl" and self.root else SQLStorage(self.url)
        if isinstance(store, SQLStorage):  # a plain INSERT: no chain head moves
            # private: the store's own engine, files and writes, to inspect or tamper with what it holds
            with store._engine.begin() as conn:
                conn.exec_driver_sql(store._insert_sql, [store._to_params(record)])
        else:
            path, rows = self._lines()[-1]
            rows.append(orjson.loads(llmaudit.record.codec.encode_record(record)))
            self._save(path, rows)
        store.close()


@pytest.fixture(params=["jsonl", "sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Tamper]:
    kind = request.param
    if kind == "jsonl":
        url, root = f"jsonl://{tmp_path / 'log'}", tmp_path / "log"
    elif kind == "sqlite":
        url, root = f"sqlite:///{tmp_path / 'audit.db'}", None
    else:
        url, root = request.getfixturevalue("pg_url"), None
    return url, Tamper(kind, url, root)


def _write(url: str, records: list[AuditRecord], tmp_path: Path, **options: Any) -> list[AuditRecord]:
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool"), **options) as auditor:
        for record in records:
            auditor.submit(record)
    with llmaudit.open(url) as reader:
        return sorted(reader.records(), key=lambda r: r.seq or 0)


def test_an_untouched_log_verifies(store: tuple[str, Tamper], tmp_path: Path) -> None:
    url, _ = store
    written = _write(url, _records(6), tmp_path)
    assert [r.seq for r in written] == [1, 2, 3, 4, 5, 6]
    assert written[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(written))
    with llmaudit.open(url) as reader:
        report = reader.verify()
    assert report.ok, report.to_json()
    assert report.totals()["verified"] == 6


def test_an_edited_field_is_reported_as_modified(store: tuple[str, Tamper], tmp_path: Path) -> None:
    url, tamper = store
    written = _write(url, _records(5), tmp_path)
    tamper.update(written[2].id, model="gpt-4o")
    tamper.update(written[3].id, response={"choices": [{"message": {"content": "forged"}}]})
    with llmaudit.open(url) as reader:
        report = reader.verify()
    assert not report.ok
    (writer,) = report.writers.values()
    assert sorted(writer.modified) == sorted([written[2].id, written[3].id])
    assert writer.verified == 3 and not writer.missing and not writer.inserted


def test_a_deleted_record_and_a_cut_tail_are_reported_missing(
    store: tuple[str, Tamper], tmp_path: Path
) -> None:
    url, tamper = store
    written = _write(url, _records(6), tmp_path)
    tamper.delete(written[1].id, written[4].id, written[5].id)
    with llmaudit.open(url) as reader:
        report = reader.verify()
    (writer,) = report.writers.values()
    assert writer.missing == [(2, 2), (5, 6)]  # the tail is known from the head kept beside the records
    assert not report.ok


def test_an_inserted_record_is_reported(store: tuple[str, Tamper], tmp_path: Path) -> None:
    url, tamper = store
    written = _write(url, _records(4), tmp_path)
    forged = AuditRecord(
        session_key="s1",
        model="gpt-4o-mini",
        writer_id=written[1].writer_id,
        seq=2,  # claims a position that is taken
        prev_hash=written[0].hash,
        hash="f" * 64,
    )
    unchained = AuditRecord(session_key="s1", model="added-later")
    tamper.insert(forged)
    tamper.insert(unchained)
    with llmaudit.open(url) as reader:
        report = reader.verify()
    (writer,) = report.writers.values()
    assert writer.inserted == [forged.id]
    assert report.unchained == [unchained.id]
    assert writer.verified == 4 and not report.ok


def test_swapped_positions_are_reported_as_reordered(store: tuple[str, Tamper], tmp_path: Path) -> None:
    url, tamper = store
    written = _write(url, _records(5), tmp_path)
    a, b = written[1], written[2]
    tamper.update(a.id, seq=b.seq)
    tamper.update(b.id, seq=a.seq)
    with llmaudit.open(url) as reader:
        report = reader.verify()
    (writer,) = report.writers.values()
    assert sorted(writer.reordered) == sorted([a.id, b.id])
    assert not writer.modified and not report.ok


def test_forget_erases_the_text_everywhere_and_the_log_still_verifies(
    store: tuple[str, Tamper], tmp_path: Path
) -> None:
    url, tamper = store
    _write(url, _records(3, session="keep") + _records(3, session="forget-me"), tmp_path)
    with llmaudit.open(url, spool_dir=tmp_path / "spool") as reader:
        result = reader.forget(session="forget-me")
        report = reader.verify()
        erased = list(reader.records(session_key="forget-me"))
        kept = list(reader.records(session_key="keep"))
    assert result.erased == 3
    assert report.ok, report.to_json()
    assert report.totals()["erased"] == 3
    assert all(r.request["erased"] is True and len(r.request["sha256"]) == 64 for r in erased)  # type: ignore[index]
    assert all(SECRET_TEXT in str(r.request) for r in kept)
    if tamper.kind == "jsonl":
        raw = b"".join(p.read_bytes() for p in (tmp_path / "log").glob("*.jsonl"))
        assert raw.count(SECRET_TEXT.encode()) == 3  # only the kept session's three records
    elif tamper.kind == "sqlite":
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
        assert raw.count(b"question 0 " + SECRET_TEXT.encode()) == 1  # 'keep' s record 0 only
    else:
        store = SQLStorage(url)
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        with store._engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT t::text FROM {store.table.name} t")).scalars().all()
        store.close()
        assert sum(SECRET_TEXT in row for row in rows) == 3


def test_prune_leaves_a_checkpoint_so_the_rest_still_verifies(
    store: tuple[str, Tamper], tmp_path: Path
) -> None:
    url, _ = store
    old = datetime(2026, 1, 1, tzinfo=timezone.utc)
    new = datetime(2026, 11, 1, tzinfo=timezone.utc)
    _write(url, _records(4, start=old) + _records(3, start=new), tmp_path)
    with llmaudit.open(url) as reader:
        result = reader.prune(datetime(2026, 6, 1, tzinfo=timezone.utc))
        report = reader.verify()
        left = sorted(r.seq or 0 for r in reader.records())
    assert (result.deleted, result.checkpoints) == (4, 1)
    assert left == [5, 6, 7]
    assert report.ok, report.to_json()
    (writer,) = report.writers.values()
    assert writer.base_seq == 4


def test_several_writers_and_a_replayed_spool_each_verify(tmp_path: Path) -> None:
    """Two processes' writers share one JSONL log; a third writer's records went through the spool
    (the storage was down) and were replayed later, out of file order: every chain verifies."""
    url = f"jsonl://{tmp_path / 'log'}"
    _write(url, _records(3, session="a"), tmp_path)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: its own writer after fork
        try:
            _write(url, _records(3, session="child"), tmp_path)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    spool = llmaudit.pipeline.spool.Spool(tmp_path / "spool")
    spool.append(Chain().seal(_records(2, session="spooled")))
    spool.release()
    _write(url, _records(2, session="b"), tmp_path)  # opening the auditor replays the spool
    with llmaudit.open(url) as reader:
        report = reader.verify()
        sessions = {r.session_key for r in reader.records()}
    assert sessions == {"a", "child", "spooled", "b"}
    assert len(report.writers) == 4 and report.ok, report.to_json()


def test_a_keyed_chain_needs_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    monkeypatch.setenv("LLMAUDIT_CHAIN_KEY", "test-chain-key-FAKE")
    _write(url, _records(3), tmp_path)
    with llmaudit.open(url) as reader:
        assert reader.verify().ok
        assert reader.verify(key="another-key").totals()["modified"] == 3
    monkeypatch.delenv("LLMAUDIT_CHAIN_KEY")
    with llmaudit.open(url) as reader:
        assert not reader.verify().ok  # an unkeyed check of a keyed chain fails


def test_verify_and_forget_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    written = _write(url, _records(3), tmp_path)
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify", "-s", url])
    assert ok.exit_code == 0 and ok.output.startswith("OK: 3 verified"), ok.output
    as_json = runner.invoke(cli, ["verify", "-s", url, "--json"])
    assert orjson.loads(as_json.output)["verified"] == 3
    forgot = runner.invoke(cli, ["forget", "-s", url, "--id", written[0].id])
    assert forgot.exit_code == 0 and "erased 1 records" in forgot.output
    none = runner.invoke(cli, ["forget", "-s", url, "--session", "nobody"])
    assert none.exit_code == 1 and "no matching record" in none.output
    Tamper("sqlite", url, None).update(written[1].id, user="mallory")
    failed = runner.invoke(cli, ["verify", "-s", url])
    assert failed.exit_code == 1 and failed.output.startswith("FAILED")
    assert "1 modified" in failed.output and "(1 erased)" in failed.output


def test_prune_command(tmp_path: Path) -> None:
    url = f"jsonl://{tmp_path / 'log'}"
    _write(
        url,
        _records(2, start=datetime(2020, 1, 1, tzinfo=timezone.utc))
        + _records(1, start=datetime.now(timezone.utc)),
        tmp_path,
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["prune", "-s", url, "--older-than", "30d"])
    assert result.exit_code == 0 and "deleted 2 records" in result.output, result.output
    assert runner.invoke(cli, ["verify", "-s", url]).exit_code == 0
    bad = runner.invoke(cli, ["prune", "-s", url, "--older-than", "soon"])
    assert bad.exit_code != 0 and "use a number" in bad.output


# -- properties of the chain itself -----------------------------------------------------------------

_ops = st.lists(
    st.tuples(st.sampled_from(["edit", "delete", "swap", "none"]), st.integers(0, 11)), max_size=4
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 12), ops=_ops, key=st.sampled_from([None, b"k"]))
def test_verify_flags_exactly_the_logs_that_were_touched(
    n: int, ops: list[tuple[str, int]], key: bytes | None
) -> None:
    """Any edit, deletion or swap makes verify fail; an untouched chain always passes."""
    sealed = Chain(key).seal(_records(n))
    records: list[AuditRecord] = list(sealed)
    for op, index in ops:
        if not records:
            break
        i = index % len(records)
        if op == "edit":
            records[i] = _replace(records[i], input_tokens=(records[i].input_tokens or 0) + 1)
        elif op == "delete":
            del records[i]
        elif op == "swap" and len(records) > 1:
            j = (i + 1) % len(records)
            if records[i].seq != records[j].seq:
                si, sj = records[i].seq, records[j].seq
                records[i], records[j] = _replace(records[i], seq=sj), _replace(records[j], seq=si)
    head = ChainState(sealed[-1].seq or 0, sealed[-1].hash or "")
    report = verify_chain(records, {sealed[0].writer_id or "": head}, key)
    assert report.ok is (records == sealed)  # two swaps of the same pair undo each other


def _replace(record: AuditRecord, **changes: Any) -> AuditRecord:
    return dataclasses.replace(record, **changes)


def test_the_hash_covers_payloads_through_their_digests_only() -> None:
    """A tombstone that keeps the digest hashes the same as the payload it replaced."""
    (record,) = Chain().seal(_records(1))
    erased = _replace(
        record, request=llmaudit.integrity.chain.tombstone(record.request, datetime.now(timezone.utc))
    )
    assert compute_hash(erased) == compute_hash(record) == record.hash
    assert compute_hash(_replace(record, request={"other": 1})) != record.hash


def test_the_chain_verifies_across_jsonl_rotation(tmp_path: Path) -> None:
    url = f"jsonl://{tmp_path / 'log'}?max_bytes=600"
    _write(url, _records(8), tmp_path, batch_size=2)
    assert len(list((tmp_path / "log").glob("*.jsonl"))) >= 4  # rotated
    with llmaudit.open(url) as reader:
        report = reader.verify()
    assert report.ok and report.totals()["verified"] == 8, report.to_json()


@pytest.mark.parametrize("kind", ["jsonl", "sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def test_processes_writing_at_once_each_keep_a_verifiable_chain(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four forked processes (the pre-fork server pattern: configured before the fork) write small
    batches to one store at the same time; every record is there once and every chain verifies."""
    url = {"jsonl": f"jsonl://{tmp_path / 'log'}", "sqlite": f"sqlite:///{tmp_path / 'a.db'}"}.get(kind)
    url = url or request.getfixturevalue("pg_url")
    parent = llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool"), batch_size=5, flush_interval_s=0.01)
    parent.submit(AuditRecord(session_key="parent"))
    parent.flush()
    children = []
    for n in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child: inherits the configured auditor, gets a new writer
            try:
                for i in range(60):
                    parent.submit(AuditRecord(session_key=f"child-{n}", metadata={"i": i}))
                parent.close()
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    parent.close()
    with llmaudit.open(url) as reader:
        records = list(reader.records())
        report = reader.verify()
    assert len(records) == 1 + 4 * 60 == len({r.id for r in records})
    assert len(report.writers) == 5 and report.ok, report.to_json()
    assert report.totals()["verified"] == 241


@pytest.mark.parametrize("whole", [True, False], ids=["jsonl", "sql"])
def test_the_encodings_remembered_while_sealing_are_exactly_what_storage_would_write(whole: bool) -> None:
    """Sealing remembers what the storage will encode, for it to reuse: each record's canonical JSON
    for a store that writes whole records (JSONL), each payload's and the headers' for one that
    takes them column by column (SQL). They must be byte for byte the fresh encoding, for copied and
    for writer-owned records, and right-sized copies of orjson's over-allocated buffers."""
    # private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
    from llmaudit.record.codec import dumps, encode_record, forget_encodings, recall, record_to_dict

    records = _records(5)
    erased = _replace(
        records[1], response=llmaudit.integrity.chain.tombstone({"x": 1}, datetime.now(timezone.utc))
    )
    owned_record = _replace(_records(1)[0], headers={"request": {"user-agent": "OpenAI/Python 3.57.0"}})
    batch = [records[0], erased, *records[2:], owned_record]
    chain = Chain(b"k")
    chain.remember_records = whole
    sealed = chain.seal(batch, owned={id(owned_record)})
    assert sealed[-1] is owned_record and sealed[0] is not records[0] and records[0].seq is None
    for record in sealed:
        if whole:
            kept = recall(record)
            assert kept == dumps(record_to_dict(record)) == encode_record(record)
            assert recall(record.request) is None
        else:
            assert recall(record) is None
            kept = recall(record.request)
            assert kept == dumps(record.request)
            if record.headers:
                assert recall(record.headers) == dumps(record.headers)
        assert kept is not None
    forget_encodings()
    assert recall(sealed[0]) is None


def _traced_in(snapshot: Any, filename: str) -> int:
    """Bytes still allocated, in *snapshot*, by code in *filename* (other threads' allocations, made
    elsewhere, are left out)."""
    import tracemalloc

    return sum(t.size for t in snapshot.filter_traces([tracemalloc.Filter(True, filename)]).traces)


def test_a_remembered_encoding_holds_its_size_not_orjsons_buffer() -> None:
    """orjson hands back its bytes in a buffer many times their length (16 KiB for about 1 KiB) and
    never shrinks it: what the memo keeps until the batch is written must be a right-sized copy."""
    import tracemalloc

    import orjson

    # private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
    from llmaudit.record import codec as _codec

    value = {"messages": [{"role": "user", "content": "lorem ipsum " * 90}]}
    tracemalloc.start()
    try:
        data = orjson.dumps(value)
        raw_buffer = _traced_in(tracemalloc.take_snapshot(), __file__)
        _codec.remember(value, data)
        del data
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    encoded = _codec.recall(value)
    _codec.forget_encodings()
    assert encoded == orjson.dumps(value)
    assert raw_buffer > 4 * len(encoded)  # orjson's own buffer: the waste this guards against
    assert _traced_in(after, __file__) < 256  # the memo does not hold on to it (a few small objects)
    assert _traced_in(after, _codec.__file__) < 2 * len(encoded)  # the copy (and the memo's entry)


def test_an_export_of_a_pruned_log_carries_its_checkpoint(tmp_path: Path) -> None:
    source, copy = f"jsonl://{tmp_path / 'log'}", f"sqlite:///{tmp_path / 'copy.db'}"
    old = datetime(2026, 1, 1, tzinfo=timezone.utc)
    _write(
        source,
        _records(3, start=old) + _records(2, start=datetime(2026, 11, 1, tzinfo=timezone.utc)),
        tmp_path,
    )
    with llmaudit.open(source) as reader:
        reader.prune(datetime(2026, 6, 1, tzinfo=timezone.utc))
        assert reader.export(copy) == 2
    with llmaudit.open(copy) as reader:
        report = reader.verify()
    assert report.ok, report.to_json()
    assert next(iter(report.writers.values())).base_seq == 3


def test_forget_reaches_records_still_waiting_in_the_spool(tmp_path: Path) -> None:
    """Records spilled while the storage was down are replayed and then erased: no copy of the text
    survives in the spool directory."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    spool = llmaudit.pipeline.spool.Spool(tmp_path / "spool")
    spilled = Chain().seal(_records(3, session="spilled"))
    spool.append(spilled[:2])
    spool.reject(spilled[2:])  # refused by the storage once, kept for the operator
    spool.release()
    # the store never came up: forget creates it to replay the spool into (create=True)
    with llmaudit.open(url, spool_dir=tmp_path / "spool", create=True) as reader:
        result = reader.forget(session="spilled")
        report = reader.verify()
    assert (result.erased, result.spool_replayed) == (2, 2)
    leftovers = b"".join(p.read_bytes() for p in (tmp_path / "spool").iterdir())
    assert SECRET_TEXT.encode() not in leftovers
    assert report.ok and report.totals()["erased"] == 2  # the rejected record never reached the store
    rejected = b"".join(p.read_bytes() for p in (tmp_path / "spool").glob("rejected-*"))
    assert b'"erased":true' in rejected


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec=None)),  # lone surrogates included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request=_json_values,
    metadata=st.dictionaries(st.text(max_size=5), _json_values, max_size=3),
    headers=st.dictionaries(
        st.sampled_from(["request", "response"]), st.dictionaries(st.text(max_size=8), st.text())
    ),
    tags=st.lists(st.text(alphabet=st.characters(codec=None), max_size=6), max_size=3),
    erased=st.booleans(),
    tokens=st.one_of(st.none(), st.integers(0, 2**40)),
    said=st.one_of(st.none(), st.text(max_size=20)),
)
def test_the_chain_hash_is_the_digest_of_the_canonical_json(
    request: Any,
    metadata: dict[str, Any],
    headers: Any,
    tags: list[str],
    erased: bool,
    tokens: int | None,
    said: str | None,
) -> None:
    """The hash (encoded without re-sorting: keys already in order, containers as fragments) is
    exactly ``v2:`` and SHA-256 of `dumps` of the record with each JSON field (payloads, headers) as
    its digest and each non-empty text field of the data subject as the digest of its domain and
    JSON, as the module says, the conversation fields left out when None (records sealed before
    they existed lack them); and the JSON remembered for storage is `dumps` of the record."""
    import hashlib

    # private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
    from llmaudit.integrity.chain import tombstone
    from llmaudit.record.codec import dumps, encode_record, forget_encodings, recall, record_to_dict

    response: Any = {"choices": [{"message": {"content": "x"}}]}
    if erased:
        response = tombstone(response, datetime(2026, 1, 1, tzinfo=timezone.utc))
    record = AuditRecord(
        request=request,
        response=response,
        metadata=metadata,
        headers=headers,
        tags=tuple(tags),
        input_tokens=tokens,
        user="alice",
        parent_session_key="outer",
        input_text=said,
        tool_calls=None if said is None else ({"name": "f", "arguments": said, "id": None},),
    )
    chain = Chain(None)
    chain.remember_records = True
    (sealed,) = chain.seal([record])
    expected = record_to_dict(sealed)
    del expected["hash"]
    for name in ("request", "response", "metadata", "headers"):
        value = expected[name]
        is_tomb = (
            isinstance(value, dict)
            and value.get("erased") is True
            and set(value) == {"erased", "sha256", "at"}
        )
        expected[name] = value["sha256"] if is_tomb else hashlib.sha256(dumps(value)).hexdigest()
    domains = {"parent_session_key": "session_key"}
    for name in ("input_text", "output_text", "tool_calls"):
        if expected[name] is None:
            del expected[name]
    texts = ("session_key", "parent_session_key", "user", "url", "error", "tags", "notes")
    for name in (*texts, "input_text", "tool_calls"):
        if name not in expected:
            continue
        if expected[name]:
            message = f"llmaudit-field\0{domains.get(name, name)}\0".encode() + dumps(expected[name])
            expected[name] = hashlib.sha256(message).hexdigest()
    assert sealed.hash == "v2:" + hashlib.sha256(dumps(expected)).hexdigest()
    assert sealed.hash == compute_hash(sealed)
    assert recall(sealed) == dumps(record_to_dict(sealed)) == encode_record(sealed)
    forget_encodings()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"erased": True, "sha256": "ab" * 32, "at": "2026-01-01T00:00:00.000000Z"}, True),
        ({"erased": True, "sha256": "ab" * 32}, False),  # no "at"
        ({"erased": True, "sha256": "ab" * 32, "at": "x", "more": 1}, False),  # a fourth key
        ({"erased": True, "sha256": "ab" * 32, "at": "x", "mac": "cd" * 32}, True),  # keyed erasure
        ({"erased": True, "sha256": "ab" * 32, "at": "x", "mac": 5}, False),  # a MAC that is not text
        ({"erased": True, "sha256": "ab" * 32, "when": "x"}, False),  # three keys, one of them wrong
        ({"erased": "true", "sha256": "ab" * 32, "at": "x"}, False),  # not the JSON true
        ({"erased": 1, "sha256": "ab" * 32, "at": "x"}, False),  # 1 == True, but is not True
        ({"erased": True, "sha256": 5, "at": "x"}, False),  # a digest that is not text
        ([("erased", True), ("sha256", "x"), ("at", "x")], False),
        (None, False),
    ],
)
def test_only_an_exact_tombstone_counts_as_one(value: Any, expected: bool) -> None:
    """A payload that merely looks like a tombstone is hashed as a payload (else editing it to look
    erased would keep its hash valid)."""
    assert llmaudit.integrity.chain.is_tombstone(value) is expected


def test_exact_keeps_the_bytes_in_an_allocation_of_their_size() -> None:
    """`exact` (used for the memo and for a request body rewritten by stream_usage) returns equal
    bytes held in an allocation of their own length, where orjson's output holds many times that."""
    import tracemalloc

    import orjson

    # private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
    from llmaudit.record import codec as _codec

    value = {"messages": [{"role": "user", "content": "lorem ipsum " * 90}]}
    tracemalloc.start()
    try:
        raw = orjson.dumps(value)
        copy = _codec.exact(raw)
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert copy == raw and copy is not raw
    assert _traced_in(snapshot, __file__) > 4 * len(raw)
    assert len(copy) <= _traced_in(snapshot, _codec.__file__) < len(copy) + 128  # the object header
