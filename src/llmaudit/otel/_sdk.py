"""`SpanModel`s and records -> the OpenTelemetry SDK's span and metric data, and the OTLP exporters.

The only module of ``otel/`` that imports the SDK (the ``otel`` extra); importing it without the
SDK is one ImportError naming the extra. Spans are the SDK's `ReadableSpan`, built directly with
their derived ids and the record's times (no tracer, no sampling, no batching processor); metrics
are delta histograms of one batch, with the conventions' bucket boundaries. Nothing here sends.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Sequence
from typing import Any

try:
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricsData,
        ResourceMetrics,
        ScopeMetrics,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
except ImportError as exc:  # pragma: no cover - exercised by tests/test_optional_imports.py
    raise ImportError(
        "exporting to OpenTelemetry needs the OpenTelemetry SDK and exporters: "
        "pip install 'llmaudit-sdk[otel]'"
    ) from exc

from .._version import __version__
from ..record.model import AuditRecord, record_kind
from ._mapping import SpanModel, metric_attributes

__all__ = [
    "DURATION_BUCKETS_S",
    "TOKEN_BUCKETS",
    "metrics_data",
    "readable_span",
    "resource",
    "scope",
]

#: The conventions' explicit bucket boundaries of ``gen_ai.client.operation.duration`` (seconds)
#: and ``gen_ai.client.token.usage`` (tokens).
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS: tuple[float, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

_KINDS = {"client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}


def resource() -> Resource:
    """The resource of every span and metric sent: ``service.name`` from ``OTEL_SERVICE_NAME``
    (else ``llmaudit``), and ``OTEL_RESOURCE_ATTRIBUTES``."""
    return Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "llmaudit"})


def scope(version: str) -> InstrumentationScope:
    """llmaudit as the instrumentation scope, with the schema of the conventions followed."""
    return InstrumentationScope("llmaudit", __version__, f"https://opentelemetry.io/schemas/{version}")


def readable_span(model: SpanModel, on: Resource, by: InstrumentationScope) -> ReadableSpan:
    """The SDK span of *model* (sampled, already ended)."""
    context = SpanContext(model.trace_id, model.span_id, is_remote=False, trace_flags=TraceFlags(1))
    parent = None
    if model.parent_span_id is not None:
        parent = SpanContext(
            model.trace_id, model.parent_span_id, is_remote=model.parent_is_remote, trace_flags=TraceFlags(1)
        )
    status = Status(StatusCode.ERROR, model.status_description) if model.error else Status(StatusCode.UNSET)
    return ReadableSpan(
        name=model.name,
        context=context,
        parent=parent,
        resource=on,
        attributes=model.attributes,
        kind=_KINDS[model.kind],
        status=status,
        start_time=model.start_ns,
        end_time=model.end_ns,
        instrumentation_scope=by,
    )


class _Series:
    """One histogram series (one attribute set) of one batch."""

    def __init__(self, attributes: dict[str, Any], bounds: Sequence[float]) -> None:
        self.attributes, self.bounds = attributes, bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total: float = 0
        self.count = 0
        self.low, self.high = float("inf"), float("-inf")
        self.start, self.end = 2**63, 0

    def add(self, value: float, start_ns: int, end_ns: int) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # buckets are (previous, bound]
        self.total += value
        self.count += 1
        self.low, self.high = min(self.low, value), max(self.high, value)
        self.start, self.end = min(self.start, start_ns), max(self.end, end_ns)

    def point(self) -> HistogramDataPoint:
        return HistogramDataPoint(
            attributes=self.attributes,
            start_time_unix_nano=self.start,
            time_unix_nano=max(self.end, self.start),
            count=self.count,
            sum=self.total,
            bucket_counts=tuple(self.counts),
            explicit_bounds=tuple(self.bounds),
            min=self.low,
            max=self.high,
        )


def _add(
    table: dict[tuple[Any, ...], _Series],
    attributes: dict[str, Any],
    bounds: Sequence[float],
    value: float,
    times: tuple[int, int],
) -> None:
    key = tuple(sorted(attributes.items()))
    series = table.get(key)
    if series is None:
        series = table[key] = _Series(attributes, bounds)
    series.add(value, *times)


def _histogram(name: str, description: str, unit: str, table: dict[tuple[Any, ...], _Series]) -> Metric:
    data = Histogram(
        data_points=[s.point() for s in table.values()], aggregation_temporality=AggregationTemporality.DELTA
    )
    return Metric(name=name, description=description, unit=unit, data=data)


def metrics_data(
    records: Iterable[AuditRecord], spans: Iterable[SpanModel], version: str, on: Resource
) -> MetricsData | None:
    """``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` over the LLM calls of
    one batch (delta histograms, one point per attribute set); None when the batch has no call."""
    durations: dict[tuple[Any, ...], _Series] = {}
    tokens: dict[tuple[Any, ...], _Series] = {}
    for record, span in zip(records, spans, strict=True):
        if record_kind(record) != "call":
            continue
        attributes, times = metric_attributes(record, version), (span.start_ns, span.end_ns)
        if record.duration_ms is not None:
            _add(durations, attributes, DURATION_BUCKETS_S, record.duration_ms / 1000, times)
        for token_type, count in (("input", record.input_tokens), ("output", record.output_tokens)):
            if count is not None:
                typed = {
                    **{k: v for k, v in attributes.items() if k != "error.type"},
                    "gen_ai.token.type": token_type,
                }
                _add(tokens, typed, TOKEN_BUCKETS, count, times)
    metrics = []
    if durations:
        metrics.append(
            _histogram("gen_ai.client.operation.duration", "GenAI operation duration.", "s", durations)
        )
    if tokens:
        metrics.append(
            _histogram(
                "gen_ai.client.token.usage", "Number of input and output tokens used.", "{token}", tokens
            )
        )
    if not metrics:
        return None
    by = scope(version)
    scoped = ScopeMetrics(scope=by, metrics=metrics, schema_url=by.schema_url or "")
    return MetricsData(resource_metrics=[ResourceMetrics(resource=on, scope_metrics=[scoped], schema_url="")])
