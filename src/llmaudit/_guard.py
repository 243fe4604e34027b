"""The one place where llmaudit swallows its own failures, so the caller's call always goes on.

Only `Exception` is caught: KeyboardInterrupt, SystemExit, GeneratorExit and asyncio.CancelledError
(BaseException subclasses) always propagate. Each failure site is logged in full once on logger
``llmaudit`` (later repeats at DEBUG, so a broken backend cannot flood the application's log) and counted.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from types import TracebackType

__all__ = ["guard", "internal_error_counts", "report"]

logger = logging.getLogger("llmaudit")
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def _new_lock_in_child() -> None:
    global _lock  # noqa: PLW0603 - a child forked while another thread held it would wait for ever
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def report(site: str, exc: BaseException) -> None:
    """Log and count an internal failure at *site*; never raises."""
    with _lock:
        _counts[site] += 1
        first = _counts[site] == 1
    level = logging.ERROR if first else logging.DEBUG
    logger.log(
        level,
        "llmaudit internal error in %s (the audited call is unaffected)",
        site,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


class guard:  # noqa: N801 - used like a function: ``with guard("site"):``
    """Run the block; an `Exception` inside it is reported and suppressed.

    A class rather than ``@contextmanager``: it runs on the hot path of every audited call (twice),
    and a generator-based context manager costs several times more to enter and leave."""

    __slots__ = ("site",)

    def __init__(self, site: str) -> None:
        self.site = site

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # nothing happened, or KeyboardInterrupt, CancelledError…: let it through
        report(self.site, exc)  # the whole point: never break the caller's call
        return True


def internal_error_counts() -> dict[str, int]:
    """How many internal errors each site has had in this process."""
    with _lock:
        return dict(_counts)
