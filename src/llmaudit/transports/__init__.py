"""The ways in per HTTP client: ``transports.httpx`` and ``transports.httpx2`` (typed bindings of the
audit transport) and ``transports.aiohttp`` (the aiohttp client middleware).

Import the one matching the client you build; ``llmaudit.AuditTransport`` works with either httpx
branch at run time. Importing a module imports its client library, so each is only usable where that
library is installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["aiohttp", "httpx", "httpx2"]


def __getattr__(name: str) -> ModuleType:
    """``llmaudit.transports.httpx2`` works after ``import llmaudit``, importing the branch lazily."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
