"""End-to-end write throughput: records/s through the Auditor's background writer into each backend.

For 1 KB and 20 KB records it measures, in one run and side by side:
  * the raw-serialisation ceiling: canonical-encoding the same records and writing them to /dev/null;
  * JSONL, SQLite and PostgreSQL (when reachable): from the first submit() until flush() returns, so the
    writer's whole job (batching, encoding, the database round trips) is inside the timed region. Each
    backend keeps one open store for all runs after a discarded warm-up run, as a long-running
    application would (a new PostgreSQL connection takes its first megabytes several times slower);
  * the caller-side cost of submit() alone (what the application's thread pays per record).
Each figure is the median of --repeat runs. Results are printed and written to benchmarks/RESULTS.md
between the writer-benchmark markers.

    .venv/bin/python benchmarks/bench_writer.py [--records 20000] [--repeat 5] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from _results import record

from llmaudit import Auditor, AuditRecord, Storage, open_storage
from llmaudit.record.codec import encode_record


def make_records(n: int, size: int) -> list[AuditRecord]:
    """Records shaped like a chat completion whose canonical JSON is about *size* bytes."""
    filler = "lorem ipsum dolor sit amet " * (size // 27)
    template = AuditRecord(session_key="bench", provider="openai", model="gpt-4o-mini")
    overhead = len(encode_record(template)) + 120
    text = filler[: max(0, size - overhead)]
    return [
        AuditRecord(
            session_key=f"s{i % 50}",
            user="bench",
            client="bench",
            provider="openai",
            operation="chat.completions",
            model="gpt-4o-mini",
            method="POST",
            url="https://api.openai.com/v1/chat/completions",
            status_code=200,
            request={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": text[: len(text) // 2]}],
            },
            response={"choices": [{"message": {"role": "assistant", "content": text[len(text) // 2 :]}}]},
            duration_ms=123.4,
            input_tokens=100,
            output_tokens=50,
            total_tokens=150,
        )
        for i in range(n)
    ]


def ceiling(records: list[AuditRecord]) -> float:
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        sink.write(b"".join(encode_record(r) + b"\n" for r in records))
    return len(records) / (time.perf_counter() - start)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt  # every thread of the process


def through_writer(store: Storage, records: list[AuditRecord], spool: str) -> tuple[float, float, float]:
    """(records/s end to end, mean ns per submit on the caller's thread, page faults per record:
    fresh memory taken from the kernel, which costs microseconds each on a virtual machine)."""
    with Auditor(store, spool_dir=spool, queue_size=len(records) + 1) as auditor:
        auditor.submit(AuditRecord(session_key="warm-up"))
        auditor.flush(30)
        faults = _minor_faults()
        start = time.perf_counter()
        for r in records:
            auditor.submit(r)
        submitted = time.perf_counter()
        if not auditor.flush(300):
            raise RuntimeError(f"flush timed out on {store.url}")
        end = time.perf_counter()
        faults = _minor_faults() - faults
        stats = auditor.stats()
    if stats.written != len(records) + 1:
        raise RuntimeError(f"{store.url}: wrote {stats.written} of {len(records) + 1} ({stats})")
    return len(records) / (end - start), (submitted - start) / len(records) * 1e9, faults / len(records)


def postgres_available() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return False
    return True


Row = tuple[str, int, float, float | None, float | None]


def run(n: int, repeat: int, use_pg: bool) -> list[Row]:
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="llmaudit-bench-"))
    pg_tables: list[str] = []
    for size in (1024, 20 * 1024):
        # Each run's records are made just before it and dropped after it: holding every run's
        # records at once (100,000 records, some 200 MB) slowed the writer by 10-35% and made it
        # erratic, through the collector and the memory around it, which no application pays.
        actual = len(encode_record(make_records(1, size)[0]))
        ceilings = [ceiling(make_records(n, size)) for _ in range(repeat)]
        rows.append((f"raw encode to /dev/null ({actual} B)", size, statistics.median(ceilings), None, None))
        backends: list[tuple[str, Callable[[int], str]]] = [
            ("JSONL", lambda i, size=size: f"jsonl://{tmp / f'jsonl-{size}-{i}'}"),
            ("SQLite", lambda i, size=size: f"sqlite:///{tmp / f'sqlite-{size}-{i}.db'}"),
        ]
        if use_pg:

            def pg(i: int) -> str:
                table = f"bench_{uuid.uuid4().hex[:8]}"
                pg_tables.append(table)
                return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?table={table}"

            backends.append(("PostgreSQL", pg))
        for name, url_for in backends:
            # One store per backend and size, opened once, as a long-running application keeps it:
            # a fresh PostgreSQL connection is several times slower for its first megabytes.
            store = open_storage(url_for(0))
            through_writer(store, make_records(n, size), str(tmp / "spool" / f"{name}{size}w"))  # warm-up
            rates, costs, faults = [], [], []
            for i in range(repeat):
                spool = str(tmp / "spool" / f"{name}{size}{i}")
                rate, cost, fault = through_writer(store, make_records(n, size), spool)
                rates.append(rate)
                costs.append(cost)
                faults.append(fault)
            store.close()
            rows.append(
                (name, size, statistics.median(rates), statistics.median(costs), statistics.median(faults))
            )
    if pg_tables:
        engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
        with engine.begin() as conn:
            for t in pg_tables:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}_meta"))
        engine.dispose()
    return rows


def report(rows: list[Row], n: int, repeat: int) -> str:
    lines = [
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; {n} records per run, "
        f"median of {repeat} runs. Re-run: `.venv/bin/python benchmarks/bench_writer.py`. The Auditor's "
        "defaults are on: redaction with the built-in detectors and the hash chain (issue 5); the "
        "raw-encode row is the ceiling of encoding alone on this machine in the same run.",
        "",
        "| target | record size | records/s end to end | share of the raw-encode ceiling "
        "| submit() on the caller's thread | page faults per record |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ceilings = {size: rate for name, size, rate, cost, _ in rows if cost is None}
    for name, size, rate, cost, faults in rows:
        submit = "-" if cost is None else f"{cost / 1000:.2f} µs"
        share = "-" if cost is None else f"{rate / ceilings[size]:.0%}"
        fault = "-" if faults is None else f"{faults:.2f}"
        lines.append(f"| {name} | {size // 1024} KB | {rate:,.0f} | {share} | {submit} | {fault} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows = run(args.records, args.repeat, not args.no_postgres and postgres_available())
    text = report(rows, args.records, args.repeat)
    print(text)
    record("bench_writer", "Writer throughput (issue 2)", text)


if __name__ == "__main__":
    main()
