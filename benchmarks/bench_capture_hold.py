"""What holding a capture costs the caller: the real openai SDK over httpx2.MockTransport (no
network), 1 KB non-stream calls, four clients interleaved round by round:

  * baseline — no llmaudit
  * dropped  — AuditTransport whose auditor drops each capture as it is submitted (the transport's
               own work on the caller's thread, nothing else)
  * held     — the same, but each capture is kept until the end of its block of calls, as the
               queue keeps it until the writer runs (no writer work)
  * recorded — AuditTransport with the real writer and the embedded SQLite store, each block ending
               with flush() (as bench_transport.py)

held minus dropped is what keeping a capture's objects alive costs (memory the next call cannot
reuse, freed cold later, walked by the garbage collector meanwhile); recorded minus held is the
writer's share.

    .venv/bin/python benchmarks/bench_capture_hold.py [--calls 200] [--rounds 11]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx2
from _results import record
from bench_transport import call, handler
from openai import OpenAI

import llmaudit


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="llmaudit-bench-")
    held: list[Any] = []

    def auditor(name: str, submit: Callable[[Any], None] | None) -> llmaudit.Auditor:
        made = llmaudit.Auditor(f"sqlite:///{tmp}/{name}.db", spool_dir=f"{tmp}/spool-{name}")
        if submit is not None:
            made._writer.submit = submit  # type: ignore[method-assign]
        return made

    recorded = auditor("recorded", None)
    transport = llmaudit.transports.httpx2.AuditTransport
    transports: dict[str, Any] = {
        "baseline": httpx2.MockTransport(handler),
        "dropped": transport(httpx2.MockTransport(handler), auditor=auditor("dropped", lambda _: None)),
        "held": transport(httpx2.MockTransport(handler), auditor=auditor("held", held.append)),
        "recorded": transport(httpx2.MockTransport(handler), auditor=recorded),
    }
    after: dict[str, Callable[[], object]] = {
        "baseline": lambda: None,
        "dropped": lambda: None,
        "held": held.clear,
        "recorded": lambda: recorded.flush(60),
    }
    clients = {
        name: OpenAI(api_key="sk-bench-FAKE", max_retries=0, http_client=httpx2.Client(transport=t))
        for name, t in transports.items()
    }
    content = "x" * (1024 - 200)

    def block(name: str, calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            call(clients[name], content, False)
        after[name]()
        return (time.perf_counter() - start) / calls * 1e6

    for name in clients:  # warm-up
        block(name, 20)
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(args.rounds):
        for name in clients:
            samples[name].append(block(name, args.calls))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    added = {
        name: statistics.median(v - b for v, b in zip(values, samples["baseline"], strict=True))
        for name, values in samples.items()
    }
    lines = [
        f"openai SDK over httpx2.MockTransport, 1 KB non-stream, {args.calls} calls per block, median "
        f"of {args.rounds} interleaved rounds. Re-run: `.venv/bin/python benchmarks/bench_capture_hold.py`.",
        "",
        "| client | µs/call | added µs/call (median of the rounds' differences) |",
        "|---|---:|---:|",
    ]
    lines.extend(f"| {name} | {medians[name]:,.0f} | {added[name]:+.1f} |" for name in clients)
    text = "\n".join(lines)
    print(text)
    record("bench_capture_hold", "What holding a capture costs the caller (issue 3)", text)
    recorded.close()


if __name__ == "__main__":
    main()
