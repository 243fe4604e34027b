"""Optional dependencies are gated at import, with a message naming what to install."""

from __future__ import annotations

import importlib
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "dependency", "hint"),
    [
        ("llmaudit.transports.httpx2", "httpx2", "pip install httpx2"),
        ("llmaudit.transports.aiohttp", "aiohttp", "llmaudit-sdk[aiohttp]"),
        ("llmaudit.web.django", "django.conf", "llmaudit-sdk[django]"),
        ("llmaudit.ui", "starlette", "llmaudit-sdk[ui]"),
        ("llmaudit.contrib.django", "django", "llmaudit-sdk[django]"),
        ("llmaudit.otel._sdk", "opentelemetry.sdk.trace", "llmaudit-sdk[otel]"),
    ],
)
def test_a_gated_module_without_its_dependency_names_the_install(
    module: str, dependency: str, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing a gated module with its dependency missing is one clear ImportError."""
    monkeypatch.setitem(sys.modules, dependency, None)  # makes `import dependency` fail
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=hint.replace("[", r"\[").replace("]", r"\]")):
        importlib.import_module(module)


def test_core_import_does_not_import_sqlalchemy_or_frameworks() -> None:
    """`import llmaudit` stays light: SQLAlchemy loads only with a SQL store, frameworks never."""
    code = (
        "import sys, llmaudit; "
        "heavy = ('sqlalchemy', 'django', 'flask', 'fastapi', 'aiohttp'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
