"""OpenTelemetry: records out as GenAI spans (and metrics) to any OTLP collector, live or by replay.

- `to_span` maps a record to a span following the OpenTelemetry GenAI semantic conventions
  (`LATEST_SEMCONV` with ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``, else
  `LEGACY_SEMCONV`), with ids derived from record ids: the same records give the same spans.
- ``otlp://host:4318`` (HTTP/protobuf) and ``otlp+grpc://host:4317`` are storage URLs: the OTLP
  sink (`OTLPStorage`), write-only, behind the writer's usual retry, spool and loss accounting.
- `export` replays any store into an OTLP endpoint, resumable (``after=``).

Sending needs the ``otel`` extra (``pip install 'llmaudit-sdk[otel]'``); the mapping does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._mapping import (
    LATEST_SEMCONV,
    LEGACY_SEMCONV,
    SpanModel,
    carried_context,
    content_opted_in,
    semconv_version,
    span_id_of,
    to_span,
    trace_id_of,
)

if TYPE_CHECKING:
    from ._export import ExportResult, export
    from ._sink import OTLPStorage

__all__ = [
    "LATEST_SEMCONV",
    "LEGACY_SEMCONV",
    "ExportResult",
    "OTLPStorage",
    "SpanModel",
    "carried_context",
    "content_opted_in",
    "export",
    "semconv_version",
    "span_id_of",
    "to_span",
    "trace_id_of",
]


def __getattr__(name: str) -> Any:
    """The sink and the export load on first use (they import the read side and storage)."""
    if name == "OTLPStorage":
        from ._sink import OTLPStorage  # noqa: PLC0415

        return OTLPStorage
    if name in ("export", "ExportResult"):
        from . import _export  # noqa: PLC0415

        return getattr(_export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
