"""A real database going away mid-run: records spill to the spool and come back, none lost or doubled.

The database is reached through a loopback proxy that the test cuts (every connection dropped, new
ones refused) and restores, which is what the writer sees when a server crashes or the network drops.
"""

from __future__ import annotations

import faulthandler
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import MARIADB_PORT, PG_PORT
from tests.proxy import Proxy

from llmaudit import Auditor, AuditRecord

pytestmark = pytest.mark.slow


def _proxied(url: str, real_port: int, proxy_port: int) -> str:
    sep = "&" if "?" in url else "?"
    extra = "connect_timeout=3"
    return url.replace(f":{real_port}/", f":{proxy_port}/") + sep + extra


def _count_rows(url: str, session: str) -> tuple[int, int]:
    base, _, query = url.partition("?")
    table = dict(p.split("=", 1) for p in query.split("&"))["table"]
    engine = sa.create_engine(base)
    try:
        with engine.connect() as conn:
            total = conn.execute(
                sa.text(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table} WHERE session_key = :s"),
                {"s": session},
            ).one()
    finally:
        engine.dispose()
    return int(total[0]), int(total[1])


def _run_outage(url: str, real_port: int, tmp_path: Path) -> None:
    with Proxy("127.0.0.1", real_port) as proxy:
        auditor = Auditor(
            _proxied(url, real_port, proxy.port),
            spool_dir=str(tmp_path / "spool"),
            flush_interval_s=0.02,
            batch_size=50,
        )
        # private: the auditor's writer: its retry pacing and spool have no public setting
        auditor._writer.retry_delays_s = (0.01, 0.05)
        auditor._writer.probe_interval_s = 0.2
        submitted: list[str] = []
        stop = threading.Event()

        def produce() -> None:
            while not stop.is_set():
                record = AuditRecord(session_key="outage", request={"n": len(submitted)})
                submitted.append(record.id)
                auditor.submit(record)
                time.sleep(0.0005)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        try:
            time.sleep(0.5)
            proxy.cut()
            _wait(lambda: auditor.stats().spilled > 50, timeout=60)
            proxy.restore()
            time.sleep(0.3)
        finally:
            stop.set()
            producer.join()
        _wait(lambda: auditor.flush(1) and not auditor.spool.files(), timeout=30)
        stats = auditor.stats()
        auditor.close()
    assert stats.spilled > 50
    assert stats.replayed == stats.spilled
    assert stats.failed == 0
    assert _count_rows(url, "outage") == (len(submitted), len(submitted))


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            faulthandler.dump_traceback(all_threads=True)  # where the writer is stuck, for the report
            pytest.fail("condition not reached in time")
        time.sleep(0.02)


@pytest.mark.postgres
def test_postgres_outage_spills_and_replays_every_record_once(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL cut off mid-run: every submitted record ends up in the table exactly once."""
    _run_outage(pg_url, PG_PORT, tmp_path)


@pytest.mark.mariadb
def test_mariadb_outage_spills_and_replays_every_record_once(mariadb_url: str, tmp_path: Path) -> None:
    """MariaDB cut off mid-run: every submitted record ends up in the table exactly once."""
    _run_outage(mariadb_url, MARIADB_PORT, tmp_path)


@pytest.mark.postgres
def test_postgres_connections_killed_by_the_server_are_replaced(pg_url: str, tmp_path: Path) -> None:
    """pg_terminate_backend on the writer's connections: the next batch reconnects, nothing lost."""
    url = pg_url + "&application_name=llmaudit-killed"
    with Auditor(url, spool_dir=str(tmp_path / "spool"), flush_interval_s=0.02) as auditor:
        first = [AuditRecord(session_key="killed") for _ in range(20)]
        for r in first:
            auditor.submit(r)
        assert auditor.flush(10)
        admin = sa.create_engine(pg_url.partition("?")[0])
        with admin.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'llmaudit-killed'"
                )
            ).all()
        admin.dispose()
        assert killed
        for _ in range(20):
            auditor.submit(AuditRecord(session_key="killed"))
        assert auditor.flush(10)
        _wait(lambda: not auditor.spool.files())
    assert _count_rows(pg_url, "killed") == (40, 40)
