"""Several auditors side by side, and one storage that writes to two backends.

Auditors are independent pipelines: here one transport records to a team's PostgreSQL-or-SQLite store
while another records to JSONL files; a small `Storage` fans one auditor's batches out to both a
SQLite database and JSONL files, registered under its own URL scheme.

    python examples/multi_sink.py
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx2
from _fake_openai import handler
from openai import OpenAI

import llmaudit
from llmaudit import AuditRecord, Query, Storage

root = Path(tempfile.mkdtemp())


class FanOut:
    """Writes every batch to each storage (idempotent on id everywhere); reads from the first."""

    def __init__(self, *storages: Storage) -> None:
        self.storages = storages
        self.url = "fanout://" + "+".join(s.url for s in storages)

    def write(self, records: Sequence[AuditRecord]) -> None:
        for storage in self.storages:
            storage.write(records)

    def read(self, query: Query = Query(), *, on_problem: object = None) -> Iterator[AuditRecord]:
        return self.storages[0].read(query)

    def close(self) -> None:
        for storage in self.storages:
            storage.close()


llmaudit.register_storage(
    "fanout",
    lambda url: FanOut(
        llmaudit.open_storage(f"sqlite:///{root / 'both.db'}"),
        llmaudit.open_storage(f"jsonl://{root / 'both'}"),
    ),
)

team = llmaudit.Auditor(f"sqlite:///{root / 'team.db'}")
files = llmaudit.Auditor(f"jsonl://{root / 'files'}")
both = llmaudit.Auditor("fanout://")


def client(auditor: llmaudit.Auditor) -> OpenAI:
    transport = llmaudit.AuditTransport(httpx2.MockTransport(handler), auditor=auditor)
    return OpenAI(api_key="sk-example-FAKE", http_client=httpx2.Client(transport=transport))


for auditor, name in [(team, "team"), (files, "files"), (both, "both")]:
    client(auditor).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": name}])
    auditor.close()

for url in (
    f"sqlite:///{root / 'team.db'}",
    f"jsonl://{root / 'files'}",
    f"sqlite:///{root / 'both.db'}",
    f"jsonl://{root / 'both'}",
):
    with llmaudit.open(url) as log:
        print(f"{url.split('/')[-1]:>10}: {sum(1 for _ in log.records())} record(s)")
