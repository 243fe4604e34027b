"""Moved to tests/wire.py (one module for the wire formats tests/, integrations/ and benchmarks/ share);
this name stays for suites written against it meanwhile. Import from ``tests.wire``."""

from tests.wire import CHAT_REQUEST, CHAT_RESPONSE, CHAT_URL, SSE_CHUNKS, USAGE_CHUNK

__all__ = ["CHAT_REQUEST", "CHAT_RESPONSE", "CHAT_URL", "SSE_CHUNKS", "USAGE_CHUNK"]
