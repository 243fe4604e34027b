"""Real OTLP receivers on 127.0.0.1 for the tests: OTLP/HTTP (protobuf) and OTLP/gRPC.

Both decode what arrives with the official ``opentelemetry-proto`` classes and keep every request,
so a test asserts on the spans and metrics a collector would have seen. ``down = True`` makes them
refuse every request (HTTP 503, gRPC UNAVAILABLE) until a test sets it back: an outage that starts
and ends exactly when the test says, with no sleep.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["GrpcReceiver", "HttpReceiver", "Received", "value_of"]


def value_of(value: AnyValue) -> Any:
    """The Python value of an OTLP attribute value."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


class Received:
    """What a receiver was sent: decoded requests, raw bodies, and how many it refused."""

    def __init__(self) -> None:
        self.down = False
        self.refused = 0
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()

    def spans(self) -> list[Span]:
        with self.lock:
            return [
                s for r in self.traces for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans
            ]

    def by_record(self) -> dict[str, Span]:
        """Each span by its ``llmaudit.record.id`` (the last one sent when several were)."""
        return {attributes(s)["llmaudit.record.id"]: s for s in self.spans()}

    def metric_list(self) -> list[Metric]:
        with self.lock:
            return [
                m
                for r in self.metrics
                for rm in r.resource_metrics
                for sm in rm.scope_metrics
                for m in sm.metrics
            ]

    def scopes(self) -> Iterator[Any]:
        with self.lock:
            for request in self.traces:
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        yield rs.resource, ss.scope, ss.schema_url

    def keep(self, path: str, body: bytes) -> None:
        with self.lock:
            self.raw.append(body)
            if path.endswith("/v1/traces"):
                self.traces.append(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            else:
                self.metrics.append(metrics_service_pb2.ExportMetricsServiceRequest.FromString(body))


def attributes(item: Any) -> dict[str, Any]:
    """A span's or data point's attributes as a dict."""
    return {kv.key: value_of(kv.value) for kv in item.attributes}


class _Handler(BaseHTTPRequestHandler):
    received: Received

    def do_POST(self) -> None:  # the OTLP/HTTP export call
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.received.down:
            with self.received.lock:
                self.received.refused += 1
            self.send_response(503)
            # "retry much later": the exporter gives up at once, and the writer's own retry, spool
            # and replay take over (what the tests are about), without the exporter's backoff
            self.send_header("Retry-After", "3600")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path not in ("/v1/traces", "/v1/metrics") or self.headers.get("Content-Type") != (
            "application/x-protobuf"
        ):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.received.keep(self.path, body)
        reply = (
            trace_service_pb2.ExportTraceServiceResponse()
            if self.path == "/v1/traces"
            else metrics_service_pb2.ExportMetricsServiceResponse()
        ).SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what arrived."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its kept-alive connection is not an error of the receiver's."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HttpReceiver(Received):
    """An OTLP/HTTP receiver on 127.0.0.1 (a context manager); ``url`` is its ``otlp://`` URL."""

    def __enter__(self) -> HttpReceiver:
        handler = type("Handler", (_Handler,), {"received": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.port = self._server.server_address[1]
        self.url = f"otlp://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _refuse(context: grpc.ServicerContext) -> None:
    """UNAVAILABLE with a RetryInfo of an hour: the gRPC twin of 503 + Retry-After."""
    info = RetryInfo(retry_delay=Duration(seconds=3600)).SerializeToString()
    context.set_trailing_metadata((("google.rpc.retryinfo-bin", info),))
    context.abort(grpc.StatusCode.UNAVAILABLE, "receiver down")


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self.received.down:
            with self.received.lock:
                self.received.refused += 1
            _refuse(context)
        self.received.keep("/v1/traces", request.SerializeToString())
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self.received.down:
            with self.received.lock:
                self.received.refused += 1
            _refuse(context)
        self.received.keep("/v1/metrics", request.SerializeToString())
        return metrics_service_pb2.ExportMetricsServiceResponse()


class GrpcReceiver(Received):
    """An OTLP/gRPC receiver on 127.0.0.1 (a context manager); ``url`` is its ``otlp+grpc://`` URL."""

    def __enter__(self) -> GrpcReceiver:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.url = f"otlp+grpc://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None).wait()
