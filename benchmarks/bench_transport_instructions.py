"""Instructions per call of the real openai SDK over httpx2.MockTransport, without and with llmaudit,
counted by valgrind's callgrind: the same comparison as bench_transport.py, but repeatable to well
under 1% where the wall clock of this machine drifts by a factor of two within an hour.

    .venv/bin/python benchmarks/bench_transport_instructions.py [--storage sqlite|jsonl]

For each case (1 KB and 100 KB requests, streaming and not) it runs this file under callgrind with a
few and with more calls, without llmaudit and with AuditTransport, each run ending with
``auditor.flush()`` so that the writer thread's work (build, redaction, chain, storage) is counted,
and prints the difference per call: the cost of one more call, start-up and imports left out. It
counts every thread's instructions, not time: I/O waits (SQLite's fsync at a checkpoint) and the
GIL hand-overs between the caller and the writer are not in it. The objects left by start-up are
frozen out of garbage collection first (`gc.freeze`), else one full collection more or less in a run
moves the result by millions of instructions per call. Needs valgrind; takes a few minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import httpx2
from _results import record
from bench_transport import call, handler
from openai import OpenAI

import llmaudit

FEW, MORE = 10, 40


def run(variant: str, calls: int, size_kb: int, stream: bool, storage: str) -> None:
    """The run under valgrind: a warm-up, then *calls* calls and a flush."""
    directory = tempfile.mkdtemp(prefix="llmaudit-bench-")
    url = f"sqlite:///{directory}/a.db" if storage == "sqlite" else f"jsonl://{directory}/log"
    # The writer wakes on a timer too: under valgrind's slowness it would cut the calls into batches
    # by wall-clock time. With a long interval each run writes one batch, at its flush, as a block of
    # bench_transport.py does.
    auditor = llmaudit.Auditor(url, spool_dir=f"{directory}/spool", flush_interval_s=3600)
    transport: httpx2.BaseTransport = httpx2.MockTransport(handler)
    if variant == "llmaudit":
        transport = llmaudit.transports.httpx2.AuditTransport(transport, auditor=auditor)
    client = OpenAI(api_key="sk-bench-FAKE", max_retries=0, http_client=httpx2.Client(transport=transport))
    content = "x" * (size_kb * 1024 - 200)
    for _ in range(3):
        call(client, content, stream)
    auditor.flush(60)
    # Start-up leaves ~10^6 objects behind; a full collection walks them all (hundreds of millions of
    # instructions), and whether one falls inside the run of more calls or not would swamp the
    # difference. Frozen, they are left out of every collection; the calls' own garbage still counts.
    gc.collect()
    gc.freeze()
    for _ in range(calls):
        call(client, content, stream)
    auditor.flush(60)
    auditor.close()


def count(variant: str, calls: int, size_kb: int, stream: bool, storage: str) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
    command += ["--run", variant, str(calls), str(size_kb), "stream" if stream else "plain", storage]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict and set layouts in every run
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode or match is None:
        raise SystemExit(f"valgrind run failed:\n{result.stderr[-3000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--storage", choices=["sqlite", "jsonl"], default="sqlite")
    parser.add_argument("--run", nargs=5, help=argparse.SUPPRESS)  # the run under valgrind
    args = parser.parse_args()
    if args.run is not None:
        variant, calls, size_kb, mode, storage = args.run
        run(variant, int(calls), int(size_kb), mode == "stream", storage)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt install valgrind)")
    cases = [(size_kb, stream) for size_kb in (1, 100) for stream in (False, True)]
    jobs = [
        (variant, calls, size_kb, stream)
        for size_kb, stream in cases
        for variant in ("baseline", "llmaudit")
        for calls in (FEW, MORE)
    ]
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: count(*job, args.storage), jobs), strict=True))
    lines = [
        f"Instructions per call (callgrind, every thread), openai SDK on httpx2, {args.storage} store; "
        f"difference between runs of {FEW} and {MORE} calls, each ending with flush(). "
        f"Re-run: `.venv/bin/python benchmarks/bench_transport_instructions.py --storage {args.storage}`.",
        "",
        "| request | mode | baseline | with llmaudit | added | overhead |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for size_kb, stream in cases:
        per = {
            variant: (counts[variant, MORE, size_kb, stream] - counts[variant, FEW, size_kb, stream])
            / (MORE - FEW)
            for variant in ("baseline", "llmaudit")
        }
        added = per["llmaudit"] - per["baseline"]
        lines.append(
            f"| {size_kb} KB | {'stream' if stream else 'non-stream'} | {per['baseline']:,.0f} | "
            f"{per['llmaudit']:,.0f} | {added:,.0f} | {added / per['baseline']:+.1%} |"
        )
    text = "\n".join(lines)
    print(text)
    record(f"bench_transport_instructions_{args.storage}", f"Instructions per call ({args.storage})", text)


if __name__ == "__main__":
    main()
