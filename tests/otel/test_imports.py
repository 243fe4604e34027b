"""The OpenTelemetry packages stay optional: core llmaudit and the mapping never need them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import llmaudit
from llmaudit import ConfigurationError


def test_core_llmaudit_and_the_mapping_import_without_opentelemetry() -> None:
    """`import llmaudit` and `import llmaudit.otel` load no OpenTelemetry module."""
    code = (
        "import sys, llmaudit, llmaudit.otel; "
        "heavy = ('opentelemetry', 'grpc', 'google.protobuf'); "
        "print(','.join(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_the_sink_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """otlp:// without the otel extra: a ConfigurationError that says what to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    monkeypatch.delitem(sys.modules, "llmaudit.otel._sdk", raising=False)
    with pytest.raises(ConfigurationError, match=r"llmaudit-sdk\[otel\]"):
        llmaudit.open_storage("otlp://127.0.0.1:4318")
