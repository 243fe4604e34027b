"""Per-call cost of recording: the real openai SDK over httpx2.MockTransport (no network), with and
without llmaudit's AuditTransport, and with OpenTelemetry's httpx2 instrumentation for comparison.

Variants, interleaved round by round so machine noise hits them alike:
  * baseline  — OpenAI(http_client=httpx2.Client(transport=MockTransport(handler)))
  * llmaudit  — the same with AuditTransport(MockTransport) writing to an embedded SQLite store; the
                writer's background work is inside the timed region: each block of calls ends with
                auditor.flush(), so records are parsed and committed before the clock stops
  * process   — the same as llmaudit with writer="process": records are built and stored by a child
                process, off the caller's interpreter lock (flush() still waits for them)
  * otel      — SyncOpenTelemetryTransportHttpx2(MockTransport) with an SDK TracerProvider, a
                SimpleSpanProcessor and an InMemorySpanExporter
for 1 KB and 100 KB requests, streaming and not. Reports the median per-call time of each variant and
the overhead against the baseline of the same round.

    .venv/bin/python benchmarks/bench_transport.py [--calls 200] [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx2
from _results import record
from _wire import COMPLETION
from openai import OpenAI
from opentelemetry.instrumentation.httpx import SyncOpenTelemetryTransportHttpx2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmaudit


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


STREAM = [_chunk("Hello! ") for _ in range(20)] + [_chunk(None, "stop"), b"data: [DONE]\n\n"]


def handler(request: httpx2.Request) -> httpx2.Response:
    if b'"stream":true' in request.content.replace(b" ", b""):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=iter(STREAM))
    return httpx2.Response(200, headers={"content-type": "application/json"}, content=COMPLETION)


def make_clients(tmp: str) -> tuple[dict[str, OpenAI], list[llmaudit.Auditor]]:
    auditor = llmaudit.Auditor(f"sqlite:///{tmp}/bench.db", spool_dir=f"{tmp}/spool")
    jsonl = llmaudit.Auditor(f"jsonl://{tmp}/jsonl", spool_dir=f"{tmp}/spool-jsonl")
    process = llmaudit.Auditor(
        f"sqlite:///{tmp}/bench-process.db", spool_dir=f"{tmp}/spool-process", writer="process"
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    transports: dict[str, Any] = {
        "baseline": httpx2.MockTransport(handler),
        "llmaudit": llmaudit.transports.httpx2.AuditTransport(httpx2.MockTransport(handler), auditor=auditor),
        "jsonl": llmaudit.transports.httpx2.AuditTransport(httpx2.MockTransport(handler), auditor=jsonl),
        "process": llmaudit.transports.httpx2.AuditTransport(httpx2.MockTransport(handler), auditor=process),
        "otel": SyncOpenTelemetryTransportHttpx2(httpx2.MockTransport(handler), tracer_provider=provider),
    }
    clients = {
        name: OpenAI(api_key="sk-bench-FAKE", max_retries=0, http_client=httpx2.Client(transport=transport))
        for name, transport in transports.items()
    }
    return clients, [auditor, jsonl, process]


def call(client: OpenAI, content: str, stream: bool) -> None:
    messages: Any = [{"role": "user", "content": content}]
    if stream:
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
            pass
    else:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)


def block(client: OpenAI, content: str, stream: bool, calls: int, after: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call(client, content, stream)
    after()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    clients, auditors = make_clients(tempfile.mkdtemp(prefix="llmaudit-bench-"))

    def flush_all() -> None:
        for auditor in auditors:
            auditor.flush(60)

    rows = []
    for size_kb in (1, 100):
        content = "x" * (size_kb * 1024 - 200)
        for stream in (False, True):
            samples: dict[str, list[float]] = {name: [] for name in clients}
            overheads: dict[str, list[float]] = {"llmaudit": [], "jsonl": [], "process": [], "otel": []}
            for client in clients.values():  # warm-up
                block(client, content, stream, 5, flush_all)
            for _ in range(args.rounds):
                for name, client in clients.items():
                    samples[name].append(block(client, content, stream, args.calls, flush_all))
                for name in overheads:
                    overheads[name].append(samples[name][-1] / samples["baseline"][-1] - 1)
            rows.append(
                (
                    size_kb,
                    stream,
                    {n: statistics.median(v) for n, v in samples.items()},
                    {n: statistics.median(v) for n, v in overheads.items()},
                )
            )
    stats = [auditor.stats() for auditor in auditors]
    for auditor in auditors:
        auditor.close()
    lines = [
        f"openai {__import__('openai').__version__} on httpx2 {httpx2.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores; {args.calls} calls per block, median of "
        f"{args.rounds} interleaved rounds; llmaudit writes to the default embedded SQLite store (and, "
        "in a second variant, to JSONL files, and in a third, to SQLite through the writer process); "
        "each block ends with flush(), so the writer's work is "
        "inside the timed region. "
        "Re-run: `.venv/bin/python benchmarks/bench_transport.py`.",
        "",
        "| request | mode | baseline µs/call | llmaudit SQLite µs/call | overhead | llmaudit JSONL µs/call "
        '| overhead | SQLite, writer="process" µs/call | overhead | OpenTelemetry µs/call | overhead |',
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size_kb, stream, medians, over in rows:
        lines.append(
            f"| {size_kb} KB | {'stream' if stream else 'non-stream'} | {medians['baseline']:,.0f} | "
            f"{medians['llmaudit']:,.0f} | {over['llmaudit']:+.1%} | {medians['jsonl']:,.0f} | "
            f"{over['jsonl']:+.1%} | {medians['process']:,.0f} | {over['process']:+.1%} | "
            f"{medians['otel']:,.0f} | "
            f"{over['otel']:+.1%} |"
        )
    lines.append("")
    lines.append(
        "Records written by llmaudit during the run: "
        + ", ".join(f"{s.written} (failed: {s.failed})" for s in stats)
        + ' (SQLite, JSONL, SQLite with writer="process").'
    )
    text = "\n".join(lines)
    print(text)
    record("bench_transport", "Transport overhead per call (issue 3)", text)


if __name__ == "__main__":
    main()
