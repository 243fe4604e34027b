"""The integrity stage: the tamper-evident hash chain; later checkpoints and proofs.

`chain` seals records on the writer thread (hashing, the chain key, erasure changes); `erasure` holds
what an erased field becomes (tombstones and markers) and how a field enters the hash; `heads` the
writers' heads, prune checkpoints and the registry backends keep; `verify` checks a log on the read
side, and `report` is what it found. None may do I/O (storage hands them records and heads), run on
the caller's hot path, or import the stages above them (capture, pipeline, read, the edges): they
stand on the record stage only. Internal: the public names are re-exported by `llmaudit`. This file
holds no logic and re-exports nothing.
"""
