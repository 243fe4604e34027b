"""Per-record cost of the default redaction and of the hash chain, on the writer thread.

For 1 KB and 20 KB chat-completion-shaped records (realistic prose, one e-mail address in the prompt):
  * redaction with the default `Redactor()` (all detectors, 64 KiB limit, no path rules);
  * sealing into the chain (canonical JSON, SHA-256 of each payload and of the record), unkeyed and
    keyed (HMAC-SHA256);
  * verification of a sealed log (records/s).
Median of --repeat runs of --records records each. Writer throughput with all of it on is measured by
bench_writer.py (the Auditor applies both by default).

    .venv/bin/python benchmarks/bench_redact_chain.py [--records 2000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from _results import record
from bench_writer import make_records

from llmaudit import Redactor
from llmaudit.integrity.chain import Chain, ChainState
from llmaudit.integrity.verify import verify_chain
from llmaudit.record.codec import encode_record
from llmaudit.record.model import AuditRecord


def _per_record(fn: object, records: list[AuditRecord], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(records)  # type: ignore[operator]
        samples.append((time.perf_counter() - start) / len(records) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    redactor = Redactor()
    rows = []
    for size in (1024, 20 * 1024):
        records = make_records(args.records, size)
        actual = len(encode_record(records[0]))
        redact = _per_record(lambda rs: [redactor(r) for r in rs], records, args.repeat)
        seal = _per_record(lambda rs: Chain().seal(rs), records, args.repeat)
        keyed = _per_record(lambda rs: Chain(b"bench-key").seal(rs), records, args.repeat)
        sealed = Chain(writer_id="w").seal(records)
        head = {"w": ChainState(sealed[-1].seq or 0, sealed[-1].hash or "")}
        verify = _per_record(lambda rs, head=head: verify_chain(rs, head), sealed, args.repeat)
        rows.append((size // 1024, actual, redact, seal, keyed, verify))
    lines = [
        f"Python {platform.python_version()} on {platform.machine()}; {args.records} records per run, "
        f"median of {args.repeat} runs. Re-run: `.venv/bin/python benchmarks/bench_redact_chain.py`.",
        "",
        "| record | bytes | redaction (default rules) | chain seal | chain seal, HMAC | verify |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kb, actual, redact, seal, keyed, verify in rows:
        lines.append(
            f"| {kb} KB | {actual:,} | {redact:,.1f} µs | {seal:,.1f} µs | {keyed:,.1f} µs | "
            f"{1e6 / verify:,.0f} records/s |"
        )
    text = "\n".join(lines)
    print(text)
    record("bench_redact_chain", "Redaction and hash chain per record (issue 5)", text)


if __name__ == "__main__":
    main()
