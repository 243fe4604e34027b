"""Records -> OpenTelemetry GenAI spans: the mapping's cost per record, and OTLP/HTTP throughput.

Builds --records chat-completion records (request and response payloads as the writer stores them),
then times, median of --repeat runs:
  * `to_span` (the pure mapping), without and with the opt-in message content, in µs per record;
  * the SDK span and the OTLP protobuf encoding on top (what the sink does before sending);
  * `llmaudit.otel.export` from a memory store into an OTLP/HTTP receiver on 127.0.0.1 that reads
    and acknowledges each request (no decoding), in records/s, batches of 500.

    .venv/bin/python benchmarks/bench_otel.py [--records 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _results import record
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

import llmaudit
from llmaudit.otel import LATEST_SEMCONV, to_span
from llmaudit.otel import _sdk as sdk
from llmaudit.record.model import AuditRecord
from llmaudit.storage.memory import MemoryStorage

RERUN = "Re-run: `.venv/bin/python benchmarks/bench_otel.py`."


def make(n: int) -> list[AuditRecord]:
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    return [
        AuditRecord(
            created_at=start + timedelta(seconds=i),
            session_key=f"session-{i % 500}",
            user=f"user-{i % 50}",
            client="support-bot",
            provider="openai",
            operation="chat.completions",
            model="gpt-4o-mini-2024-07-18",
            method="POST",
            url="https://api.openai.com/v1/chat/completions",
            request={
                "model": "gpt-4o-mini",
                "temperature": 0.2,
                "max_tokens": 256,
                "messages": [
                    {"role": "system", "content": "You answer support questions briefly."},
                    {"role": "user", "content": f"Where is my order A-{i}? It was due yesterday."},
                ],
            },
            response={
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": "It ships today; here is the tracking link.",
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 31, "completion_tokens": 11, "total_tokens": 42},
            },
            status_code=200,
            duration_ms=412.5,
            input_tokens=31,
            output_tokens=11,
            total_tokens=42,
            cost_usd=0.0000113,
            source="transport",
            writer_id="w",
            seq=i + 1,
            hash=f"v2:{i:064x}",
        )
        for i in range(n)
    ]


class _Ack(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def median_s(run: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    records, n = make(args.records), args.records
    resource, scope = sdk.resource(), sdk.scope(LATEST_SEMCONV)

    mapping = median_s(lambda: [to_span(r) for r in records], args.repeat)
    content = median_s(lambda: [to_span(r, content=True) for r in records], args.repeat)
    encoded = median_s(
        lambda: encode_spans([sdk.readable_span(to_span(r), resource, scope) for r in records]), args.repeat
    )

    name = uuid.uuid4().hex
    MemoryStorage(name).write(records)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"otlp://127.0.0.1:{server.server_address[1]}"
    with llmaudit.open(f"memory://{name}") as reader:
        sent = median_s(lambda: llmaudit.otel.export(reader, url), args.repeat)
    server.shutdown()
    server.server_close()

    rows = [
        ("`to_span` (attributes, ids, times)", f"{mapping / n * 1e6:.1f} µs", "-"),
        ("`to_span` with message content", f"{content / n * 1e6:.1f} µs", "-"),
        ("`to_span` + SDK span + OTLP protobuf encoding", f"{encoded / n * 1e6:.1f} µs", "-"),
        ("`otel.export` memory store -> OTLP/HTTP receiver", f"{sent / n * 1e6:.1f} µs", f"{n / sent:,.0f}"),
    ]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            f"Measured {when} on {platform.machine()}, {os.cpu_count()} cores (load average "
            f"{os.getloadavg()[0]:.1f}: other work shared them), Python {platform.python_version()}; "
            f"{n} chat-completion records, median of {args.repeat} runs. {RERUN}",
            "",
            "| step | per record | records/s |",
            "|---|---:|---:|",
            *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        ]
    )
    print(text)
    record("bench_otel", "Records as OpenTelemetry GenAI spans (issue 21)", text)


if __name__ == "__main__":
    main()
