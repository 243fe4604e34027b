"""Records -> GenAI spans, as plain data: names, ids, times and attributes, no OpenTelemetry import.

One record becomes one `SpanModel`, following the OpenTelemetry GenAI semantic conventions: an LLM
call is a CLIENT span named ``{gen_ai.operation.name} {gen_ai.request.model}``; an ``@audited``
function record an INTERNAL span that parents the calls made inside it; an aggregation record an
INTERNAL span of its own. llmaudit's own fields go under ``llmaudit.*``.

Ids are derived from record ids alone (`span_id_of`, `trace_id_of`), so exporting the same records
twice, live or by replay, produces the same spans. Message content (``gen_ai.input.messages``...) is
built only when asked for (see `content`), and only from the record as stored: after redaction.
Pure functions over a record that never raise on odd payloads (provider JSON is never trusted).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from ..record.model import AuditRecord, record_kind
from ._content import content_attributes
from ._payload import request_attributes, request_model, response_attributes

__all__ = [
    "CONTENT_ENV",
    "LATEST_SEMCONV",
    "LEGACY_SEMCONV",
    "SpanModel",
    "carried_context",
    "content_opted_in",
    "error_type",
    "gen_ai_operation",
    "gen_ai_provider",
    "metric_attributes",
    "semconv_version",
    "span_id_of",
    "to_span",
    "trace_id_of",
]

#: The GenAI semantic conventions emitted with ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``
#: (the last release of the GenAI conventions in open-telemetry/semantic-conventions), and without it
#: (the version the conventions' transition plan names as the default to keep).
LATEST_SEMCONV: Final = "1.41.0"
LEGACY_SEMCONV: Final = "1.36.0"
OPT_IN_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
OPT_IN_VALUE: Final = "gen_ai_latest_experimental"

#: llmaudit's operation names -> ``gen_ai.operation.name`` (others are sent as they are: the
#: conventions allow a custom value where no well-known one applies).
_OPERATIONS: Mapping[str, str] = {
    "chat.completions": "chat",
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "agents.completions": "chat",
    "completions": "text_completion",
    "fim.completions": "text_completion",
    "generate": "text_completion",
    "generate_content": "generate_content",
    "embeddings": "embeddings",
    "embedding": "embeddings",
    "embed": "embeddings",
    "embed_content": "embeddings",
}

#: llmaudit's provider names -> ``gen_ai.provider.name`` (latest) and ``gen_ai.system`` (1.36.0).
_PROVIDERS: Mapping[str, tuple[str, str]] = {
    "openai": ("openai", "openai"),
    "azure_openai": ("azure.ai.openai", "az.ai.openai"),
    "anthropic": ("anthropic", "anthropic"),
    "cohere": ("cohere", "cohere"),
    "mistral": ("mistral_ai", "mistral_ai"),
    "groq": ("groq", "groq"),
    "deepseek": ("deepseek", "deepseek"),
    "xai": ("x_ai", "xai"),
}

_BASE_NAMESPACE = "llmaudit."
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def semconv_version(environ: Mapping[str, str] | None = None) -> str:
    """The GenAI conventions to emit: `LATEST_SEMCONV` when ``OTEL_SEMCONV_STABILITY_OPT_IN`` lists
    ``gen_ai_latest_experimental``, else `LEGACY_SEMCONV` (the conventions' transition plan)."""
    value = (environ if environ is not None else os.environ).get(OPT_IN_ENV, "")
    chosen = {item.strip().lower() for item in value.split(",")}
    return LATEST_SEMCONV if OPT_IN_VALUE in chosen else LEGACY_SEMCONV


@dataclass(frozen=True, slots=True)
class SpanModel:
    """A span as plain data. Ids are integers (128-bit trace, 64-bit span); times nanoseconds."""

    name: str
    trace_id: int
    span_id: int
    parent_span_id: int | None
    #: whether the parent is a span of the application's own (carried by the record), not ours
    parent_is_remote: bool
    kind: Literal["client", "internal"]
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    error: bool
    status_description: str | None


def _digest(label: bytes, value: str, size: int) -> int:
    number = int.from_bytes(hashlib.sha256(label + b"\0" + value.encode()).digest()[:size], "big")
    return number or 1  # an all-zero id is invalid in OpenTelemetry


def span_id_of(record_id: str) -> int:
    """The 64-bit span id of the record *record_id*: the same on every export."""
    return _digest(b"llmaudit.span", record_id, 8)


def trace_id_of(root_id: str) -> int:
    """The 128-bit trace id of the tree whose top record is *root_id*."""
    return _digest(b"llmaudit.trace", root_id, 16)


def _hex_id(value: Any, digits: int) -> int | None:
    if not isinstance(value, str) or len(value) != digits:
        return None
    try:
        number = int(value, 16)
    except ValueError:
        return None
    return number or None


def carried_context(record: AuditRecord) -> tuple[int, int] | None:
    """The application's own span (trace id, span id) the record was made in, if it carries one.

    The seam for correlation with the application's traces: a record field ``trace_id`` /
    ``span_id`` (hex) when the record has one, else the same keys, or ``otel.trace_id`` /
    ``otel.span_id``, in its metadata. Malformed ids are ignored.
    """
    sources: list[Mapping[str, Any]] = []
    fields = {name: getattr(record, name, None) for name in ("trace_id", "span_id")}
    if fields["trace_id"] is not None:
        sources.append(fields)
    if isinstance(record.metadata, Mapping):
        sources.append(record.metadata)
        sources.append({k.removeprefix("otel."): v for k, v in record.metadata.items() if isinstance(k, str)})
    for source in sources:
        trace, span = _hex_id(source.get("trace_id"), 32), _hex_id(source.get("span_id"), 16)
        if trace is not None and span is not None:
            return trace, span
    return None


def _ids(record: AuditRecord) -> tuple[int, int | None, bool]:
    """(trace id, parent span id, parent is the application's) of *record*.

    The trace is the application's when the record carries one; else that of the tree's top record
    as far as the record knows it (its parent, or itself): an ``@audited`` function and the calls
    made in it share a trace.
    """
    carried = carried_context(record)
    if record.parent_id is not None:
        trace = carried[0] if carried else trace_id_of(record.parent_id)
        return trace, span_id_of(record.parent_id), False
    if carried:
        return carried[0], carried[1], True
    return trace_id_of(record.id), None, False


def gen_ai_operation(record: AuditRecord) -> str:
    """``gen_ai.operation.name`` of a call record."""
    operation = record.operation or ""
    return _OPERATIONS.get(operation, operation or "chat")


def gen_ai_provider(record: AuditRecord, version: str = LATEST_SEMCONV) -> str:
    """``gen_ai.provider.name`` (or, in 1.36.0, ``gen_ai.system``) of a call record."""
    provider = record.provider or "unknown"
    latest = version != LEGACY_SEMCONV
    if provider == "gemini":
        host = _server(record)[0] or ""
        if host.endswith("aiplatform.googleapis.com"):
            return "gcp.vertex_ai"
        return "gcp.gemini" if host == "generativelanguage.googleapis.com" else "gcp.gen_ai"
    known = _PROVIDERS.get(provider)
    if known is None:
        return provider
    return known[0] if latest else known[1]


def _server(record: AuditRecord) -> tuple[str | None, int | None]:
    if not record.url:
        return None, None
    try:
        parts = urlsplit(record.url)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        return None, None
    return parts.hostname, port


def error_type(record: AuditRecord) -> str | None:
    """``error.type`` of a failed record: the exception's class name, else the HTTP status."""
    if record.error:
        head = record.error.partition(":")[0].strip()
        if head and " " not in head and (record.status_code or 0) < 400:
            return head
    if (record.status_code or 0) >= 400:
        return str(record.status_code)
    return "_OTHER" if record.error else None


def _common_attributes(record: AuditRecord, version: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": gen_ai_operation(record),
        ("gen_ai.provider.name" if version != LEGACY_SEMCONV else "gen_ai.system"): gen_ai_provider(
            record, version
        ),
    }
    model = request_model(record)
    if model:
        attributes["gen_ai.request.model"] = model
    host, port = _server(record)
    if host:
        attributes["server.address"] = host
        if port is not None:
            attributes["server.port"] = port
    return attributes


def metric_attributes(record: AuditRecord, version: str = LATEST_SEMCONV) -> dict[str, Any]:
    """The attributes of a call's ``gen_ai.client.*`` measurements (low cardinality only)."""
    attributes = _common_attributes(record, version)
    model = response_attributes(record).get("gen_ai.response.model")
    if model:
        attributes["gen_ai.response.model"] = model
    failure = error_type(record)
    if failure:
        attributes["error.type"] = failure
    return attributes


def _llmaudit_attributes(record: AuditRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "record.id": record.id,
        "source": record.source,
        "client": record.client,
        "user": record.user,
        "provider": record.provider,
        "operation": record.operation,
        "session_key": record.session_key,
        "parent_session_key": record.parent_session_key,
        "parent_id": record.parent_id,
        "cost_usd": record.cost_usd,
        "duration_ms": record.duration_ms,
        "ttft_ms": record.ttft_ms,
        "total_tokens": record.total_tokens,
        "attempt": record.attempt,
        "is_aggregation": record.is_aggregation,
        "is_stream": record.is_stream,
        "incomplete": record.incomplete,
        "writer_id": record.writer_id,
        "seq": record.seq,
        "hash": record.hash,
        "prev_hash": record.prev_hash,
        "tags": list(record.tags) if record.tags else None,
    }
    return {_BASE_NAMESPACE + k: v for k, v in values.items() if v is not None}


def _call_attributes(record: AuditRecord, version: str) -> dict[str, Any]:
    attributes = _common_attributes(record, version)
    attributes.update(request_attributes(record.request))
    attributes.update(response_attributes(record))
    if record.is_stream:
        attributes["gen_ai.request.stream"] = True
        if record.ttft_ms is not None and version != LEGACY_SEMCONV:
            attributes["gen_ai.response.time_to_first_chunk"] = record.ttft_ms / 1000
    if record.input_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = record.input_tokens
    if record.output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = record.output_tokens
    if record.status_code is not None:
        attributes["http.response.status_code"] = record.status_code
    return attributes


def to_span(record: AuditRecord, *, content: bool = False, version: str = LATEST_SEMCONV) -> SpanModel:
    """The span of *record*.

    Args:
        record: a stored record (redacted already: nothing here redacts).
        content: add ``gen_ai.system_instructions``, ``gen_ai.input.messages`` and
            ``gen_ai.output.messages`` (the conventions' JSON structure, as JSON text). Only with
            the latest conventions: 1.36.0 recorded content as events, which are not sent.
        version: the conventions to follow (see `semconv_version`).
    """
    kind = record_kind(record)
    trace, parent, remote = _ids(record)
    start = (record.created_at - _EPOCH) // _MICROSECOND * 1000
    end = start + int((record.duration_ms or 0.0) * 1_000_000)
    failure = error_type(record) if kind != "aggregation" else None
    if kind == "call":
        attributes = _call_attributes(record, version)
        model = attributes.get("gen_ai.request.model")
        name = (
            f"{attributes['gen_ai.operation.name']} {model}" if model else attributes["gen_ai.operation.name"]
        )
        if content and version != LEGACY_SEMCONV:
            attributes.update(content_attributes(record))
    elif kind == "function":
        name = record.operation or "audited"
        attributes = {"code.function.name": name} if record.operation else {}
        if record.session_key is not None:
            attributes["gen_ai.conversation.id"] = record.session_key
    else:
        name = f"aggregate {record.session_key}" if record.session_key else "aggregate"
        attributes = {}
    if kind == "call" and record.session_key is not None:
        attributes["gen_ai.conversation.id"] = record.session_key
    if failure:
        attributes["error.type"] = failure
    attributes.update(_llmaudit_attributes(record))
    return SpanModel(
        name=name,
        trace_id=trace,
        span_id=span_id_of(record.id),
        parent_span_id=parent,
        parent_is_remote=remote,
        kind="client" if kind == "call" else "internal",
        start_ns=start,
        end_ns=max(end, start),
        attributes=attributes,
        error=failure is not None,
        status_description=(record.error or failure) if failure else None,
    )


#: The OpenTelemetry GenAI instrumentations' switch for message content (``true``, or in their
#: latest experimental mode ``SPAN_ONLY`` / ``SPAN_AND_EVENT``).
CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def content_opted_in(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the user opted in to message content (`CONTENT_ENV`)."""
    value = (environ if environ is not None else os.environ).get(CONTENT_ENV, "").strip().lower()
    return value in {"true", "1", "span_only", "span_and_event"}
