"""The outage tests' proxy must really cut: a client on a cut connection sees it end."""

from __future__ import annotations

import socket
import time

from tests.proxy import Proxy


def test_a_connection_ends_for_the_client_when_the_server_side_pipe_stops_first() -> None:
    """The race CI hit: the server answers just as the proxy goes down, so the server-to-client pipe
    stops first while the client-to-server pipe is blocked in recv. The client must see EOF, not a
    connection that stays open with nothing behind it (the writer then waited forever)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    with Proxy("127.0.0.1", server.getsockname()[1]) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        upstream, _ = server.accept()
        client.sendall(b"ping")
        assert upstream.recv(4) == b"ping"
        # private: the test proxy's own state (tests/proxy.py)
        proxy._down.set()  # the first step of cut(), before it takes the lock
        upstream.sendall(b"pong")  # the server-to-client pipe reads this, sees down, and stops
        deadline = time.monotonic() + 5
        while proxy._sockets and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not proxy._sockets, "the pipe did not stop"
        client.settimeout(3)
        try:
            data = client.recv(64)
        except ConnectionResetError:
            data = b""
        assert data == b""
        client.close()
        upstream.close()
    server.close()
