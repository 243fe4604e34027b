"""The redaction stage: the `Redactor` processor that removes secrets and bulk from a record before anything
is written.

Modules: `paths` (parsing and compiling the JSON paths of `Rule`), `redactor` (the `Redactor`: which
fields of a record, the fast path, notes and failures), `values` (what happens to one value: path rules,
large values, detectors on strings and keys), `finders` (`DETECTORS` and how each one finds its matches),
`detectors` (the catalogue of token formats, adapted from gitleaks, and its keyword pre-filter),
`folding` (the text folding the detectors also match on).

Runs on the writer thread, never on the caller's hot path; it must not do I/O, must never return an
unredacted value, and must not import the stages above it (capture, pipeline, read, the edges).
Internal: `Redactor` and `Rule` are re-exported by `llmaudit`. This file holds no logic and re-exports
nothing.
"""
