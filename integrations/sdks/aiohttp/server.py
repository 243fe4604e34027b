"""A provider-shaped HTTP server on 127.0.0.1 for the clients that send through aiohttp.

It answers OpenAI chat completions and Anthropic messages as the providers frame them (gzipped JSON,
or SSE written in small chunked-encoding pieces, flushed one by one), whatever host the request names:
the clients reach it as their HTTP proxy, so the request keeps the provider's real URL
(``http://api.openai.com/v1/chat/completions``) and is matched as that provider.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from integrations.sdks.conftest import chunks, gzipped

Route = Callable[[dict[str, Any]], tuple[int, dict[str, str], bytes | list[bytes]]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default stderr log."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        self.server.seen.append((self.path, dict(self.headers), body))
        path = self.path.split("?")[0]
        route = next((r for suffix, r in self.server.routes.items() if path.endswith(suffix)), None)
        if route is None:
            self.send_error(404)
            return
        status, headers, payload = route(body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if isinstance(payload, bytes):
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for piece in payload:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    seen: list[tuple[str, dict[str, str], Any]]


def json_or_sse(response: Any, stream: bytes) -> Route:
    """A route answering gzipped JSON, or *stream* as SSE when the request says ``"stream": true``."""

    def route(body: dict[str, Any]) -> tuple[int, dict[str, str], bytes | list[bytes]]:
        if body.get("stream"):
            return 200, {"content-type": "text/event-stream"}, chunks(stream)
        return 200, {"content-type": "application/json", "content-encoding": "gzip"}, gzipped(response)

    return route


class WireServer:
    """Serves *routes* (path suffix -> route) until closed; ``url`` is its base URL, ``seen`` the
    requests it received (path, headers, JSON body)."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.routes = routes
        self._server.seen = []
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def seen(self) -> list[tuple[str, dict[str, str], Any]]:
        return self._server.seen

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WireServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
