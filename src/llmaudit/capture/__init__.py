"""The capture stage: what runs on the caller's side of an LLM call and hands a raw capture to the writer.

Modules: `transport` (the transport core every HTTP client's transport is built on), `branches`
(binding the core to an httpx branch, and checking what a transport wraps), `streams` (teeing a
streamed response body as the caller reads it), `raw` (packing the request and headers into
`record.raw`'s `RawCapture`: the exchange as captured, not yet parsed), `context` (the ContextVar of the
current audit context), `session` (`session()`, `propagate()` and their checks), `decorator`
(`@audited` for non-HTTP calls) and `decorated` (one audited call as captured), `instrument` (patching
the SDKs' clients to use the transports), `coverage` (counting requests to hosts no provider route
matches).

Runs on the caller's hot path: it must not parse bodies, do I/O, or raise into the caller's call
(except strict=True's AuditError); parsing a capture into a record belongs to the record stage, on the
writer thread. Internal: the public names are re-exported by `llmaudit` and `llmaudit.transports`. This
file holds no logic and re-exports nothing.
"""
