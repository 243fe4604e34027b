"""Integration suites share the unit suite's safety nets (isolated environment, internal errors fail)."""

from tests.conftest import _internal_errors, _isolated_environment, expect_internal_errors

__all__ = ["_internal_errors", "_isolated_environment", "expect_internal_errors"]
