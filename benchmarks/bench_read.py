"""The read side over a large log: `stats` and `sessions` on SQLite and PostgreSQL, the JSONL scan rate,
and export JSONL -> PostgreSQL.

Builds --records records (default 1,000,000; chat-completion shaped, ~600 bytes of canonical JSON,
10,000 sessions, 200 users, 4 clients, 6 models, 5% errors) straight into each store (bulk inserts;
the writer's own throughput is bench_writer.py's job), then times, median of --repeat runs:
  * `Reader.stats(by=("client", "model"))` and `Reader.sessions(limit=50)` on SQLite and PostgreSQL
    (pushed down into the database: GROUP BY and window functions);
  * `Reader.stats()` over the JSONL files (every line decoded in Python), as MB/s of log scanned;
  * `llmaudit export` of the whole JSONL log into a fresh PostgreSQL table, in records/s.

    .venv/bin/python benchmarks/bench_read.py [--records 1000000] [--repeat 3] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _results import record

import llmaudit
from llmaudit.record.codec import encode_record
from llmaudit.record.model import AuditRecord, new_id
from llmaudit.storage.sql import SQLStorage

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "mistral-large",
]
CLIENTS = ["support-bot", "search", "summariser", "agent"]


def make(n: int, seed: int = 1) -> Iterator[AuditRecord]:
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    for i in range(n):
        model = MODELS[i % len(MODELS)]
        failed = rng.random() < 0.05
        yield AuditRecord(
            id=new_id(),
            created_at=start + timedelta(seconds=i * 2.5),
            session_key=f"session-{rng.randrange(10_000):05d}",
            user=f"user-{rng.randrange(200):03d}",
            client=CLIENTS[i % len(CLIENTS)],
            provider="openai",
            operation="chat.completions",
            model=model,
            method="POST",
            url="https://api.openai.com/v1/chat/completions",
            request={"model": model, "messages": [{"role": "user", "content": f"question {i} " + "x" * 120}]},
            response={"choices": [{"message": {"role": "assistant", "content": "answer " + "y" * 150}}]},
            status_code=500 if failed else 200,
            duration_ms=round(rng.lognormvariate(6.5, 0.6), 3),
            input_tokens=rng.randrange(20, 4000),
            output_tokens=rng.randrange(5, 800),
            cost_usd=round(rng.random() / 100, 9),
        )


def batched(records: Iterator[AuditRecord], size: int = 5000) -> Iterator[list[AuditRecord]]:
    batch: list[AuditRecord] = []
    for r in records:
        batch.append(r)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def fill_sql(url: str, n: int) -> float:
    store = SQLStorage(url)
    start = time.perf_counter()
    for batch in batched(make(n)):
        store.write(batch)
    store.close()
    return time.perf_counter() - start


def fill_jsonl(directory: Path, n: int) -> int:
    directory.mkdir(parents=True)
    path = directory / "llmaudit-2026-10-01.jsonl"  # one file: rotation is not what is measured here
    with path.open("wb") as out:
        for batch in batched(make(n)):
            out.write(b"".join(encode_record(r) + b"\n" for r in batch))
    return path.stat().st_size


def timed(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def drop(url: str) -> None:
    engine = sa.create_engine(url.split("?", maxsplit=1)[0])
    table = url.split("table=")[1]
    with engine.begin() as conn:
        for name in (table, f"{table}_meta", f"{table}_chain"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    engine.dispose()


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    n = args.records
    tmp = Path(tempfile.mkdtemp(prefix="llmaudit-bench-read-"))
    rows: list[str] = []
    stores = [("SQLite", f"sqlite:///{tmp / 'read.db'}")]
    pg_tables: list[str] = []
    if not args.no_postgres and reachable(5432):
        table = f"bench_read_{uuid.uuid4().hex[:8]}"
        pg_tables.append(f"{PG}?table={table}")
        stores.append(("PostgreSQL", pg_tables[-1]))
    try:
        for name, url in stores:
            fill = fill_sql(url, n)
            with llmaudit.open(url) as reader:
                stats = timed(lambda reader=reader: reader.stats(("client", "model")), args.repeat)
                sessions = timed(lambda reader=reader: reader.sessions(limit=50), args.repeat)
                groups = len(reader.stats(("client", "model")))
            rows.append(
                f"| {name} | stats by client, model ({groups} groups) | {stats:.2f} s | sessions (top 50 of "
                f"10,000) | {sessions:.2f} s | bulk load {n / fill:,.0f} records/s |"
            )
            print(rows[-1], flush=True)
        size = fill_jsonl(tmp / "jsonl", n)
        with llmaudit.open(f"jsonl://{tmp / 'jsonl'}") as reader:
            scan = timed(lambda: reader.stats(()), 1)
        jsonl_line = (
            f"JSONL scan (`stats` over {size / 1e6:,.0f} MB, every line decoded): {scan:.1f} s, "
            f"**{size / 1e6 / scan:,.1f} MB/s** ({n / scan:,.0f} records/s)."
        )
        print(jsonl_line, flush=True)
        export_line = "Export JSONL -> PostgreSQL: skipped (PostgreSQL not reachable)."
        if pg_tables:
            target = f"{PG}?table=bench_export_{uuid.uuid4().hex[:8]}"
            pg_tables.append(target)
            with llmaudit.open(f"jsonl://{tmp / 'jsonl'}") as reader:
                start = time.perf_counter()
                copied = reader.export(target, batch_size=5000)
                took = time.perf_counter() - start
            export_line = (
                "Export JSONL -> PostgreSQL (`llmaudit export --to postgresql+psycopg://…`): "
                f"{copied:,} records in {took:.0f} s, **{copied / took:,.0f} records/s**."
            )
            print(export_line, flush=True)
    finally:
        for url in pg_tables:
            drop(url)
    text = "\n".join(
        [
            f"{n:,} records (~600 B each, 10,000 sessions), Python {platform.python_version()}, "
            f"{os.cpu_count()} cores; median of {args.repeat} runs. "
            "Re-run: `.venv/bin/python benchmarks/bench_read.py`.",
            "",
            "| store | query | time | query | time | loading the test data |",
            "|---|---|---:|---|---:|---|",
            *rows,
            "",
            jsonl_line,
            "",
            export_line,
        ]
    )
    record("bench_read", "Read side over 1,000,000 records (issue 6)", text)


if __name__ == "__main__":
    main()
