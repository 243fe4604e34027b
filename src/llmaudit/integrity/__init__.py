"""The integrity stage: the tamper-evident hash chain, signed checkpoints and proofs.

`chain` seals records on the writer thread (hashing, the chain key, erasure changes); `erasure` holds
what an erased field becomes (tombstones and markers) and how a field enters the hash; `heads` the
writers' heads, prune checkpoints and the registry backends keep; `verify` checks a log on the read
side, and `report` is what it found. `merkle` is the RFC 9162 tree over a writer's chain hashes;
`checkpoints` signs its heads (`CheckpointEmitter`, what a writer holds) through `keys` (Ed25519, the
only module needing the ``signing`` extra); `witness` copies them outside the store; `signed`
verifies a log with the public key alone, and `proofs` makes and checks one record's inclusion proof
and the consistency of two checkpoints. None may run on the caller's hot path or import the stages
above them (capture, pipeline, read, the edges): they stand on the record stage only, and do no I/O
(storage hands them records, heads and checkpoints) except `witness`, which writes where it is told.
Internal: the public names are re-exported by `llmaudit`. This file holds no logic and re-exports
nothing.
"""
