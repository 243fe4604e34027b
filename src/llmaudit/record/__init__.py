"""The record stage: `AuditRecord`, building one from a capture, its canonical JSON codec, body decoding,
conversion of arbitrary Python values to JSON, and cost.

Modules: `model` (the record and its limits), `frozen` (the fast frozen-dataclass constructor), `codec`
(canonical JSON encoding and decoding of records), `bodies` (decoding HTTP bodies: content encodings,
JSON, SSE and NDJSON framing), `jsonable` (arbitrary Python values to JSON, for decorated functions),
`build` (a `RawCapture` becomes an `AuditRecord`), `cost` (the price table).

Runs on the writer side only: nothing here may run on the caller's hot path, do I/O, or import the stages
above it (capture, pipeline, read, the edges); `model`, `frozen` and `codec` import nothing of llmaudit's
but each other. Known exceptions left for issue 18's import-direction step: `build` imports `capture.raw`,
`capture.context` and `capture.headers`, and `jsonable` imports `capture.headers`. Internal: the public
names are re-exported by `llmaudit`. This file holds no logic and re-exports nothing.
"""
