"""The hot-path cost of @audited and of entering a session, in nanoseconds per call.

Measures, interleaved in one run (so machine noise hits every variant alike), the per-call time of:
a bare empty function; the same function under @audited (its record is queued for the writer thread,
whose work is not on the caller's path and is excluded here: the writer runs at a long interval and
the queue is drained between rounds); entering and leaving `llmaudit.session`. Reports the median of
--rounds rounds of --calls calls each, and the added cost against the bare function.

    .venv/bin/python benchmarks/bench_decorator.py [--calls 2000] [--rounds 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

from _results import record

import llmaudit


def per_call_ns(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # 2,000 calls per round: about what queues up between two writer wake-ups in a busy process
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    auditor = llmaudit.Auditor(
        f"memory://{uuid.uuid4().hex}",
        spool_dir=tempfile.mkdtemp(),
        flush_interval_s=3600,
        queue_size=args.calls * 4,
        batch_size=args.calls * 4,
    )

    def bare() -> None:
        return None

    audited = llmaudit.audited(auditor=auditor)(bare)

    def in_session() -> None:
        with llmaudit.session("bench-session"):
            pass

    variants = {"bare function": bare, "@audited function": audited, "enter+exit session()": in_session}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            samples[name].append(per_call_ns(fn, args.calls))
        auditor.flush(60)  # drain between rounds, outside the timed region
    auditor.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["bare function"]
    lines = [
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; median of "
        f"{args.rounds} rounds x {args.calls} calls, variants interleaved. Re-run: "
        "`.venv/bin/python benchmarks/bench_decorator.py`.",
        "",
        "| variant | ns per call | added vs bare function |",
        "|---|---:|---:|",
    ]
    for name, value in medians.items():
        added = "-" if name == "bare function" else f"{value - base:,.0f} ns"
        lines.append(f"| {name} | {value:,.0f} | {added} |")
    text = "\n".join(lines)
    print(text)
    record("bench_decorator", "Decorator and session cost on the hot path (issue 4)", text)


if __name__ == "__main__":
    main()
