"""The redaction stage: the `Redactor` processor that removes secrets and bulk from a record before anything
is written.

Modules: `paths` (parsing and compiling the JSON paths of `Rule`), `redactor` (the rules, large values and
the detectors applied to every text field of a record), `detectors` (the catalogue of token formats,
adapted from gitleaks, and the text folding it matches on).

Runs on the writer thread, never on the caller's hot path; it must not do I/O, must never return an
unredacted value, and must not import the stages above it (capture, pipeline, read, the edges).
Internal: `Redactor` and `Rule` are re-exported by `llmaudit`. This file holds no logic and re-exports
nothing.
"""
