"""The read stage: opening a log to list, summarise, verify, export and maintain it.

Modules: `reader` (`Reader` and `llmaudit.open`: queries, verification, forget and prune), `maintenance`
(the work of forget and prune, the spool's copies included), `summary` (per-session summaries and
grouped statistics), `export` (copying records to another store or to JSONL and CSV files), `parquet`
(the Parquet export, loaded only when pyarrow is asked for).

Runs in the reading process, never on a caller's LLM call; it must not change a record it does not
mean to (only forget and prune rewrite, through the chain's erasure markers) and must not import the
capture stage. Internal: `Reader` and `open` are re-exported by `llmaudit`. This file holds no logic and
re-exports nothing.
"""
