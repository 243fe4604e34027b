"""`guard`: llmaudit's own failures are logged, counted and swallowed; the caller's never are."""

from __future__ import annotations

import asyncio
import logging

import pytest

# private: internal-error accounting (the guard) and the internal error classes
from llmaudit._guard import guard, internal_error_counts


def test_an_exception_inside_is_reported_at_error_then_at_debug(
    caplog: pytest.LogCaptureFixture, expect_internal_errors: list[logging.LogRecord]
) -> None:
    ran_after = []
    with caplog.at_level(logging.DEBUG, logger="llmaudit"):
        for _ in range(2):
            with guard("test site"):
                raise ValueError("boom")
            ran_after.append(True)
    assert ran_after == [True, True]
    assert internal_error_counts()["test site"] == 2
    levels = [r.levelno for r in caplog.records if "test site" in r.getMessage()]
    assert levels == [logging.ERROR, logging.DEBUG]
    assert caplog.records[0].exc_info is not None and caplog.records[0].exc_info[0] is ValueError
    assert len(expect_internal_errors) == 1  # only the first one at ERROR


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError])
def test_what_is_not_an_exception_goes_through(exc_type: type[BaseException]) -> None:
    with pytest.raises(exc_type), guard("test base"):
        raise exc_type()
    assert "test base" not in internal_error_counts()


def test_a_quiet_block_returns_its_value_and_counts_nothing() -> None:
    def inside() -> int | None:
        with guard("test quiet"):
            return 42
        return None

    assert inside() == 42
    assert "test quiet" not in internal_error_counts()
