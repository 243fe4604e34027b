"""`sse_json`'s fast framing for the usual provider streams gives exactly what the general SSE parser
gives, and leaves everything else to it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmaudit.providers import Exchange

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.providers._common import _general_sse_json, _plain_sse_json, sse_json


def _general(body: bytes) -> tuple[list[tuple[str | None, Any]], list[str]]:
    """What the general parser makes of *body* (the reference the fast path must match)."""
    notes: list[str] = []
    return list(_general_sse_json(body, notes)), notes


def _read(body: bytes) -> tuple[list[tuple[str | None, Any]], list[str]]:
    exchange = Exchange("POST", "api.openai.com", "/v1/chat/completions", {}, {}, None, 200, {}, body, True)
    notes: list[str] = []
    return list(sse_json(exchange, notes)), notes


OPENAI = (
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"lo \\u00e9"}}]}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\n'
    b"event: ping\ndata: {}\n\n"
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


@pytest.mark.parametrize("body", [OPENAI, ANTHROPIC, OPENAI.rstrip(b"\n"), b""])
def test_provider_framing_takes_the_fast_path_with_the_same_result(body: bytes) -> None:
    assert _plain_sse_json(body) is not None
    assert _read(body) == _general(body)


@pytest.mark.parametrize(
    "body",
    [
        OPENAI.replace(b"\n", b"\r\n"),  # CR line ends
        b": keep-alive\n\n" + OPENAI,  # a comment
        b'id: 7\ndata: {"a":1}\n\n',  # an id field
        b'data: {"a":\ndata: 1}\n\n',  # data over two lines
        b'data:{"a":1}\n\n',  # no space after the colon
        b'data: {"a":1}\n\ndata: [1, 2]\n\n',  # an event that is not an object
        b'data: {"a":1}\n\ndata: {"b":\n\n',  # cut short
        b'data: {"n":12345678901234567890123}\n\n',  # an integer orjson would make a float
        b'data: {"a":"\xff"}\n\n',  # invalid UTF-8
        b'data: {},{}\n\ndata: {"x":[{}\n\ndata: {}]}\n\n',  # pieces that only join into objects
    ],
)
def test_anything_else_goes_to_the_general_parser(body: bytes) -> None:
    assert _plain_sse_json(body) is None
    assert _read(body) == _general(body)


_event_names = st.none() | st.sampled_from(["message_start", "content_block_delta", "ping", "é"])
_payloads = st.one_of(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3).map(
        lambda d: json.dumps(d, ensure_ascii=False).encode()
    ),
    st.sampled_from([b"[DONE]", b"[1]", b"", b"{", b'"x"', b"{}}", b" {} ", b"\xc3"]),
)
_framing = st.sampled_from([b"\n\n", b"\n", b"\r\n\r\n", b"\n\n\n"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_event_names, _payloads, _framing), max_size=6))
def test_fast_path_or_not_the_result_is_the_general_parsers(
    events: list[tuple[str | None, bytes, bytes]],
) -> None:
    body = b"".join(
        (b"" if name is None else b"event: " + name.encode() + b"\n") + b"data: " + data + end
        for name, data, end in events
    )
    assert _read(body) == _general(body)
