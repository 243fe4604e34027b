"""Typed per-branch bindings of the audit transport: ``transports.httpx`` and ``transports.httpx2``.

Import the one matching the client you build; ``llmaudit.AuditTransport`` works with either at run
time. Importing a binding imports its branch, so each module is only usable where that branch is
installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["httpx", "httpx2"]


def __getattr__(name: str) -> ModuleType:
    """``llmaudit.transports.httpx2`` works after ``import llmaudit``, importing the branch lazily."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
