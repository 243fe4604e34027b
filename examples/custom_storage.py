"""A storage backend of your own, checked against llmaudit's storage contract.

`ShelveStorage` keeps each record's canonical JSON in a `shelve` file, keyed by id: about forty lines
implementing the `Storage` protocol (``url``, ``write``, ``read``, ``close``) and none of the optional
capabilities. It is registered under its own URL scheme, checked with
`llmaudit.testing.check_storage`, and then used by an auditor like any built-in backend.
docs/storage-backends.md explains the contract.

    python examples/custom_storage.py
"""

from __future__ import annotations

import itertools
import shelve
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import llmaudit
from llmaudit import AuditRecord, Query
from llmaudit.record.codec import decode_record, encode_record
from llmaudit.storage import ProblemHandler, select
from llmaudit.testing import check_storage


class ShelveStorage:
    """Records in a `shelve` file: ``shelve:///path/to/file``. Writes are idempotent on id."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"shelve://{self.path}"
        self._lock = threading.Lock()  # shelve is not thread-safe: the writer and a reader may meet
        self._shelf: shelve.Shelf[bytes] | None = shelve.open(str(self.path))  # noqa: SIM115 - held until close()

    @classmethod
    def from_url(cls, url: str) -> ShelveStorage:
        return cls(url.split("://", 1)[1])

    def write(self, records: Sequence[AuditRecord]) -> None:
        with self._lock:
            shelf = self._open()
            for record in records:
                if record.id not in shelf:  # the same id twice is one record
                    shelf[record.id] = encode_record(record)
            shelf.sync()  # the batch is durable before write returns

    def read(
        self, query: Query = Query(), *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        with self._lock:
            stored = [decode_record(data) for data in self._open().values()]
        return iter(select(stored, query))  # the reference semantics: filter, order, limit

    def close(self) -> None:
        with self._lock:
            if self._shelf is not None:
                self._shelf.close()
                self._shelf = None

    def _open(self) -> shelve.Shelf[bytes]:
        if self._shelf is None:
            raise ValueError(f"{self.url} is closed")
        return self._shelf


def main() -> None:
    root = Path(tempfile.mkdtemp())
    names = itertools.count()

    # 1. The contract: each rule runs on a fresh, empty store; `reopen` checks durability.
    check_storage(
        lambda: ShelveStorage(root / f"check-{next(names)}"), reopen=lambda store: ShelveStorage(store.path)
    )
    print("ShelveStorage passes the storage contract")

    # 2. Registered under a scheme, it is opened by URL like any backend.
    llmaudit.register_storage("shelve", ShelveStorage.from_url)
    url = f"shelve://{root / 'audit'}"
    with llmaudit.Auditor(url, mode="sync") as auditor:
        auditor.submit(AuditRecord(session_key="custom-1", client="support-bot", input_tokens=12))
    with llmaudit.open(url) as reader:
        records = list(reader.records(session="custom-1"))
        sealed = records[0].hash is not None  # the writer sealed it into its hash chain
        print(f"read back {len(records)} record(s) of session {records[0].session_key}, sealed: {sealed}")


if __name__ == "__main__":
    main()
