"""The integrity stage: the tamper-evident hash chain (sealing records, verifying a log, erasure
tombstones and markers, writers' heads and the chain registry); later checkpoints and proofs.

`chain` seals on the writer thread and verifies on the read side. It must not do I/O (storage hands it
records and heads), run on the caller's hot path, or import the stages above it (capture, pipeline,
read, the edges): it stands on the record stage only. Internal: the public names are re-exported by
`llmaudit`. This file holds no logic and re-exports nothing.
"""
