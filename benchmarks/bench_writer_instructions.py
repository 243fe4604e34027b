"""Instructions per record of the writer's work (redaction, hash chain, encoding, JSONL write),
counted by valgrind's callgrind: repeatable to well under 1% whatever else the machine is doing, so
two versions of the code can be compared where wall-clock figures swing by 20%.

    .venv/bin/python benchmarks/bench_writer_instructions.py [--size 1024] [--storage jsonl|sqlite]

It runs this file twice under callgrind, storing 500 and then 2,500 of the same pre-built records
through the writer (`Writer._store_now`, batches of 500), and prints the difference per record: the
cost of the writer's work alone, without start-up or building the records. Needs valgrind.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile

from bench_writer import make_records

from llmaudit import Auditor

RECORDS = 2500


def store(count: int, size: int, storage: str) -> None:
    records = make_records(RECORDS, size)
    directory = tempfile.mkdtemp()
    url = f"jsonl://{directory}/log" if storage == "jsonl" else f"sqlite:///{directory}/a.db"
    writer = Auditor(url, spool_dir=f"{directory}/spool", batch_size=500)._writer
    for start in range(0, count, 500):
        writer._store_now(records[start : start + 500], durable=False)


def count_instructions(count: int, size: int, storage: str) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += [__file__, "--run", str(count), "--size", str(size), "--storage", storage]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--storage", choices=["jsonl", "sqlite"], default="jsonl")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # the run under valgrind
    args = parser.parse_args()
    if args.run is not None:
        store(args.run, args.size, args.storage)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt install valgrind)")
    few, many = (count_instructions(n, args.size, args.storage) for n in (500, RECORDS))
    per_record = (many - few) / (RECORDS - 500)
    print(f"{args.storage}, {args.size} B records: {per_record:,.0f} instructions per record")


if __name__ == "__main__":
    main()
