"""Test doubles shared by the unit tests: storages that fail, block or count on demand."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from llmaudit import AuditRecord, StorageError, StorageUnavailableError
from llmaudit.storage import Query

# private: the backend classes, built directly to inspect or tamper with their tables and files
from llmaudit.storage.memory import MemoryStorage


class ControlledStorage(MemoryStorage):
    """A memory store that can be taken down, made to block, or told to refuse some records."""

    def __init__(self) -> None:
        super().__init__()
        self.url = "controlled://test"
        self.down = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a write has begun (and waits at the gate if it is closed)
        self.refuse: Callable[[AuditRecord], bool] = lambda record: False
        self.batches: list[int] = []
        self.writer_threads: set[str] = set()

    def write(self, records: Sequence[AuditRecord]) -> None:
        self.entered.set()
        self.gate.wait()
        self.writer_threads.add(threading.current_thread().name)
        if self.down:
            raise StorageUnavailableError("controlled://test: connection refused")
        if any(self.refuse(r) for r in records):
            raise StorageError("controlled://test: value too long for column")
        self.batches.append(len(records))
        super().write(records)

    def ids(self) -> list[str]:
        return [r.id for r in self.read(Query())]

    def all(self) -> Iterator[AuditRecord]:
        return self.read(Query())


def tag_process(record: AuditRecord) -> AuditRecord:
    """A before_write hook importable by the writer process: tags where the record was built."""
    import dataclasses
    import os

    return dataclasses.replace(record, metadata={**record.metadata, "built_in_pid": os.getpid()})


class WatchedLock:
    """A lock that tells when its second acquirer has arrived (``second_waiting``), before it
    blocks: a test waits for that instead of sleeping and hoping the other thread got there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = 0
        self.second_waiting = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self._arrived += 1
        if self._arrived == 2:
            self.second_waiting.set()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
