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
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def guard(site: str) -> Iterator[None]:
    """Run the block; an `Exception` inside it is reported and suppressed."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the whole point: never break the caller's call
        report(site, exc)


def internal_error_counts() -> dict[str, int]:
    """How many internal errors each site has had in this process."""
    with _lock:
        return dict(_counts)
