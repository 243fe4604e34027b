"""Heads, prune checkpoints and writers are authenticated (issue 16, item 4), on every backend.

Each test writes through an Auditor, then attacks the raw store as someone with write access to the
database but not the chain key would (SQL statements, the JSONL chain files, the memory store's
dicts), and `verify` must fail and say what happened. The contract runs over `storage_url`: memory,
JSONL, SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from tests.conftest import SQL_KINDS, store_url_for

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.integrity.chain import new_state, registry_entry
from llmaudit.integrity.verify import verify_chain
from llmaudit.storage import Query, memory, open_storage
from llmaudit.storage.sql import SQLStorage
from llmaudit.storage.sql import migrations as _migrations

KEY = "test-chain-key-FAKE-0f3a"
START = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _records(n: int, start: datetime = START, session: str = "s1") -> list[AuditRecord]:
    return [
        AuditRecord(created_at=start + timedelta(seconds=i), session_key=session, request={"i": i})
        for i in range(n)
    ]


@pytest.fixture(autouse=True)
def _chain_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMAUDIT_CHAIN_KEY", KEY)


def _write(url: str, records: list[AuditRecord], tmp_path: Path) -> str:
    """Writes *records* as one writer (one Auditor, keyed from ``LLMAUDIT_CHAIN_KEY``); returns its
    writer id."""
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool"), mode="sync") as auditor:
        for record in records:
            auditor.submit(record)
    with llmaudit.open(url) as reader:
        found = {r.writer_id for r in reader.records(ids=[r.id for r in records])}
    (writer,) = found
    assert writer is not None
    return writer


class Raw:
    """The store as an attacker sees it: raw tables, files or dicts, never llmaudit's API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = url.split("://", 1)[0]

    # -- the memory store's shared dicts ---------------------------------------------------------
    def _memory(self) -> Any:
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        return memory._shared[self.url.split("://", 1)[1]]

    # -- JSONL ------------------------------------------------------------------------------------
    def _dir(self) -> Path:
        return Path(self.url.split("://", 1)[1])

    # -- SQL --------------------------------------------------------------------------------------
    def _sql(self, statement: str, **params: Any) -> list[Any]:
        store = SQLStorage(self.url)
        names = {"t": store.table.name, "chain": store.chain.name, "registry": store.registry_table.name}
        try:
            # private: the store's own engine, files and writes, to inspect or tamper with what it holds
            with store._engine.begin() as conn:
                result = conn.execute(sa.text(statement.format(**names)), params)
                return list(result) if result.returns_rows else []
        finally:
            store.close()

    def records(self, writer: str) -> list[dict[str, Any]]:
        """The writer's records as stored, by seq (id, seq, hash)."""
        if self.kind == "memory":
            stored = self._memory()[0].values()
            rows = [{"id": r.id, "seq": r.seq, "hash": r.hash} for r in stored if r.writer_id == writer]
        elif self.kind == "jsonl":
            rows = [
                orjson.loads(line)
                for path in sorted(self._dir().glob("llmaudit-*.jsonl"))
                for line in path.read_bytes().splitlines()
            ]
            rows = [r for r in rows if r["writer_id"] == writer]
        else:
            found = self._sql("SELECT id, seq, hash FROM {t} WHERE writer_id = :w", w=writer)
            rows = [{"id": i, "seq": s, "hash": h} for i, s, h in found]
        return sorted(rows, key=lambda r: r["seq"])

    def delete_records(self, ids: list[str]) -> None:
        if self.kind == "memory":
            for record_id in ids:
                del self._memory()[0][record_id]
        elif self.kind == "jsonl":
            for path in self._dir().glob("llmaudit-*.jsonl"):
                kept = [
                    line for line in path.read_bytes().splitlines() if orjson.loads(line)["id"] not in ids
                ]
                path.write_bytes(b"".join(line + b"\n" for line in kept))
        else:
            for record_id in ids:
                self._sql("DELETE FROM {t} WHERE id = :id", id=record_id)

    def state(self, writer: str) -> list[Any]:
        """[head_seq, head_hash, base_seq, base_hash, head_mac, base_mac]"""
        if self.kind == "memory":
            return list(self._memory()[2][writer])
        if self.kind == "jsonl":
            return list(orjson.loads((self._dir() / ".chain" / f"{writer}.json").read_bytes()))
        columns = "head_seq, head_hash, base_seq, base_hash, head_mac, base_mac"
        (row,) = self._sql(f"SELECT {columns} FROM {{chain}} WHERE writer_id = :w", w=writer)
        return list(row)

    def set_state(self, writer: str, values: list[Any]) -> None:
        if self.kind == "memory":
            self._memory()[2][writer] = llmaudit.integrity.chain.ChainState(*values)
        elif self.kind == "jsonl":
            (self._dir() / ".chain" / f"{writer}.json").write_bytes(orjson.dumps(values) + b"\n")
        else:
            names = ("head_seq", "head_hash", "base_seq", "base_hash", "head_mac", "base_mac")
            sets = ", ".join(f"{n} = :{n}" for n in names)
            self._sql(
                f"UPDATE {{chain}} SET {sets} WHERE writer_id = :w",
                w=writer,
                **dict(zip(names, values, strict=True)),
            )

    def delete_state(self, writer: str) -> None:
        if self.kind == "memory":
            del self._memory()[2][writer]
        elif self.kind == "jsonl":
            (self._dir() / ".chain" / f"{writer}.json").unlink()
        else:
            self._sql("DELETE FROM {chain} WHERE writer_id = :w", w=writer)

    def delete_registry_entry(self, writer: str) -> None:
        """Removes the registry entry naming *writer* (wherever it stands)."""
        if self.kind == "memory":
            entries = self._memory()[3]
            entries[:] = [e for e in entries if e.writer_id != writer]
        elif self.kind == "jsonl":
            path = self._dir() / ".chain" / "registry.jsonl"
            kept = [line for line in path.read_bytes().splitlines() if orjson.loads(line)[2] != writer]
            path.write_bytes(b"".join(line + b"\n" for line in kept))
        else:
            self._sql("DELETE FROM {registry} WHERE writer_id = :w", w=writer)


def _strip_authentication(raw: Raw, writer: str) -> None:
    """What an attacker does to make a store look as if written before heads had MACs: no MACs on
    the head, no registry at all."""
    state = raw.state(writer)
    state[4] = state[5] = None
    raw.set_state(writer, state)
    if raw.kind == "memory":
        # private: the store's own engine, files and writes, to inspect or tamper with what it holds
        raw._memory()[3].clear()
    elif raw.kind == "jsonl":
        (raw._dir() / ".chain" / "registry.jsonl").unlink()
    else:
        raw._sql("DELETE FROM {registry}")


def _verify(url: str, key: str = KEY) -> llmaudit.integrity.verify.VerifyReport:
    with llmaudit.open(url) as reader:
        return reader.verify(key)


def test_an_untouched_keyed_store_verifies_with_authenticated_heads(storage_url: str, tmp_path: Path) -> None:
    """The baseline of the attacks below: two writers, each head MACed and registered, no warnings."""
    first = _write(storage_url, _records(4), tmp_path)
    second = _write(storage_url, _records(2, session="s2"), tmp_path)
    report = _verify(storage_url)
    assert report.ok, report.to_json()
    assert report.registry_checked and not report.vanished
    for writer in (first, second):
        assert report.writers[writer].verified in (4, 2)
        assert not report.writers[writer].warnings and not report.writers[writer].problems
    state = Raw(storage_url).state(first)
    assert state[4] and KEY not in str(state)  # a MAC, not the key


@pytest.mark.parametrize("mac", ["stale", "null"])
def test_cutting_the_tail_and_rewinding_the_head_is_detected(
    storage_url: str, tmp_path: Path, mac: str
) -> None:
    """The last two records are deleted and the head set back to the last one left, with the old
    head's MAC kept, or with no MAC at all: neither passes."""
    writer = _write(storage_url, _records(5), tmp_path)
    raw = Raw(storage_url)
    rows = raw.records(writer)
    raw.delete_records([r["id"] for r in rows[3:]])
    state = raw.state(writer)
    state[0], state[1] = rows[2]["seq"], rows[2]["hash"]
    if mac == "null":
        state[4] = None
    raw.set_state(writer, state)
    report = _verify(storage_url)
    assert not report.ok
    problems = report.writers[writer].problems
    assert problems and ("MAC" in problems[0]), problems
    assert report.writers[writer].missing == []  # the records alone look complete: the MAC tells


def test_deleting_the_oldest_records_behind_a_fake_checkpoint_is_detected(
    storage_url: str, tmp_path: Path
) -> None:
    """Records 1-2 deleted and a prune checkpoint at 2 written by hand (it cannot carry a valid MAC,
    and no prune entry in the registry backs it)."""
    writer = _write(storage_url, _records(5), tmp_path)
    raw = Raw(storage_url)
    rows = raw.records(writer)
    raw.delete_records([r["id"] for r in rows[:2]])
    state = raw.state(writer)
    state[2], state[3], state[5] = rows[1]["seq"], rows[1]["hash"], state[4]  # the head's MAC, recycled
    raw.set_state(writer, state)
    report = _verify(storage_url)
    assert not report.ok
    assert any("checkpoint" in p for p in report.writers[writer].problems), report.to_json()
    assert report.writers[writer].missing == []


def test_a_real_prune_keeps_verifying_and_its_checkpoint_is_authenticated(
    storage_url: str, tmp_path: Path
) -> None:
    """`prune` MACs the checkpoint and registers the prune: what remains verifies with no warning."""
    writer = _write(storage_url, _records(3) + _records(2, start=START + timedelta(days=200)), tmp_path)
    with llmaudit.open(storage_url) as reader:
        result = reader.prune(START + timedelta(days=100), key=KEY)
    assert (result.deleted, result.checkpoints) == (3, 1)
    report = _verify(storage_url)
    assert report.ok, report.to_json()
    assert report.writers[writer].base_seq == 3 and not report.writers[writer].warnings
    raw = Raw(storage_url)
    state = raw.state(writer)
    state[5] = "0" * 64  # and the checkpoint's MAC is really checked
    raw.set_state(writer, state)
    assert not _verify(storage_url).ok


def test_a_writer_deleted_whole_is_reported_as_vanished(storage_url: str, tmp_path: Path) -> None:
    """Every record of the first writer and its head are deleted: the registry still lists it."""
    gone = _write(storage_url, _records(3), tmp_path)
    _write(storage_url, _records(2, session="s2"), tmp_path)
    raw = Raw(storage_url)
    raw.delete_records([r["id"] for r in raw.records(gone)])
    raw.delete_state(gone)
    report = _verify(storage_url)
    assert not report.ok
    assert report.vanished == [gone]


def test_a_registry_entry_cut_from_the_middle_is_detected(storage_url: str, tmp_path: Path) -> None:
    """The attacker also removes the vanished writer's registry entry: the next entry's link breaks."""
    gone = _write(storage_url, _records(3), tmp_path)
    _write(storage_url, _records(2, session="s2"), tmp_path)
    raw = Raw(storage_url)
    raw.delete_records([r["id"] for r in raw.records(gone)])
    raw.delete_state(gone)
    raw.delete_registry_entry(gone)
    report = _verify(storage_url)
    assert not report.ok
    assert report.registry_errors, report.to_json()


def test_a_head_deleted_by_accident_is_detected_without_a_key(
    storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unkeyed, heads carry a plain SHA-256 and the registry still lists writers: an accident (a
    lost head row) is caught, though someone who recomputes the digests is not (SECURITY.md)."""
    monkeypatch.delenv("LLMAUDIT_CHAIN_KEY")
    with llmaudit.Auditor(storage_url, spool_dir=str(tmp_path / "spool"), mode="sync") as auditor:
        for record in _records(3):
            auditor.submit(record)
    raw = Raw(storage_url)
    with llmaudit.open(storage_url) as reader:
        report = reader.verify()
    assert report.ok, report.to_json()
    (writer,) = report.writers
    tail = raw.records(writer)[-1]
    raw.delete_records([tail["id"]])
    raw.delete_state(writer)
    with llmaudit.open(storage_url) as reader:
        report = reader.verify()
    assert not report.ok
    assert "head was deleted" in report.writers[writer].problems[0]


# -- migrations never seal; sealing legacy records is explicit (issue 16, item 3) -------------------


@pytest.fixture(params=SQL_KINDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url_for(request.param, request, tmp_path)


def _look_like_version(conn: sa.Connection, store: SQLStorage, version: int) -> None:
    """Turns the schema back into what *version* had (as an attacker, or an old llmaudit, left it)."""
    inspector = sa.inspect(conn)
    quote = conn.dialect.identifier_preparer.format_table
    for column in ("input_text", "output_text", "tool_calls"):  # SQL schema 5
        conn.exec_driver_sql(f"ALTER TABLE {quote(store.table)} DROP COLUMN {column}")
    if version >= 4:
        meta = _migrations.meta_table(store.table)
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))
        return
    chain_columns = {c["name"] for c in inspector.get_columns(store.chain.name)}
    for column in ("head_mac", "base_mac"):
        if column in chain_columns:
            conn.exec_driver_sql(f"ALTER TABLE {quote(store.chain)} DROP COLUMN {column}")
    if inspector.has_table(store.registry_table.name):
        conn.exec_driver_sql(f"DROP TABLE {quote(store.registry_table)}")
    if version <= 2:
        conn.exec_driver_sql(f"ALTER TABLE {quote(store.table)} DROP COLUMN headers")
    meta = _migrations.meta_table(store.table)
    conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))


def test_a_lowered_schema_version_never_seals_a_row_inserted_behind_llmaudits_back(
    sql_url: str, tmp_path: Path
) -> None:
    """The attack of item 3: a row with empty chain fields is inserted and the schema stamp lowered
    to 2; the automatic migration on the next open used to seal it (with the chain key) into a
    ``legacy-…`` chain and verify passed. Now it stays unchained and verify fails on it."""
    _write(sql_url, _records(3), tmp_path)
    store = SQLStorage(sql_url)
    forged = AuditRecord(session_key="forged", created_at=START - timedelta(days=30))
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with store._engine.begin() as conn:
        conn.exec_driver_sql(store._insert_sql, [store._to_params(forged)])
        _look_like_version(conn, store, 2)
    store.close()
    reopened = SQLStorage(sql_url)  # migrates 2 -> 3 -> 4 on open
    try:
        assert reopened.schema_version() == _migrations.SCHEMA_VERSION
        report = llmaudit.open(reopened).verify(KEY)
    finally:
        reopened.close()
    assert not report.ok
    assert report.unchained == [forged.id]
    assert not any(w.startswith("legacy-") for w in report.writers), report.to_json()


def test_upgrading_a_version_3_store_keeps_it_verifying_and_seals_nothing(
    sql_url: str, tmp_path: Path
) -> None:
    """A store as version 3 left it (heads without MACs, no registry) is upgraded on open: every
    record keeps its chain fields, verify passes with an "unauthenticated head" warning, and the
    next writer's head is MACed and registered."""
    old = _write(sql_url, _records(3), tmp_path)
    store = SQLStorage(sql_url)
    before = {r.id: (r.writer_id, r.seq, r.hash) for r in store.read(Query())}
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with store._engine.begin() as conn:
        _look_like_version(conn, store, 3)
    store.close()
    upgraded = SQLStorage(sql_url)
    try:
        assert {r.id: (r.writer_id, r.seq, r.hash) for r in upgraded.read(Query())} == before
        assert upgraded.registry() == []  # the migration registered nothing, sealed nothing
    finally:
        upgraded.close()
    report = _verify(sql_url)
    assert report.ok, report.to_json()
    assert report.writers[old].warnings and "unauthenticated head" in report.writers[old].warnings[0]
    new = _write(sql_url, _records(1, session="after-upgrade"), tmp_path)
    report = _verify(sql_url)
    assert report.ok and not report.writers[new].warnings, report.to_json()
    with llmaudit.open(sql_url) as reader:
        assert not reader.verify(KEY, require_macs=True).ok  # the old writer's head has no MAC


def test_sealing_legacy_records_is_explicit_recorded_and_reported(storage_url: str, tmp_path: Path) -> None:
    """Records written before the store had a chain are reported unchained until `seal_legacy` runs;
    it seals only those older than the first chained record, records the sealing in the registry
    (count, ids, who, which key by fingerprint), and verify lists it."""
    legacy = _records(2, start=START - timedelta(days=10), session="before-the-chain")
    store = open_storage(storage_url)
    store.write(legacy)
    store.close()
    _write(storage_url, _records(2), tmp_path)
    late = AuditRecord(session_key="late", created_at=START + timedelta(days=1))
    store = open_storage(storage_url)
    store.write([late])  # no chain fields, yet created after the chain began: never sealed
    store.close()
    report = _verify(storage_url)
    assert not report.ok and sorted(report.unchained) == sorted([legacy[0].id, legacy[1].id, late.id])
    with llmaudit.open(storage_url) as reader:
        result = reader.seal_legacy(KEY, by="ops-alice")
    assert (result.sealed, result.left_unchained) == (2, 1)
    assert result.writer_id is not None and result.writer_id.startswith("legacy-")
    report = _verify(storage_url)
    assert report.unchained == [late.id]
    assert report.writers[result.writer_id].ok and report.writers[result.writer_id].verified == 2
    (seal,) = report.seals
    assert seal["writer_id"] == result.writer_id and seal["records"] == 2 and seal["by"] == "ops-alice"
    assert (seal["first_id"], seal["last_id"]) == (legacy[0].id, legacy[1].id)
    assert seal["key"].startswith("hmac:") and KEY not in orjson.dumps(seal).decode()


def test_the_seal_legacy_command_and_what_verify_prints(tmp_path: Path) -> None:
    """``llmaudit db seal-legacy`` seals and says how many; ``llmaudit verify`` lists the sealing, and
    names a rewound head (exit 1)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = open_storage(url)
    store.write(_records(2, start=START - timedelta(days=10), session="old"))
    store.close()
    writer = _write(url, _records(3), tmp_path)
    runner = CliRunner()
    sealed = runner.invoke(cli, ["db", "seal-legacy", "-s", url, "--by", "ops-alice"])
    assert sealed.exit_code == 0 and sealed.output.startswith("sealed 2 records into legacy-"), sealed.output
    ok = runner.invoke(cli, ["verify", "-s", url])
    assert ok.exit_code == 0, ok.output
    assert "legacy records sealed: 2 into 'legacy-" in ok.output and "by 'ops-alice'" in ok.output
    raw = Raw(url)
    state = raw.state(writer)
    state[0], state[1] = 2, raw.records(writer)[1]["hash"]
    raw.set_state(writer, state)
    failed = runner.invoke(cli, ["verify", "-s", url])
    assert failed.exit_code == 1
    assert f"writer {writer}: head (seq 2) does not match its MAC" in failed.output


def test_stripping_every_mac_and_the_registry_warns_and_require_macs_refuses_it(
    storage_url: str, tmp_path: Path
) -> None:
    """Someone strips the head's MAC and empties the registry, then cuts the tail and rewinds the
    head: the store now looks written before heads had MACs, so verify can only warn; with
    ``require_macs`` (once no such writer is expected) it fails."""
    writer = _write(storage_url, _records(4), tmp_path)
    raw = Raw(storage_url)
    rows = raw.records(writer)
    _strip_authentication(raw, writer)
    raw.delete_records([rows[-1]["id"]])
    state = raw.state(writer)
    state[0], state[1] = rows[-2]["seq"], rows[-2]["hash"]
    raw.set_state(writer, state)
    report = _verify(storage_url)
    assert any("unauthenticated head" in w for w in report.writers[writer].warnings), report.to_json()
    with llmaudit.open(storage_url) as reader:
        strict = reader.verify(KEY, require_macs=True)
    assert not strict.ok
    assert any("unauthenticated head" in p for p in strict.writers[writer].problems)


def test_a_keyed_export_of_a_pruned_log_verifies_with_the_key(storage_url: str, tmp_path: Path) -> None:
    """The copy's heads and checkpoints are MACed with the chain's key, so it verifies like the source."""
    source = f"jsonl://{tmp_path / 'source'}"
    writer = _write(source, _records(3) + _records(2, start=START + timedelta(days=200)), tmp_path)
    with llmaudit.open(source) as reader:
        reader.prune(START + timedelta(days=100))
        assert reader.export(storage_url) == 2
    report = _verify(storage_url)
    assert report.ok, report.to_json()
    assert report.writers[writer].base_seq == 3 and not report.writers[writer].warnings


def test_what_was_registered_or_pruned_while_verify_read_the_heads_is_not_blamed() -> None:
    """`Reader.verify` reads the registry before and after the heads; entries past the first read
    (*settled*) may have no head or checkpoint in what it read, and are not reported, while the same
    state with those entries settled is."""
    key = KEY.encode()
    at = START
    first = registry_entry(None, "writer", "w-old", 1, "a" * 64, key=key, at=at)
    newcomer = registry_entry(first, "writer", "w-new", 1, "b" * 64, key=key, at=at)
    pruned = registry_entry(newcomer, "prune", "w-old", 1, "a" * 64, key=key, at=at)
    states = {"w-old": new_state("w-old", 1, "a" * 64, key)}  # read before the prune's checkpoint
    registry = [first, newcomer, pruned]
    report = verify_chain([], states, key, registry, settled=1)  # (no records: the head's is missing)
    assert not report.vanished and not report.writers["w-old"].problems, report.to_json()
    late = verify_chain([], states, key, registry, settled=3)
    assert late.vanished == ["w-new"]
    assert "has no checkpoint" in late.writers["w-old"].problems[0]
