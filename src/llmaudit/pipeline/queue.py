"""The bounded batching queue between the caller's thread and the writer's runner.

The caller appends (`BatchQueue.put`: a length check, a ``deque.append`` and, once per batch, a
wake-up); the runner takes batches of at most ``batch_size`` (`BatchQueue.drain`), and a flush request
(`Marker`) travels behind the items it waits for. Builds nothing, stores nothing, does no I/O: what a
batch becomes is the callback's business.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BatchQueue", "Marker"]

T = TypeVar("T")


class Marker:
    """A flush request travelling through the queue behind the items it waits for."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class BatchQueue(Generic[T]):
    """Items and flush markers in order, and the event that wakes the runner."""

    __slots__ = ("batch_size", "items", "wake")

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.items: collections.deque[T | Marker] = collections.deque()
        self.wake = threading.Event()

    def mark(self) -> Marker:
        """Queue a flush request (and wake the runner); its ``done`` is set once it is answered."""
        marker = Marker()
        self.items.append(marker)
        return marker

    def depth(self) -> int:
        """How many items (markers aside) are queued."""
        return sum(1 for item in list(self.items) if not isinstance(item, Marker))

    def take_all(self) -> list[T]:
        """Every queued item, answering the markers among them."""
        items: list[T] = []
        queue = self.items
        while queue:
            item = queue.popleft()
            if isinstance(item, Marker):
                item.done.set()
            else:
                items.append(item)
        return items

    def drain(
        self, store: Callable[[list[T]], None], settle: Callable[[], None], limit: int | None = None
    ) -> None:
        """Hand what is queued to *store* in batches of at most ``batch_size``; before answering a
        marker, hand on the batch so far and wait for *settle* (everything handed on is stored or
        spilled). With *limit*, take at most that many entries (markers included) and leave what
        arrives meanwhile for the next round."""
        batch: list[T] = []
        queue = self.items
        left = -1 if limit is None else limit
        while queue and left:
            left -= 1
            item = queue.popleft()
            if isinstance(item, Marker):
                if batch:
                    store(batch)
                    batch = []
                settle()
                item.done.set()
                continue
            batch.append(item)
            if len(batch) >= self.batch_size:
                store(batch)
                batch = []
        if batch:
            store(batch)
