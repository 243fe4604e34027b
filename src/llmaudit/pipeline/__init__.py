"""The pipeline stage: from a submitted capture to a record stored (or spilled), off the caller's thread.

Modules: `auditor` (`Auditor`, ``configure()`` and the process-wide default), `settings` (the keywords,
their ``LLMAUDIT_*`` twins and the checks), `limits` (the defaults and tuning constants), `queue` (the
bounded batching queue), `pipeline` (a capture becomes a sealed record: build, processors, chain),
`sink` (write, retry, spill to the spool and replay), `writer` (`Writer`: the queue, the pipeline and
the sink run by a thread of this process), `process_runner` (the same pipeline and sink run by a child
process), `spool` (the local files records wait in), `signals` (SIGTERM and the exit flush).

Never raises into the caller's LLM call (strict mode's `AuditError` aside) and must not import the
capture, read, cli or web stages. Internal: the public names are re-exported by `llmaudit`. This file
holds no logic and re-exports nothing.
"""
