"""The OTLP sink: a write-only storage that sends each batch of records as GenAI spans (and metrics).

``otlp://host:4318`` sends OTLP/HTTP (protobuf) to ``/v1/traces`` and ``/v1/metrics`` under the URL's
path; ``otlp+grpc://host:4317`` sends OTLP/gRPC. Query options: ``tls=1`` (https, or a secure gRPC
channel), ``timeout=SECONDS`` (each export, 10 by default), ``content=1|0`` (the opt-in message
content; default: ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``), ``metrics=0`` (spans only).

Sending goes through the official OpenTelemetry exporters, one synchronous export per batch, so the
writer knows whether the batch arrived: a collector that cannot be reached, or answers 429/5xx,
raises `StorageUnavailableError` (the writer retries, spills to its spool and replays later, as for
any store); one that refuses the data (another 4xx) raises `StorageError` (the writer keeps the
records aside). Spans first, metrics after them: a batch whose spans were refused sends no metric,
so a replayed batch is not counted twice (a span sent twice has the same ids: backends keep one).

It is write-only: ``llmaudit.open("otlp://…")`` is a `ConfigurationError`, since a collector gives
nothing back; read the records from the local store the sink runs beside.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

from .._errors import ConfigurationError, StorageError, StorageUnavailableError
from ..record.model import AuditRecord
from ..storage._base import ProblemHandler, Query, redact_url
from ._mapping import content_opted_in, semconv_version, to_span

__all__ = ["DEFAULT_TIMEOUT_S", "OTLPStorage"]

logger = logging.getLogger("llmaudit")

DEFAULT_TIMEOUT_S = 10.0
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SCHEMES = frozenset({"otlp", "otlp+http", "otlp+grpc"})
#: HTTP answers that mean "later", as the OTLP specification lists them (the rest refuse the data)
_RETRYABLE_HTTP = frozenset({408, 429, 502, 503, 504})


def _flag(options: Mapping[str, list[str]], name: str, default: bool) -> bool:
    if name not in options:
        return default
    value = options[name][-1].lower()
    if value not in _TRUE | _FALSE:
        raise ConfigurationError(f"OTLP storage option {name}={value!r}: use 1 or 0")
    return value in _TRUE


class _Exporters:
    """The official span and metric exporters of one transport, and what the last HTTP answer was."""

    def __init__(self, grpc: bool, endpoint: str, tls: bool, timeout_s: float) -> None:
        self.last_status: int | None = None
        try:
            if grpc:
                self._grpc(endpoint, tls, timeout_s)
            else:
                self._http(endpoint, timeout_s)
        except ImportError as exc:
            raise ConfigurationError(
                "the OTLP storage needs the OpenTelemetry exporters: "
                f"pip install 'llmaudit-sdk[otel]' ({exc})"
            ) from exc

    def _http(self, base: str, timeout_s: float) -> None:
        import requests  # noqa: PLC0415 - the HTTP exporter's own dependency
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        sessions = requests.Session(), requests.Session()
        for session in sessions:  # the status code behind a failed export, which the result omits
            session.hooks["response"].append(self._saw)
        self.spans: Any = OTLPSpanExporter(
            endpoint=f"{base}/v1/traces", timeout=timeout_s, session=sessions[0]
        )
        self.metrics: Any = OTLPMetricExporter(
            endpoint=f"{base}/v1/metrics", timeout=timeout_s, session=sessions[1]
        )

    def _grpc(self, endpoint: str, tls: bool, timeout_s: float) -> None:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter  # noqa: PLC0415
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        self.spans = OTLPSpanExporter(endpoint=endpoint, insecure=not tls, timeout=timeout_s)
        self.metrics = OTLPMetricExporter(endpoint=endpoint, insecure=not tls, timeout=timeout_s)

    def _saw(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.last_status = int(response.status_code)
        return response

    def shutdown(self) -> None:
        for exporter in (self.spans, self.metrics):
            exporter.shutdown()


class OTLPStorage:
    """Sends records to an OpenTelemetry collector as GenAI spans; see the module docstring."""

    def __init__(
        self,
        endpoint: str,
        *,
        grpc: bool = False,
        tls: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        content: bool | None = None,
        metrics: bool = True,
        url: str | None = None,
    ) -> None:
        try:
            from . import _sdk  # noqa: PLC0415 - the SDK is optional: a clear error when it is missing
        except ImportError as exc:
            raise ConfigurationError(str(exc)) from exc
        self._sdk = _sdk
        self.url = redact_url(url or endpoint)
        self.version = semconv_version()
        self.content = content_opted_in() if content is None else content
        self.metrics = metrics
        self._exporters = _Exporters(grpc, endpoint, tls, timeout_s)
        self._resource = _sdk.resource()
        self._scope = _sdk.scope(self.version)
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> OTLPStorage:
        """The sink for ``otlp://host:port[/path][?options]`` or ``otlp+grpc://host:port``.

        Raises:
            ConfigurationError: *create* is False (the read side: the sink is write-only), the
                scheme or an option is wrong, or the ``otel`` extra is not installed.
        """
        if not create:
            raise ConfigurationError(
                f"{redact_url(url)} is write-only: an OTLP collector cannot be read back; "
                "read the local store the OTLP sink runs beside"
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES or not parts.hostname:
            raise ConfigurationError(
                f"OTLP storage URL {redact_url(url)!r}: use otlp://HOST:4318 or otlp+grpc://HOST:4317"
            )
        options = parse_qs(parts.query)
        unknown = set(options) - {"tls", "timeout", "content", "metrics"}
        if unknown:
            raise ConfigurationError(
                f"unknown OTLP storage option(s) {', '.join(sorted(unknown))} in {redact_url(url)}"
            )
        grpc, tls = scheme == "otlp+grpc", _flag(options, "tls", False)
        try:
            timeout = float(options.get("timeout", [DEFAULT_TIMEOUT_S])[-1])
        except ValueError as exc:
            raise ConfigurationError(
                f"OTLP storage option timeout in {redact_url(url)}: not a number"
            ) from exc
        port = parts.port or (4317 if grpc else 4318)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if grpc:
            endpoint = f"{host}:{port}"
        else:
            endpoint = f"{'https' if tls else 'http'}://{host}:{port}{parts.path.rstrip('/')}"
        content = _flag(options, "content", content_opted_in()) if "content" in options else None
        return cls(
            endpoint,
            grpc=grpc,
            tls=tls,
            timeout_s=timeout,
            content=content,
            metrics=_flag(options, "metrics", True),
            url=url,
        )

    def write(self, records: Sequence[AuditRecord]) -> None:
        """Send *records* as spans, then their metrics; raises when the collector did not take them."""
        if not records:
            return
        if self._closed:
            raise StorageError(f"{self.url} is closed")
        models = [to_span(r, content=self.content, version=self.version) for r in records]
        spans = [self._sdk.readable_span(m, self._resource, self._scope) for m in models]
        self._send("spans", lambda: self._exporters.spans.export(spans))
        if self.metrics:
            data = self._sdk.metrics_data(records, models, self.version, self._resource)
            if data is not None:
                self._send("metrics", lambda: self._exporters.metrics.export(data))

    def _send(self, what: str, export: Any) -> None:
        self._exporters.last_status = None
        try:
            result = export()
        except Exception as exc:  # an exporter bug or a broken channel: try again later
            raise StorageUnavailableError(f"{self.url}: exporting {what} failed: {exc}") from exc
        if getattr(result, "name", "") == "SUCCESS":
            return
        self._fail(what, self._exporters.last_status)

    def _fail(self, what: str, status: int | None) -> NoReturn:
        if status is not None and 400 <= status < 500 and status not in _RETRYABLE_HTTP:
            raise StorageError(f"{self.url} refused the {what} (HTTP {status})")
        answer = f"HTTP {status}" if status is not None else "unreachable, or a gRPC error"
        raise StorageUnavailableError(f"{self.url}: the collector did not take the {what} ({answer})")

    def read(
        self, query: Query = Query(), *, on_problem: ProblemHandler | None = None
    ) -> Iterator[AuditRecord]:
        """Raises: `StorageError` always; the sink is write-only."""
        raise StorageError(f"{self.url} is write-only: read the local store it runs beside")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._exporters.shutdown()

    def __repr__(self) -> str:
        return f"<OTLPStorage {self.url}>"
