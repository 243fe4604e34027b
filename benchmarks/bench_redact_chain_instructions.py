"""Instructions per record of redaction, chain sealing and verification, counted by callgrind: the
deterministic twin of bench_redact_chain.py, for comparing two versions of the code on a busy machine.

    PYTHONHASHSEED=0 PYTHONPATH=src .venv/bin/python benchmarks/bench_redact_chain_instructions.py

Each figure runs this file twice under callgrind (500, then 2,500 pre-built records) and prints the
difference per record, without start-up or building the records. Needs valgrind.
"""

from __future__ import annotations

import re
import subprocess
import sys

from bench_writer import make_records

from llmaudit import Redactor
from llmaudit.integrity.chain import Chain, ChainState
from llmaudit.integrity.verify import verify_chain

RECORDS = 2500
WORK = ("redact", "seal", "verify")


def run(count: int, size: int, what: str) -> None:
    records = make_records(RECORDS, size)[:count]
    if what == "redact":
        redactor = Redactor()
        for record in records:
            redactor(record)
    elif what == "seal":
        Chain().seal(records)
    else:
        sealed = Chain(writer_id="w").seal(records)
        verify_chain(sealed, {"w": ChainState(sealed[-1].seq or 0, sealed[-1].hash or "")})


def count_instructions(count: int, size: int, what: str) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += [__file__, "--run", str(count), str(size), what]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in callgrind's output:\n{result.stderr}")
    return int(found[1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--run":
        run(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    for size in (1024, 20 * 1024):
        for what in WORK:
            low, high = count_instructions(500, size, what), count_instructions(RECORDS, size, what)
            print(f"{size // 1024} KB {what}: {(high - low) / (RECORDS - 500):,.0f} instructions per record")


if __name__ == "__main__":
    main()
