"""What signed checkpoints cost (issue 22): on the writer, per sealed record, amortised; on the read side,
verifying a log with the public key and proving one record.

  * the Merkle tree alone (`MerkleTree.add_chain_hash`: a leaf hash and, amortised, one node hash);
  * `CheckpointEmitter.add` with the defaults (a signed checkpoint every 1000 records, Ed25519),
    which is what a writer will call per sealed record; and with a checkpoint every 100 records;
  * `verify_signed` over a log (records/s, the chain unkeyed so every record's content is checked);
  * `prove` for one record of that log (ms), and `verify_proof` (ms);
  * the real writer (an `Auditor` over a memory store, batches of 100), per record end to end,
    with a signing key (a checkpoint every 1000 records, stored and copied to a file witness) and
    without, the two runs interleaved so that the load hits both alike (--writer-records).
Median of --repeat runs. The issue's budget is 2 µs per record on the writer. Wall-clock figures
move with the machine's load, so the writer's cost is also counted in instructions per record by
valgrind's callgrind (the emitter with the defaults over --counted records, minus the same run with
none), which does not; that needs valgrind (skip it with --no-instructions).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_checkpoints.py [--records 200000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import record
from bench_writer import make_records

from llmaudit.integrity.chain import Chain
from llmaudit.integrity.checkpoints import CheckpointEmitter
from llmaudit.integrity.keys import SigningKey
from llmaudit.integrity.merkle import MerkleTree
from llmaudit.integrity.proofs import prove, verify_proof
from llmaudit.integrity.signed import verify_signed
from llmaudit.pipeline.auditor import Auditor
from llmaudit.pipeline.checkpointing import Checkpointing
from llmaudit.pipeline.spool import Spool
from llmaudit.pipeline.writer import Writer
from llmaudit.record.model import AuditRecord
from llmaudit.storage.memory import MemoryStorage


def _median_us(fn: object, n: int, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


LEAF = b"\x00v2:" + b"a" * 64  # what a leaf hash hashes


def _counted_run(n: int, emit: str) -> None:
    """The run under callgrind: *n* chain hashes, given to the emitter (defaults) if *emit* is
    "emitter", or *n* SHA-256 of a leaf if it is "sha256" (the unit the cost is told in)."""
    key = SigningKey.generate()
    hashes = [f"v2:{i:064x}" for i in range(n)]
    e = CheckpointEmitter("w", key, chain_keyed=False)
    e.emit()  # the first signature (OpenSSL's one-time set-up) in every run
    if emit == "emitter":
        for h in hashes:
            e.add(h)
    elif emit == "sha256":
        for _ in hashes:
            hashlib.sha256(LEAF).digest()
    e.close()


def _instructions(n: int, emit: str) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
    result = subprocess.run(
        [*command, "--count-run", str(n), "--emit", emit],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode or found is None:
        raise SystemExit(f"valgrind run failed:\n{result.stderr[-3000:]}")
    return int(found.group(1))


def _through_writer(records: list[AuditRecord], key_file: Path | None, tmp: Path, *, witness: bool) -> float:
    """µs per record from the first submit until everything is stored (the writer's own cost)."""
    options = {"signing_key": str(key_file)} if key_file else {}
    if witness:
        options["witness"] = str(tmp / "witness")
    store = MemoryStorage()
    with Auditor(store, spool_dir=str(tmp / "spool"), queue_size=len(records) + 1, **options) as auditor:  # type: ignore[arg-type]
        auditor.submit(AuditRecord(session_key="warm-up"))
        auditor.flush(30)
        start = time.perf_counter()
        for r in records:
            auditor.submit(r)
        if not auditor.flush(300):
            raise RuntimeError("flush timed out")
        elapsed = time.perf_counter() - start
    if len(store) != len(records) + 1 or (key_file is not None and not store.read_checkpoints()):
        raise RuntimeError("the writer lost records or made no checkpoint")
    return elapsed / len(records) * 1e6


def sealing_cpu_us(n: int, signer: SigningKey | None, tmp: Path) -> float:
    """CPU µs per record of the writer's own path (build, seal, checkpoint, store into memory),
    batches of 500 on this thread: CPU time, which the other processes' load moves far less than
    the wall clock."""
    checkpointing = Checkpointing(signer) if signer is not None else None
    writer = Writer(MemoryStorage(), Spool(tmp / "spool"), checkpointing=checkpointing)
    records = make_records(n, 256)
    start = time.process_time()
    for i in range(0, n, 500):
        writer._store_now(records[i : i + 500], durable=False)
    writer.close_checkpoints()
    return (time.process_time() - start) / n * 1e6


def writer_cost(n: int, repeat: int) -> tuple[float, float, float]:
    """Median µs per record through the writer without signing, with it, and with it and a file
    witness (an fsync per checkpoint), runs interleaved."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        key_file = tmp / "signing-key.pem"
        key_file.write_bytes(SigningKey.generate().pem())
        off, on, witnessed = [], [], []
        for _ in range(repeat):
            off.append(_through_writer(make_records(n, 256), None, tmp, witness=False))
            on.append(_through_writer(make_records(n, 256), key_file, tmp, witness=False))
            witnessed.append(_through_writer(make_records(n, 256), key_file, tmp, witness=True))
    return statistics.median(off), statistics.median(on), statistics.median(witnessed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--log", type=int, default=20_000, help="records in the log verified and proved")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--counted", type=int, default=20_000, help="records counted under callgrind")
    parser.add_argument("--no-instructions", action="store_true")
    parser.add_argument("--writer-records", type=int, default=20_000, help="records per writer run")
    parser.add_argument("--count-run", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--emit", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_run is not None:
        _counted_run(args.count_run, args.emit)
        return
    per_record = per_sha = None
    if not args.no_instructions:
        base = _instructions(args.counted, "none")
        per_record = (_instructions(args.counted, "emitter") - base) / args.counted
        per_sha = (_instructions(args.counted, "sha256") - base) / args.counted
    key = SigningKey.generate()
    hashes = [f"v2:{i:064x}" for i in range(args.records)]

    def tree_only() -> None:
        tree = MerkleTree()
        for h in hashes:
            tree.add_chain_hash(h)

    def emitter(every: int) -> object:
        def run() -> None:
            e = CheckpointEmitter("w", key, chain_keyed=False, every_records=every)
            for h in hashes:
                e.add(h)
            e.close()

        return run

    def sha_only() -> None:
        for _ in hashes:
            hashlib.sha256(LEAF).digest()

    sha_us = _median_us(sha_only, args.records, args.repeat)
    tree_us = _median_us(tree_only, args.records, args.repeat)
    default_us = _median_us(emitter(1000), args.records, args.repeat)
    dense_us = _median_us(emitter(100), args.records, args.repeat)

    writer_off, writer_on, writer_witnessed = writer_cost(args.writer_records, args.repeat)
    with tempfile.TemporaryDirectory() as name:
        cpu_off, cpu_on = [], []
        for _ in range(args.repeat):
            cpu_off.append(sealing_cpu_us(args.writer_records, None, Path(name)))
            cpu_on.append(sealing_cpu_us(args.writer_records, key, Path(name)))
    seal_off, seal_on = statistics.median(cpu_off), statistics.median(cpu_on)
    sealed = Chain(None, writer_id="w").seal(make_records(args.log, 1024))
    checkpoints = []
    e = CheckpointEmitter("w", key, chain_keyed=False, publish=checkpoints.append)
    for r in sealed:
        e.add(r.hash or "")
    e.close()
    keys = {key.key_id: key.public}
    verify_s = statistics.median(
        _median_us(lambda: verify_signed(sealed, checkpoints, keys), 1, 1) / 1e6 for _ in range(3)
    )
    target = sealed[len(sealed) // 2].id
    prove_ms = _median_us(lambda: prove(target, sealed, checkpoints), 1, 5) / 1000
    proof = prove(target, sealed, checkpoints)
    check_ms = _median_us(lambda: verify_proof(proof, keys), 1, 20) / 1000
    assert verify_proof(proof, keys).ok

    text = "\n".join(
        [
            f"{args.records:,} records x {args.repeat} rounds, Python {platform.python_version()}, "
            f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}); median. Re-run: "
            "`PYTHONPATH=src .venv/bin/python benchmarks/bench_checkpoints.py`.",
            "",
            "| on the writer, per sealed record | µs | in SHA-256 calls of a leaf, timed alongside |",
            "|---|---:|---:|",
            f"| one `hashlib.sha256(leaf).digest()` (the unit) | {sha_us:.2f} | 1 |",
            f"| Merkle tree append (leaf + amortised node hashes) | {tree_us:.2f} | {tree_us / sha_us:.1f} |",
            f"| `CheckpointEmitter.add`, signed checkpoint every 1000 records (default) | {default_us:.2f} "
            f"| {default_us / sha_us:.1f} |",
            f"| `CheckpointEmitter.add`, signed checkpoint every 100 records | {dense_us:.2f} "
            f"| {dense_us / sha_us:.1f} |",
            *(
                [
                    f"| the default, counted by callgrind ({args.counted:,} records): "
                    f"{per_record:,.0f} instructions per record, one SHA-256 of a leaf {per_sha:,.0f} "
                    f"| | {per_record / (per_sha or 1):.1f} |"
                ]
                if per_record is not None
                else []
            ),
            "",
            f"The real writer (`Auditor` over a memory store, {args.writer_records:,} records of 256 B "
            f"per run, {args.repeat} interleaved runs each), per record from first submit to stored:",
            "",
            "| writer | µs per record | difference |",
            "|---|---:|---:|",
            f"| sealing path alone, CPU time (build, seal, store), no signing key | {seal_off:.2f} | |",
            f"| the same with a signing key (checkpoint every 1000 records) | {seal_on:.2f} "
            f"| {seal_on - seal_off:+.2f} µs ({(seal_on / seal_off - 1) * 100:+.1f} %) |",
            f"| no signing key | {writer_off:.2f} | |",
            f"| signing key, checkpoint every 1000 records, kept in the store | {writer_on:.2f} "
            f"| {writer_on - writer_off:+.2f} µs ({(writer_on / writer_off - 1) * 100:+.1f} %) |",
            f"| the same, plus a file witness (one fsync per checkpoint) | {writer_witnessed:.2f} "
            f"| {writer_witnessed - writer_off:+.2f} µs "
            f"({(writer_witnessed / writer_off - 1) * 100:+.1f} %) |",
            "",
            f"Read side, a log of {args.log:,} 1 KB records (unkeyed chain: each record's content rehashed): "
            f"`verify_signed` {args.log / verify_s:,.0f} records/s; `prove` of one record "
            f"{prove_ms:.0f} ms (it reads the writer's whole tree); `verify_proof` {check_ms:.2f} ms.",
        ]
    )
    print(text)
    record("bench_checkpoints", "Signed checkpoints per record (issue 22)", text)


if __name__ == "__main__":
    main()
