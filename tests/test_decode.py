"""Content decoding and stream framing: exact on good input, never raising on bad input."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.bodies import decode_content, iter_ndjson, iter_sse, parse_json

BODY = b'{"model": "gpt-4o-mini", "choices": []}' * 20


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
        ("br", brotli.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
        ("identity", lambda b: b),
    ],
)
def test_every_encoding_round_trips(encoding: str, encode: object) -> None:
    """Each Content-Encoding the clients accept is undone exactly, with no note."""
    assert decode_content(encode(BODY), encoding) == (BODY, ())  # type: ignore[operator]


def test_stacked_encodings_are_undone_in_reverse_order() -> None:
    """``Content-Encoding: gzip, br`` means gzip first, then br: undo br, then gzip."""
    assert decode_content(brotli.compress(gzip.compress(BODY)), "gzip, br") == (BODY, ())


def test_truncated_gzip_keeps_what_decoded_with_a_note() -> None:
    """A body cut short decodes as far as it goes and says so."""
    body, notes = decode_content(gzip.compress(BODY)[:-30], "gzip")
    assert BODY.startswith(body)
    assert body
    assert "truncated or corrupt" in notes[0]


def test_corrupt_and_unknown_encodings_are_noted_not_raised() -> None:
    """Garbage under br, and an encoding nobody knows, give notes and the bytes as they were."""
    assert "br body truncated or corrupt" in decode_content(b"not brotli at all", "br")[1][0]
    assert decode_content(b"abc", "compress")[1] == (
        "unknown content-encoding 'compress': body kept as received",
    )


def test_parse_json_handles_big_integers_text_and_invalid_utf8() -> None:
    """JSON with a 100-digit integer parses; HTML and invalid UTF-8 come back as text with notes."""
    assert parse_json(b'{"n": ' + b"9" * 100 + b"}")[0] == {"n": int("9" * 100)}
    text, notes = parse_json(b"<html>502</html>", "text/html; charset=utf-8")
    assert (text, notes) == ("<html>502</html>", ("body is not JSON (text/html, 16 bytes)",))
    assert parse_json(b"\xff\xfe")[1][1] == "body is not valid UTF-8"
    assert parse_json(b"  ") == (None, ())


@pytest.mark.parametrize(
    ("value", "pad"),
    [
        ({"n": 2**64}, 1),  # just beyond what orjson keeps exact
        ({"n": -(2**63) - 1}, 1),
        ({"n": int("9" * 40), "f": 1.5}, 1),
        ({"n": 2**70, "items": list(range(5000))}, 1),  # too many values to look at: the text decides
        ({"f": 1e19, "n": 2**64 - 1}, 1),  # a large float and the largest exact integer
        ({"f": 1e19, "n": 12}, 1),
        ({"e": [0.25] * 3000}, 1),
        ({"content": "1234567890" * 4000}, 0),  # long digit runs inside a string only
    ],
)
def test_parse_json_reads_large_bodies_exactly(value: Any, pad: int) -> None:
    """Bodies over 16 KiB take orjson first and check its floats (or, with too many values, the
    text) for integers it rounded: the result is always what the exact stdlib parser gives."""
    body = json.dumps({**value, "pad": "x" * 20_000 * pad}).encode()
    assert len(body) > 16 * 1024
    parsed, notes = parse_json(body)
    assert notes == ()
    assert parsed == json.loads(body)
    assert [type(v) for v in parsed.values()] == [type(v) for v in json.loads(body).values()]


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
        max_leaves=30,
    )
)
def test_parse_json_of_any_large_body_equals_the_stdlib(value: Any) -> None:
    body = json.dumps([value, "x" * 17_000]).encode()
    parsed, notes = parse_json(body)
    assert notes == ()
    assert repr(parsed) == repr(json.loads(body))


def test_sse_follows_the_whatwg_rules() -> None:
    """Multi-line data, CRLF, comments, event names, ids, no space after the colon, and a last
    event without its blank line (a stream cut off mid-event)."""
    raw = (
        b": keep-alive comment\r\n"
        b'event: message_start\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
        b"id: 7\ndata:no-space\n\n"
        b"data: [DONE]\n\n"
        b"event: tail\ndata: cut"
    )
    events = [(e.event, e.data, e.id) for e in iter_sse(raw)]
    assert events == [
        ("message_start", '{"a":\n1}', None),
        (None, "no-space", "7"),
        (None, "[DONE]", "7"),
        ("tail", "cut", "7"),
    ]


def test_ndjson_reports_a_bad_line_and_keeps_the_rest() -> None:
    """One bad line among good ones is a note with its line number."""
    out = list(iter_ndjson(b'{"a": 1}\nnot json\n\n{"b": 2}\n'))
    assert out[0] == ({"a": 1}, None)
    assert out[1][0] is None
    assert out[1][1] is not None and out[1][1].startswith("NDJSON line 2")
    assert out[2] == ({"b": 2}, None)


@settings(max_examples=300)
@given(
    data=st.binary(max_size=2000),
    encoding=st.sampled_from(["gzip", "deflate", "br", "zstd", "gzip, br", "??"]),
)
def test_decoding_arbitrary_bytes_never_raises(data: bytes, encoding: str) -> None:
    """Fuzz: any bytes under any encoding give bytes and notes, never an exception."""
    body, notes = decode_content(data, encoding)
    assert isinstance(body, bytes)
    assert isinstance(notes, tuple)


@settings(max_examples=300)
@given(data=st.binary(max_size=2000))
def test_framing_and_json_never_raise_on_arbitrary_bytes(data: bytes) -> None:
    """Fuzz: SSE, NDJSON and JSON parsing accept anything."""
    list(iter_sse(data))
    list(iter_ndjson(data))
    parse_json(data)
