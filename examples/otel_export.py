"""The demo's records, sent to an OpenTelemetry collector as GenAI spans, and what the collector saw.

    pip install 'llmaudit-sdk[otel]'
    python examples/otel_export.py

Offline: `llmaudit demo` records a small simulated application into a temporary SQLite store, and a
minimal OTLP/HTTP receiver on 127.0.0.1 (decoding with the official protobuf classes) stands in for
the collector. In your deployment, point at your own: ``llmaudit export --to otlp://collector:4318``
to replay a store, or ``configure(storage="otlp://collector:4318")`` to send calls as they happen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

import llmaudit
from llmaudit import otel

received: list[ExportTraceServiceRequest] = []


class Collector(BaseHTTPRequestHandler):
    """Just enough of an OTLP/HTTP collector: decode each trace export and keep it."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            received.append(ExportTraceServiceRequest.FromString(body))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        """Quiet."""


# the latest GenAI conventions (the transition plan's opt-in), and message content (after redaction)
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
os.environ.setdefault("OTEL_SERVICE_NAME", "demo-support-bot")

store = f"sqlite:///{tempfile.mkdtemp()}/demo.db"
subprocess.run(
    [sys.executable, "-m", "llmaudit.cli", "demo", "--storage", store], check=True, stdout=subprocess.DEVNULL
)

server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
threading.Thread(target=server.serve_forever, daemon=True).start()
endpoint = f"otlp://127.0.0.1:{server.server_address[1]}"

with llmaudit.open(store) as reader:
    result = otel.export(reader, endpoint)
server.shutdown()
server.server_close()
print(f"sent {result.count} records to {endpoint} as GenAI spans (conventions {otel.LATEST_SEMCONV})")

spans = [s for r in received for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
by_id = {s.span_id: s for s in spans}
for span in sorted(spans, key=lambda s: s.start_time_unix_nano):
    attributes = {kv.key: kv.value for kv in span.attributes}
    depth = "  " if span.parent_span_id in by_id else ""
    kind = "CLIENT" if span.kind == span.SPAN_KIND_CLIENT else "INTERNAL"
    error = attributes.get("error.type")
    extra = f" error.type={error.string_value}" if error else ""
    if "gen_ai.usage.input_tokens" in attributes:
        tokens = (
            attributes["gen_ai.usage.input_tokens"].int_value,
            attributes["gen_ai.usage.output_tokens"].int_value,
        )
        extra += f" tokens={tokens[0]}+{tokens[1]}"
    conversation = attributes["gen_ai.conversation.id"].string_value
    print(
        f"{depth}{kind:<8} {span.name!r} trace={span.trace_id.hex()[:8]} conversation={conversation}{extra}"
    )
print(
    "every call is a child of its @audited function:",
    all(s.parent_span_id in by_id for s in spans if s.kind == s.SPAN_KIND_CLIENT),
)
