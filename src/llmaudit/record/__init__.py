"""The record stage: `AuditRecord`, building one from a capture, its canonical JSON codec, body decoding,
conversion of arbitrary Python values to JSON, and cost.

Modules: `model` (the record and its limits), `frozen` (the fast frozen-dataclass constructor), `codec`
(canonical JSON encoding and decoding of records), `bodies` (decoding HTTP bodies: content encodings,
JSON, SSE and NDJSON framing), `headers` (the headers a record keeps or never stores, and credential
names), `jsonable` (arbitrary Python values to JSON, for decorated functions), `raw` (`RawCapture` and
`AuditContext`: the plain data the capture stage hands over), `build` (a `RawCapture` becomes an
`AuditRecord`), `masking` (the secrets whose place is known, removed while a record is built), `cost`
(the price table).

Runs on the writer side only, except `raw`'s plain data, which the hot path fills in: nothing here may
parse or do I/O on the caller's hot path, or import the stages above it (capture, pipeline, read, the
edges); `model`, `frozen` and `codec` import nothing of llmaudit's but each other. The providers stand
on `bodies`, `frozen` and `codec`; `build` stands on the providers (tests/test_layers.py draws the
tiers); `urls` takes credentials out of URLs, for the record and for storage's messages. Internal:
the public names are re-exported by `llmaudit`. This file holds no logic and re-exports nothing.
"""
