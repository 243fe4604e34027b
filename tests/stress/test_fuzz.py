"""Fuzzing (issue 7, item 5): arbitrary and hostile bytes through everything the writer thread parses.

SSE and NDJSON framing, every content decoder (alone and stacked), JSON parsing, every registered
provider's parser on its own URLs (streaming and not), the whole capture -> record build, the
redactor and the stream-usage filter. The properties: nothing raises (a problem becomes a note),
every record encodes, redaction is idempotent, pathological inputs finish, and decompression bombs
stay bounded in memory. ``fuzz_atheris.py`` runs the same targets coverage-guided when atheris is
installed. The unit tests (tests/test_decode.py, tests/providers, tests/test_redact.py) pin exact
behaviour on small inputs; this file goes after arbitrary ones.
"""

from __future__ import annotations

import gc
import gzip
import json
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import brotli
import httpx
import httpx2
import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.stress.conftest import Figures

from llmaudit import AuditRecord, Redactor, providers

# private: the capture layer, driven directly below the public transports
from llmaudit.capture.streams import UsageChunkFilter
from llmaudit.providers import Exchange, compat
from llmaudit.record.bodies import (
    MAX_DECODED_BYTES,
    SSEEvent,
    _brotli_bounded,
    decode_content,
    iter_ndjson,
    iter_sse,
    parse_json,
)
from llmaudit.record.build import build_record
from llmaudit.record.codec import decode_record, dumps, encode_record
from llmaudit.record.raw import AuditContext, RawCapture

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MiB = 1024 * 1024

# -- strategies ------------------------------------------------------------------------------------

#: Pieces of SSE, NDJSON and JSON, and bytes that trip decoders: a soup of them reaches deeper
#: into the parsers than uniform random bytes.
FRAGMENTS = (
    b"data: ",
    b"data:",
    b"event: ",
    b"id: ",
    b"retry: 10",
    b": keep-alive",
    b"\r\n",
    b"\n",
    b"\r",
    b"\n\n",
    b"\r\n\r\n",
    b"[DONE]",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b",",
    b":",
    b" ",
    b'"choices"',
    b'"delta"',
    b'"type"',
    b'"usage"',
    b'"choices":[]',
    b"message_stop",
    b'"done":true',
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",  # a UTF-8-encoded lone surrogate
    b"\x00",
    b"99999999999999999999999",
    b"-1e999",
    b"NaN",
    b"\\ud800",
    b"true",
    b"null",
)
soups = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=12), max_size=80).map(b"".join)

#: Field names the provider parsers look for, so hostile JSON lands on their code paths with the
#: wrong types (``"choices": 5``, ``"candidates": {}``, ``"index": "x"``…).
_KEYS_TEXT = """
choices index delta content text role tool_calls function name arguments id type finish_reason
usage prompt_tokens completion_tokens total_tokens input_tokens output_tokens model x_groq
response output_index content_index item_id message content_block partial_json thinking
signature stop_reason stop_sequence error candidates parts finishReason usageMetadata
promptTokenCount candidatesTokenCount thoughtsTokenCount totalTokenCount modelVersion responseId
thought tool_plan meta tokens billed_units prompt_eval_count eval_count done refusal
reasoning_content
"""
KEYS = tuple(_KEYS_TEXT.split())
_EVENT_TYPES_TEXT = """
message_start content_block_start content_block_delta message_delta message_stop error
text_delta input_json_delta thinking_delta signature_delta response.created
response.output_text.delta response.function_call_arguments.delta response.completed
response.incomplete message-start content-start content-delta tool-plan-delta tool-call-start
tool-call-delta message-end
"""
EVENT_TYPES = tuple(_EVENT_TYPES_TEXT.split())
wild_text = st.text(st.characters(exclude_categories=()), max_size=20)  # lone surrogates included
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, -(10**30), 10**40, 0, -1]),
    st.floats(),  # NaN and ±Infinity too: json.dumps writes them and the stdlib parser reads them
    wild_text,
    st.sampled_from(EVENT_TYPES),
)
shaped = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=6)
    ),
    max_leaves=30,
)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def sse(events: list[tuple[str | None, bytes]]) -> bytes:
    out = b""
    for name, data in events:
        if name is not None:
            out += f"event: {name}\n".encode()
        out += b"data: " + data + b"\n\n"
    return out


event_data = shaped.map(json_bytes) | soups | st.just(b"[DONE]")
sse_bodies = st.lists(st.tuples(st.none() | st.sampled_from(EVENT_TYPES), event_data), max_size=10).map(sse)
ndjson_bodies = st.lists(shaped.map(json_bytes) | soups, max_size=10).map(b"\n".join)
json_bodies = shaped.map(json_bytes)
json_arrays = st.lists(shaped, max_size=6).map(json_bytes)  # Gemini's stream without alt=sse
whole_bodies = st.one_of(st.binary(max_size=2000), soups, sse_bodies, ndjson_bodies, json_bodies, json_arrays)
bodies = whole_bodies | st.builds(lambda b, f: b[: int(len(b) * f)], whole_bodies, st.floats(0, 1))

_USAGE = {
    "prompt_tokens": 3,
    "completion_tokens": 5,
    "total_tokens": 8,
    "input_tokens": 3,
    "output_tokens": 5,
}
#: Real messages of each shape the parsers read (see tests/providers), by parser family: mutating a
#: few of their values into the wrong type reaches the parsers' deep branches far more often than
#: random JSON does.
TEMPLATES: dict[str, tuple[Any, ...]] = {
    "openai": (
        {
            "id": "chatcmpl-1",
            "created": 1,
            "model": "gpt-4o",
            "system_fingerprint": "fp",
            "choices": [
                {
                    "index": 0,
                    "text": "t",
                    "finish_reason": None,
                    "delta": {
                        "role": "assistant",
                        "content": "Hi",
                        "refusal": None,
                        "reasoning_content": "r",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{"},
                            }
                        ],
                    },
                }
            ],
            "usage": _USAGE,
            "x_groq": {"usage": _USAGE},
        },
        {"model": "gpt-4o", "choices": [{"index": 0, "message": {"content": "Hi"}}], "usage": _USAGE},
        {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-4o", "usage": _USAGE}},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hi"},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{"},
        {"type": "response.completed", "response": {"id": "resp_1", "output": [], "usage": _USAGE}},
    ),
    "anthropic": (
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "claude", "content": [], "usage": _USAGE},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "input": {}},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
        },
        {"type": "content_block_delta", "index": 2, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "signature_delta", "signature": "s"}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": _USAGE,
        },
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"id": "msg_1", "model": "claude", "content": [{"type": "text", "text": "Hi"}], "usage": _USAGE},
        {"input_tokens": 3},
    ),
    "cohere": (
        {"type": "message-start", "id": "c1", "delta": {"message": {"role": "assistant"}}},
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hi"}}}},
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "plan"}}},
        {
            "type": "tool-call-start",
            "index": 0,
            "delta": {"message": {"tool_calls": {"id": "t", "function": {"name": "f", "arguments": "{"}}}},
        },
        {
            "type": "message-end",
            "delta": {
                "finish_reason": "COMPLETE",
                "usage": {
                    "tokens": {"input_tokens": 3, "output_tokens": 5},
                    "billed_units": {"input_tokens": 3},
                },
            },
        },
        {
            "id": "c1",
            "message": {"content": []},
            "usage": {"tokens": _USAGE},
            "meta": {"billed_units": _USAGE},
        },
    ),
    "gemini": (
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "Hi"}, {"text": "hm", "thought": True}, {"x": 1}],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 3,
                "candidatesTokenCount": 5,
                "thoughtsTokenCount": 2,
                "totalTokenCount": 10,
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r",
        },
    ),
    "ollama": (
        {
            "model": "llama3",
            "message": {"role": "assistant", "content": "Hi", "tool_calls": [{"function": {"name": "f"}}]},
            "response": "Hi",
            "done": True,
            "prompt_eval_count": 3,
            "eval_count": 5,
        },
    ),
}
ALL_TEMPLATES = tuple(t for family in TEMPLATES.values() for t in family)
CONFUSERS = st.sampled_from(
    [None, 0, -1, 7, 2**70, -(2**64), 1.5, True, "", "x", "[DONE]", [], [1], [None], [[]], {}, {"a": 1}, [{}]]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, family: str | None = None) -> Any:
    """A provider message with a few of its values (or whole sub-objects) swapped for wrong types."""
    value = draw(st.sampled_from(TEMPLATES[family] if family else ALL_TEMPLATES))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(value))))
        value = _replaced(value, path, draw(CONFUSERS | shaped))
    return value


def provider_bodies(family: str | None = None) -> st.SearchStrategy[bytes]:
    """Bodies in the shapes a parser family reads, mutated; with arbitrary bodies now and then."""
    messages = mutated(family) | st.sampled_from(TEMPLATES[family] if family else ALL_TEMPLATES)
    events = st.tuples(
        st.none() | st.sampled_from(EVENT_TYPES), messages.map(json_bytes) | st.just(b"[DONE]")
    )
    return st.one_of(
        st.lists(events, min_size=1, max_size=8).map(sse),
        st.lists(messages.map(json_bytes), min_size=1, max_size=8).map(b"\n".join),
        messages.map(json_bytes),
        st.lists(messages, max_size=5).map(json_bytes),
        bodies,
    )


# -- routes: every registered provider, on URLs its own match() claims ---------------------------

_HOSTS = (
    "api.openai.com",
    "myres.openai.azure.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "europe-west4-aiplatform.googleapis.com",
    "api.cohere.com",
    "api.mistral.ai",
    *(p.host for p in compat.HOSTED),
    "localhost",
)
_OPENAI_SUFFIXES_TEXT = """
chat/completions completions fim/completions responses embeddings audio/transcriptions
audio/translations audio/speech images/generations moderations agents/completions files
"""
_OPENAI_SUFFIXES = tuple(_OPENAI_SUFFIXES_TEXT.split())
_PATHS = (
    *(
        f"{prefix}/{suffix}"
        for prefix in ("/v1", "/openai/deployments/dep", "/openai/v1")
        for suffix in _OPENAI_SUFFIXES
    ),
    *(f"/openai/v1/{suffix}" for suffix in ("chat/completions", "responses")),
    "/chat/completions",
    "/api/v1/chat/completions",
    "/inference/v1/chat/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/complete",
    "/v1/messages/batches",
    *(
        f"/v1beta/models/gemini-2.5-flash:{method}"
        for method in (
            "generateContent",
            "streamGenerateContent",
            "embedContent",
            "batchEmbedContents",
            "countTokens",
        )
    ),
    "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:streamGenerateContent",
    "/v2/chat",
    "/v2/embed",
    "/v2/rerank",
    "/v1/chat",
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
)


def _routes() -> list[tuple[str, str, str, str]]:
    """(provider, operation, host, path): a URL for every operation a registered provider claims, and
    for every last path segment (Gemini streams by path, ``:streamGenerateContent``, not by operation)."""
    found: dict[tuple[str, str, str], tuple[str, str]] = {}
    for host in _HOSTS:
        for path in _PATHS:
            matched = providers.match(host, path)
            if matched is not None:
                found.setdefault((matched[0].name, matched[1], path.rsplit("/", 1)[-1]), (host, path))
    return [(name, op, host, path) for (name, op, _), (host, path) in sorted(found.items())]


ROUTES = _routes()
STREAM_TYPES = ("text/event-stream", "application/x-ndjson", "application/json", "text/plain", "")


def test_every_registered_provider_is_fuzzed_on_its_own_urls() -> None:
    """A provider added to the registry without a URL here would escape the fuzzing below."""
    # the gateways parse as the provider they forward to, and Anthropic's shape on other hosts needs
    # its header (both covered in tests/providers/test_provider_matching.py); the other shapes count
    # private: the provider registry's own list, compared with the gateways
    registered = {p.name for p in providers._providers if p not in compat.GATEWAYS}
    registered |= {p.name for p in providers._shapes.SHAPES} - {"anthropic_compatible"}
    assert {name for name, *_ in ROUTES} == registered
    assert len(ROUTES) >= 2 * len(registered)  # several operations each, not one URL per provider


# -- framing and JSON ------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=3000) | soups | sse_bodies)
@example(data=b"data: a\r\rdata: b\r\n\r\n:c\rid: 1\r")
def test_sse_framing_takes_any_bytes(data: bytes) -> None:
    """Any bytes frame into events whose fields hold no line break, the same whatever the line
    endings (CR, LF, CRLF are equivalent per WHATWG), and never more events than blank lines + 1."""
    events = list(iter_sse(data))
    assert all(isinstance(e, SSEEvent) for e in events)
    for event in events:
        assert "\r" not in event.data
        for field in (event.event, event.id):
            assert field is None or ("\n" not in field and "\r" not in field)
    unix = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    assert list(iter_sse(unix)) == events
    assert len(events) <= unix.count(b"\n\n") + 1


@FUZZ
@given(data=st.binary(max_size=3000) | soups | ndjson_bodies)
def test_ndjson_framing_takes_any_bytes(data: bytes) -> None:
    """One item per non-blank line, each a JSON value or a note naming its line; values encode."""
    items = list(iter_ndjson(data))
    assert len(items) == sum(1 for line in data.split(b"\n") if line.strip())
    for value, note in items:
        if note is None:
            dumps(value)
        else:
            assert value is None
            assert note.startswith("NDJSON line ")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**300), 10**300)
    | st.floats(allow_nan=False)
    | wild_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(wild_text, children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(value=json_values, pad=st.sampled_from(["", " ", "\n\t "]))
@example(value=10**22, pad="")  # a bare big integer: orjson would have made it a float
@example(value=-(2**63) - 1, pad=" ")
def test_parse_json_reads_every_json_value_exactly(value: Any, pad: str) -> None:
    """Whatever JSON a server sends comes back exactly: big integers stay integers, lone
    surrogates survive, Infinity is read."""
    body = (pad + json.dumps(value) + pad).encode()
    assert parse_json(body) == (value, ())


@FUZZ
@given(data=st.binary(max_size=3000) | soups | json_bodies, ctype=st.none() | st.text(max_size=30))
def test_parse_json_takes_any_bytes(data: bytes, ctype: str | None) -> None:
    """Anything not JSON comes back as text with a note saying so; every answer encodes."""
    value, notes = parse_json(data, ctype)
    dumps(value)
    if notes:
        assert isinstance(value, str)
        assert notes[0].startswith("body is not JSON")


cut_json = st.builds(lambda b, f: b[: int(len(b) * f)], json_bodies | json_arrays, st.floats(0, 1))


@FUZZ
@given(data=soups | json_bodies | cut_json | st.builds(bytes.__add__, cut_json, soups))
@example(data=b'{"a": [1, 2')  # cut short: orjson's verdict stands, the stdlib is not asked again
@example(data=b"\xef\xbb\xbf[1]")  # a BOM, which only the stdlib reads
@example(data='{"a": 1}'.encode("utf-16-le"))
def test_parse_json_shortcuts_never_change_the_answer(data: bytes) -> None:
    """parse_json skips parsers that cannot succeed (to spare their costly error paths); the answer is
    still the stdlib's: the same value when it reads the body, text with a note when it cannot."""
    value, notes = parse_json(data)
    if not data.strip():
        return
    try:
        expected = json.loads(data)
    except (ValueError, RecursionError):
        assert notes
        assert notes[0].startswith("body is not JSON")
    else:
        assert not notes
        assert dumps(value) == dumps(expected)


# -- content decoding ------------------------------------------------------------------------------


def _zstd_stream(data: bytes) -> bytes:
    compressor = zstandard.ZstdCompressor().compressobj()  # frames without a content size
    return compressor.compress(data) + compressor.flush()


#: name -> (Content-Encoding token, encoder)
ENCODERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "deflate": ("deflate", zlib.compress),
    "deflate-raw": ("deflate", lambda b: zlib.compress(b)[2:-4]),
    "br": ("br", brotli.compress),
    "zstd": ("zstd", zstandard.ZstdCompressor().compress),
    "zstd-stream": ("zstd", _zstd_stream),
    "identity": ("identity", lambda b: b),
}


def _encode(payload: bytes, names: list[str]) -> tuple[bytes, str, list[bytes]]:
    """*payload* under each coding in turn: (body, Content-Encoding, every intermediate layer)."""
    layers = [payload]
    for name in names:
        layers.append(ENCODERS[name][1](layers[-1]))
    return layers[-1], ", ".join(ENCODERS[n][0] for n in names), layers


codings = st.lists(st.sampled_from(sorted(ENCODERS)), min_size=1, max_size=3)


@FUZZ
@given(payload=st.binary(max_size=3000) | soups, names=codings)
def test_every_encoding_and_stack_round_trips(payload: bytes, names: list[str]) -> None:
    """Any body under any stack of codings decodes exactly, with no note."""
    body, header, _ = _encode(payload, names)
    assert decode_content(body, header) == (payload, ())


@FUZZ
@given(payload=st.binary(min_size=1, max_size=3000) | soups, names=codings, cut=st.floats(0, 1))
def test_a_cut_body_decodes_to_a_prefix_with_a_note(payload: bytes, names: list[str], cut: float) -> None:
    """A body cut short (a cancelled download) gives the beginning of some layer, never other bytes,
    and says so: for every coding, truncated is a note, not an exception and not silence."""
    body, header, layers = _encode(payload, names)
    short = body[: min(int(len(body) * cut), len(body) - 1)]
    decoded, notes = decode_content(short, header)
    assert decoded == short or any(layer.startswith(decoded) for layer in layers)
    if short and set(names) != {"identity"}:
        assert notes


@FUZZ
@given(
    data=st.binary(max_size=3000) | soups,
    header=st.lists(
        st.sampled_from(
            ["gzip", "x-gzip", "deflate", "br", "zstd", "identity", "compress", "??", " GZIP ", ""]
        ),
        max_size=4,
    ).map(", ".join),
    damage=st.binary(min_size=1, max_size=4),
    where=st.floats(0, 1),
    names=codings,
)
def test_decoding_arbitrary_and_damaged_bytes_never_raises(
    data: bytes, header: str, damage: bytes, where: float, names: list[str]
) -> None:
    """Random bytes under any header, and valid bodies with bytes overwritten, give bytes and notes."""
    for body, coding in ((data, header), _damaged(data, names, damage, where)):
        decoded, notes = decode_content(body, coding)
        assert isinstance(decoded, bytes)
        assert len(decoded) <= max(MAX_DECODED_BYTES, len(body))
        assert all(isinstance(n, str) for n in notes)


def _damaged(payload: bytes, names: list[str], damage: bytes, where: float) -> tuple[bytes, str]:
    body, header, _ = _encode(payload, names)
    at = int(len(body) * where)
    return body[:at] + damage + body[at + len(damage) :], header


# -- provider parsers ------------------------------------------------------------------------------


INT64 = 2**63


def _check_counts(*counts: int | None) -> None:
    """Token counts are ints that fit the SQL storage's BIGINT columns, or None."""
    for count in counts:
        assert count is None or (type(count) is int and -INT64 <= count < INT64)


def _check_parsed(parsed: providers.Parsed) -> None:
    _check_counts(parsed.input_tokens, parsed.output_tokens, parsed.total_tokens)
    assert parsed.model is None or isinstance(parsed.model, str)
    assert all(isinstance(note, str) for note in parsed.notes)
    orjson.loads(dumps([parsed.response, parsed.model, parsed.operation, parsed.notes]))


#: Each provider's parser family: the templates its parser reads.
FAMILIES = {
    "anthropic": "anthropic",
    "cohere": "cohere",
    "gemini": "gemini",
    "gemini_compatible": "gemini",
    "ollama": "ollama",
}


@pytest.mark.parametrize("family", sorted(TEMPLATES))
@settings(FUZZ, max_examples=300)
@given(
    data=st.data(),
    request=st.none() | shaped | mutated(),
    stream=st.booleans(),
    ctype=st.sampled_from(STREAM_TYPES),
    status=st.none() | st.sampled_from([200, 400, 429, 500]),
)
def test_every_provider_parser_reads_hostile_bodies_without_failing(
    family: str, data: st.DataObject, request: Any, stream: bool, ctype: str, status: int | None
) -> None:
    """Each provider's own parser (not the registry's fallback) reads any body, streaming or not:
    wrong types where it expects objects, cut streams, invalid UTF-8. Its result encodes."""
    routes = [r for r in ROUTES if FAMILIES.get(r[0], "openai") == family]
    route = data.draw(st.sampled_from(routes), label="route")
    body = data.draw(provider_bodies(family), label="body")
    _parses_cleanly(route, body, request, stream, ctype, status)


def _parses_cleanly(
    route: tuple[str, str, str, str], body: bytes, request: Any, stream: bool, ctype: str, status: int | None
) -> None:
    name, operation, host, path = route
    exchange = Exchange("POST", host, path, {}, {}, request, status, {"content-type": ctype}, body, stream)
    parsed = providers.parse(exchange)
    assert (parsed.provider, parsed.operation) == (name, operation)
    assert not [note for note in parsed.notes if "parser failed" in note]
    _check_parsed(parsed)


CHAT = ("openai", "chat.completions", "api.openai.com", "/v1/chat/completions")
GEMINI_STREAM = (
    "gemini",
    "generate_content",
    "generativelanguage.googleapis.com",
    "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
)
OLLAMA_CHAT = ("ollama", "chat", "localhost", "/api/chat")


@settings(FUZZ, max_examples=300)
@given(route=st.sampled_from(ROUTES), body=provider_bodies(), stream=st.booleans())
# Each of these made its provider's parser raise (the record kept only the raw body) before the fix:
@example(route=CHAT, body=b'data: {"choices": 7}\n\n', stream=True)
@example(route=CHAT, body=b'data: {"choices": [{"delta": {"tool_calls": 5}}]}\n\n', stream=True)
@example(
    route=("openai", "responses", "api.openai.com", "/v1/responses"),
    body=b'data: {"type": "response.output_text.delta", "output_index": [], "delta": "a"}\n\n',
    stream=True,
)
@example(route=GEMINI_STREAM, body=b'data: {"candidates": {"a": 1}}\n\n', stream=True)
@example(route=GEMINI_STREAM, body=b'data: {"candidates": [{"content": {"parts": 5}}]}\n\n', stream=True)
@example(
    route=("anthropic", "messages", "api.anthropic.com", "/v1/messages"),
    body=b'data: {"type": "message_start", "message": {"usage": "x"}}\n\n'
    b'data: {"type": "message_delta", "usage": {"output_tokens": 1}}\n\n',
    stream=True,
)
@example(route=OLLAMA_CHAT, body=b'{"message": "x", "done": true}\n', stream=True)
@example(route=OLLAMA_CHAT, body=b'{"message": {"tool_calls": 5}}\n', stream=True)
# a token count no BIGINT column holds: the SQL storages refused the whole record
@example(route=CHAT, body=b'{"usage": {"prompt_tokens": 100000000000000000000}}', stream=False)
def test_provider_parsers_on_any_route(route: tuple[str, str, str, str], body: bytes, stream: bool) -> None:
    """Any message shape on any provider's URL, and the regressions the fuzzing found."""
    _parses_cleanly(route, body, None, stream, "text/event-stream" if stream else "application/json", 200)


#: One of each kind of wrong type: null, numbers (one beyond 64 bits), a bool, a string, an array, an object.
WRONG_TYPES = (None, -1, 2**70, 1.5, True, "x", [1], {"a": 1})


@pytest.mark.parametrize("family", sorted(TEMPLATES))
def test_every_field_of_every_message_may_have_the_wrong_type(family: str) -> None:
    """Systematically, where the fuzzing above samples: in a whole conversation of a family's
    messages, each value (or sub-object) in turn replaced by each wrong type, on each of the family's
    URLs, as a stream (SSE and NDJSON) and as one JSON body. The provider's own parser reads them all,
    and its conversation reader (the record's flat text) reads the result and the message as a request."""
    templates = TEMPLATES[family]
    routes = [r for r in ROUTES if FAMILIES.get(r[0], "openai") == family]
    for number, template in enumerate(templates):
        for path in list(_paths(template)):
            for wrong in WRONG_TYPES:
                message = _replaced(template, path, wrong)
                conversation = [*templates[:number], message, *templates[number + 1 :]]
                bodies = (
                    (sse([(None, json_bytes(m)) for m in conversation]), True),
                    (b"\n".join(map(json_bytes, conversation)), True),
                    (json_bytes(message), False),
                )
                for name, operation, host, url_path in routes:
                    for body, stream in bodies:
                        exchange = Exchange("POST", host, url_path, {}, {}, message, 200, {}, body, stream)
                        parsed = providers.parse(exchange)
                        failed = [note for note in parsed.notes if "parser failed" in note]
                        assert not failed, (name, operation, url_path, path, wrong, stream, failed)
                        _check_counts(parsed.input_tokens, parsed.output_tokens, parsed.total_tokens)
                        *_, notes = providers.flat_text(
                            parsed.provider, parsed.operation, message, parsed.response
                        )
                        unread = [note for note in notes if "not read" in note]
                        assert not unread, (name, operation, url_path, path, wrong, stream, unread)


# -- the whole capture -> record build, then the redactor ----------------------------------------

HEADER_BYTES = st.binary(max_size=12).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"")
)
CONTENT_ENCODINGS = (
    "",
    "identity",
    "gzip",
    "deflate",
    "br",
    "zstd",
    "gzip, br",
    "zstd, gzip",
    "compress",
    "GZIP",
)
SECRET = "SECRETQUERYVALUE"


@st.composite
def captures(draw: st.DrawFn, hx: ModuleType) -> tuple[RawCapture, str]:
    """A RawCapture as the transport would hand it to the writer, with hostile contents."""
    name, _, host, path = draw(st.sampled_from(ROUTES))
    query = draw(
        st.lists(st.tuples(st.sampled_from(["key", "alt", "api-key", "x"]), st.text(max_size=8)), max_size=3)
    )
    if draw(st.booleans()):
        query.append(("key", SECRET))
    url = f"https://{host}{path}" + (f"?{urlencode(query)}" if query else "")
    request_body = draw(json_bodies | st.binary(max_size=300))
    request_encoding = draw(st.sampled_from(CONTENT_ENCODINGS))
    request_headers = [
        (
            b"content-type",
            draw(st.sampled_from([b"application/json", b"multipart/form-data; b=x", b""]) | HEADER_BYTES),
        ),
        (b"content-encoding", request_encoding.encode()),
        (
            b"x-stainless-retry-count",
            draw(st.sampled_from([b"1", b"12", b"\xb2", b"-1", b"\xb9\xb3"]) | HEADER_BYTES),
        ),
    ]
    if draw(st.booleans()):  # a streaming upload, never buffered: only its metadata is recorded
        request = hx.Request("POST", url, content=iter([request_body]), headers=request_headers)
    else:
        request = hx.Request("POST", url, content=request_body, headers=request_headers)
    names = draw(st.lists(st.sampled_from(["gzip", "deflate", "br", "zstd"]), max_size=2))
    payload = draw(provider_bodies())
    body, header, _ = _encode(payload, names) if draw(st.booleans()) else (payload, ", ".join(names), [])
    header = draw(st.sampled_from([header, *CONTENT_ENCODINGS]))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    chunks = tuple(body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True))
    response_headers = hx.Headers(
        [
            (b"content-type", draw(st.sampled_from([t.encode() for t in STREAM_TYPES]) | HEADER_BYTES)),
            (b"content-encoding", header.encode()),
            (b"content-length", draw(st.sampled_from([b"12", b"\xb2", b"x"]) | HEADER_BYTES)),
            (b"x-request-id", draw(HEADER_BYTES)),
            (b"retry-after", draw(HEADER_BYTES)),
        ]
    )
    context = draw(
        st.none()
        | st.builds(
            AuditContext,
            session_key=st.none() | st.text(max_size=255),  # session() refuses longer keys
            user=st.none() | st.text(max_size=10),
            tags=st.lists(st.text(max_size=10), max_size=2).map(tuple),
            metadata=st.dictionaries(st.text(max_size=5), shaped, max_size=2),
            client=st.none() | st.text(max_size=300),
            parent_id=st.none() | st.integers(0, 2**128 - 1) | st.text(max_size=36),
        )
    )
    raw = RawCapture(
        request=request,
        started_at=draw(st.floats(0, 4e9)),
        status_code=draw(st.none() | st.integers(100, 599)),
        response_headers=draw(st.sampled_from([response_headers, None])),
        chunks=chunks,
        truncated=draw(st.booleans()),
        incomplete=draw(st.booleans()),
        error=draw(st.none() | st.text(max_size=40)),
        duration_ms=draw(st.floats(0, 1e7)),
        ttft_ms=draw(st.none() | st.floats(0, 1e7)),
        context=context,
        client=draw(st.none() | st.text(max_size=300)),
        capture="llm",
        notes=tuple(draw(st.lists(st.text(max_size=20), max_size=2))),
        decoded=draw(st.booleans()),
    )
    return raw, name


def _redacted_twice(record: AuditRecord) -> tuple[bytes, bytes]:
    redactor = Redactor(hash_key=b"fuzz")
    once = redactor(record)
    assert once is not None
    twice = redactor(once)
    assert twice is not None
    assert redactor.failures == 0
    return encode_record(once), encode_record(replace(twice, notes=once.notes))


@pytest.mark.parametrize("hx", [httpx, httpx2], ids=["httpx", "httpx2"])
@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_any_capture_becomes_a_record_that_encodes_and_redacts(hx: ModuleType, data: st.DataObject) -> None:
    """The writer's whole path over hostile captures: build_record never falls back to its minimal
    record, the record encodes and decodes back to the same bytes, the provider that claims the URL
    is the one named, secret query values are masked, and redaction is idempotent."""
    raw, provider = data.draw(captures(hx))
    record = build_record(raw)
    assert not [n for n in record.notes if n.startswith("record could not be built")]
    assert record.provider == provider
    assert SECRET not in (record.url or "")
    _check_counts(record.input_tokens, record.output_tokens, record.total_tokens)
    assert 0 <= record.attempt < 2**31
    encoded = encode_record(record)
    assert encode_record(decode_record(encoded)) == encoded
    once, twice = _redacted_twice(record)
    assert once == twice


@pytest.mark.parametrize(
    ("value", "size"),
    [(b"\xb2", None), (b"\xb9\xb3", None), (b"9" * 5000, None), (b"99999999999", 99999999999)],
)
def test_header_counts_that_int_cannot_read_do_not_sink_the_record(value: bytes, size: int | None) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises, and int() refuses 5000 digits: a retry-count
    or content-length header like that made build_record fall back to its minimal record. A retry
    count too wide for its 32-bit column is dropped too (the SQL storages refused the record)."""
    request = httpx.Request(
        "POST",
        "https://api.openai.com/v1/audio/transcriptions",
        content=iter([b"x"]),
        headers=[(b"x-stainless-retry-count", value), (b"content-length", value)],
    )
    raw = RawCapture(request, time.time(), 200, None, (), False, False, None, 1.0, None, None, None, "llm")
    record = build_record(raw)
    assert record.operation == "audio.transcriptions"
    assert record.attempt == 0
    assert isinstance(record.request, dict)
    assert record.request.get("bytes") == size


def test_a_method_longer_than_its_column_is_cut_with_a_note() -> None:
    """HTTP allows any token as a method; one longer than the 16-character column made the record
    fall back to its minimal form (found by the fuzzing review). It is cut, with a note."""
    request = httpx.Request("X" * 40, "https://api.openai.com/v1/chat/completions", content=b"{}")
    raw = RawCapture(request, time.time(), 200, None, (), False, False, None, 1.0, None, None, None, "llm")
    record = build_record(raw)
    assert record.method == "X" * 16 and record.operation == "chat.completions"
    assert any(note.startswith("method cut to 16") for note in record.notes)


wild_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**64, -(2**70), 10**100])
    | st.floats()
    | wild_text
    | st.sampled_from(
        ["sk-TESTFAKE0123456789abcdefXYZ", "data:image/png;base64," + "QUFB" * 300, "é" * 70, "a" * 257]
    )
    | st.builds(lambda a, b: a + "sk-TESTFAKE0123456789abcdefXYZ" + b, wild_text, wild_text),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(wild_text | st.integers(), children, max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(
    request=wild_values, response=wild_values, metadata=st.dictionaries(wild_text, wild_values, max_size=3)
)
def test_redactor_on_wild_values_never_raises_encodes_and_is_idempotent(
    request: Any, response: Any, metadata: dict[str, Any]
) -> None:
    """Values outside what a parser yields (lone surrogates, NaN, ints beyond 64 bits, tuples, int
    keys, strings around the size limit): redaction encodes, is a fixed point, and the fake key in
    them is gone."""
    record = AuditRecord(request=request, response=response, metadata=metadata)
    once, twice = _redacted_twice(record)
    assert once == twice
    assert b"sk-TESTFAKE0123456789" not in once


# -- the stream-usage filter (stream_usage=True, on the caller's thread) -------------------------

USAGE_EVENT = b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":1}}\n\n'


def _events(data: bytes) -> list[SSEEvent]:
    return list(iter_sse(data))


@FUZZ
@given(
    data=st.lists(soups | sse_bodies | st.just(USAGE_EVENT), max_size=6).map(b"".join),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
)
@example(data=b"data: \r\n\n\n" + USAGE_EVENT, cuts=[9])  # CRLFs normalised in one block only: same events
@example(data=b"\r\n\n\n" + USAGE_EVENT, cuts=[4])  # the usage event after an extra line end
def test_usage_filter_output_does_not_depend_on_chunking(data: bytes, cuts: list[int]) -> None:
    """However the network splits the stream, the caller receives the same events; a stream with no
    usage-only event passes through byte for byte, and the usage-only event never reaches the caller."""
    whole = UsageChunkFilter()
    expected = whole.feed(data) + whole.end()
    points = sorted({c for c in cuts if c < len(data)})
    chunked = UsageChunkFilter()
    pieces = [chunked.feed(data[a:b]) for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    out = b"".join(pieces) + chunked.end()
    assert _events(out) == _events(expected)
    if b'"choices":[]' not in data.replace(b" ", b""):
        assert out == data
    if data.startswith(USAGE_EVENT):
        assert not out.startswith(USAGE_EVENT)


# -- no hang -------------------------------------------------------------------------------------

#: A hang detector, not a speed test: each of these finishes in well under a second to a few
#: seconds; 60 s only separates "slow machine" from "never finishes" (or quadratic blow-up).
HANG_LIMIT_S = 60.0


def finishes(label: str, target: Callable[[], object]) -> None:
    """Run *target* on a worker thread; fail if it raises or has not finished after HANG_LIMIT_S."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the test thread below
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, name=f"fuzz-{label}", daemon=True)
    worker.start()
    worker.join(HANG_LIMIT_S)
    assert not worker.is_alive(), f"{label} has not finished after {HANG_LIMIT_S:.0f} s: a hang"
    if outcome[0] is not None:
        raise AssertionError(f"{label} raised") from outcome[0]


def _tiny_events(count: int) -> bytes:
    """*count* one-token stream events, each provider's shape in turn (SSE; Ollama's as NDJSON lines)."""
    call = {"index": 0, "function": {"arguments": "b"}}
    shapes = [
        b"data: " + json_bytes(message) + b"\n\n"
        for message in (
            {"choices": [{"index": 0, "delta": {"content": "a", "tool_calls": [call]}}]},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}},
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "["},
            },
            {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "a"},
            {"type": "response.function_call_arguments.delta", "item_id": "i", "delta": "a"},
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "a"}}}},
            {
                "type": "tool-call-delta",
                "index": 0,
                "delta": {"message": {"tool_calls": {"function": call["function"]}}},
            },
            {"candidates": [{"content": {"parts": [{"text": "a"}]}}]},
        )
    ]
    shapes.append(b'{"message":{"content":"a"},"response":"a","done":false}\n')
    return b"".join(shapes[i % len(shapes)] for i in range(count))


PATHOLOGICAL: dict[str, Callable[[], bytes]] = {
    "8 MiB without a newline": lambda: b"data: " + b"a" * (8 * MiB),
    "8 MiB of digits": lambda: b'{"n":' + b"9" * (8 * MiB) + b"}",
    "100k tiny SSE events": lambda: _tiny_events(100_000),
    "1e5-deep brackets": lambda: b"[" * 100_000 + b"]" * 100_000,
    "1e5-deep objects in an event": lambda: b"data: " + b'{"a":' * 100_000 + b"\n\n" + b'{"a":' * 100_000,
    "1 MiB of data: lines": lambda: b"data:\n" * (MiB // 6) + b"data: x\n" * (MiB // 8),
    "4 MiB of \\r": lambda: b"\r" * (4 * MiB),
}

#: One streaming route per parser family, so each assembler gets every pathological body.
_STREAM_ROUTES = [
    r
    for r in ROUTES
    if (r[0], r[1])
    in {
        ("openai", "chat.completions"),
        ("openai", "completions"),
        ("openai", "responses"),
        ("anthropic", "messages"),
        ("cohere", "chat"),
        ("gemini", "generate_content"),
        ("ollama", "chat"),
        ("ollama", "generate"),
    }
]


def _feed_in_chunks(data: bytes, size: int) -> None:
    usage_filter = UsageChunkFilter()
    for start in range(0, len(data), size):
        usage_filter.feed(data[start : start + size])
    usage_filter.end()


def _build_path(data: bytes) -> None:
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions", content=data)
    headers = httpx.Headers({"content-type": "text/event-stream"})
    raw = RawCapture(
        request, time.time(), 200, headers, (data,), False, False, None, 1.0, None, None, None, "llm"
    )
    record = build_record(raw)
    assert not [n for n in record.notes if n.startswith("record could not be built")]
    redacted = Redactor()(record)
    assert redacted is not None
    encode_record(redacted)


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_inputs_finish(name: str) -> None:
    """Huge lines, many tiny events, 1e5-deep nesting (RecursionError must not escape), long runs of
    one character: every parser, every stream assembler and the whole build path finish."""
    data = PATHOLOGICAL[name]()
    finishes("iter_sse", lambda: list(iter_sse(data)))
    finishes("iter_ndjson", lambda: list(iter_ndjson(data)))
    finishes("parse_json", lambda: parse_json(data))
    finishes("usage filter, 4 KiB chunks", lambda: _feed_in_chunks(data, 4096))
    for provider, operation, host, path in _STREAM_ROUTES:
        for stream in (True, False):
            exchange = Exchange("POST", host, path, {}, {}, None, 200, {}, data, stream)
            finishes(
                f"{provider} {operation} stream={stream}",
                lambda e=exchange: _check_parsed(providers.parse(e)),
            )
    finishes("capture -> record -> redactor", lambda: _build_path(data))


def test_deep_but_parseable_json_still_gives_a_record_that_encodes() -> None:
    """orjson reads 1024 levels of nesting but writes only 254: a body nested in between still
    becomes a record that encodes (the codec cuts what it cannot write), redactor on or off."""
    for depth in (253, 300, 1000):
        body = b"[" * depth + b"]" * depth
        request = httpx.Request("POST", "https://api.openai.com/v1/embeddings", content=body)
        headers = httpx.Headers({"content-type": "application/json"})
        raw = RawCapture(
            request, time.time(), 200, headers, (body,), False, False, None, 1.0, None, None, None, "llm"
        )
        record = build_record(raw)
        assert isinstance(record.response, list)
        assert orjson.loads(encode_record(record))["response"]
        assert orjson.loads(dumps(record.request))


# -- memory: decompression bombs -----------------------------------------------------------------

BOMB_BYTES = 256 * MiB  # of zeros, four times MAX_DECODED_BYTES
#: What a decoder may hold at its peak: the pieces and their join (twice the limit, as zlib's own
#: decompress does), plus one step of slack. Far below the bomb's size.
PEAK_LIMIT = 2 * MAX_DECODED_BYTES + 16 * MiB


def _streamed(compress: Callable[[bytes], bytes], flush: Callable[[], bytes]) -> bytes:
    """A bomb built a megabyte at a time: the test never holds the 256 MiB itself."""
    zeros = bytes(MiB)
    return b"".join([*(compress(zeros) for _ in range(BOMB_BYTES // MiB)), flush()])


def _bomb(kind: str) -> bytes:
    if kind in ("gzip", "deflate", "deflate-raw"):
        wbits = {"gzip": 31, "deflate": 15, "deflate-raw": -15}[kind]
        zc = zlib.compressobj(6, zlib.DEFLATED, wbits)
        return _streamed(zc.compress, zc.flush)
    if kind == "br":
        bc = brotli.Compressor(quality=5)
        return _streamed(bc.process, bc.finish)
    zs = zstandard.ZstdCompressor().compressobj()
    return _streamed(zs.compress, zs.flush)


_BOMBS: dict[str, bytes] = {}


def bomb(kind: str) -> bytes:
    if kind not in _BOMBS:
        _BOMBS[kind] = _bomb(kind)
    return _BOMBS[kind]


class PeakMemory:
    """tracemalloc's peak (Python allocations) and the growth of the process's peak RSS (VmHWM,
    reset through /proc/self/clear_refs: what the C libraries allocate too) over a block."""

    def __init__(self) -> None:
        self.traced = 0
        self.rss: int | None = None

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self._rss_start = _reset_rss_peak()
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if self._rss_start is not None:
            self.rss = _status_bytes("VmHWM") - self._rss_start


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _reset_rss_peak() -> int | None:
    """The current RSS after resetting the peak to it; None where Linux's clear_refs is unavailable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_bytes("VmRSS")
    except (OSError, LookupError):
        return None


@pytest.mark.parametrize("kind", ["gzip", "deflate", "deflate-raw", "br", "zstd"])
def test_a_decompression_bomb_is_cut_at_the_limit_with_bounded_memory(kind: str, figures: Figures) -> None:
    """256 MiB of zeros in a few hundred bytes (br) to a few hundred KiB (gzip) decodes to exactly
    MAX_DECODED_BYTES with a note; the decoder's peak memory stays near the limit, not the bomb."""
    data = bomb(kind)
    assert len(data) < 2 * MiB
    encoding = kind.split("-", maxsplit=1)[0]
    with PeakMemory() as memory:
        decoded, notes = decode_content(data, encoding)
        size = len(decoded)
        del decoded
    assert size == MAX_DECODED_BYTES
    assert notes == (f"{encoding} body truncated or corrupt: decoded body cut at {MAX_DECODED_BYTES} bytes",)
    rss = "n/a" if memory.rss is None else f"{memory.rss / MiB:.0f} MiB"
    figures.add(
        "fuzz",
        f"{kind} bomb of {len(data):,} bytes (256 MiB of zeros): cut at 64 MiB, "
        f"peak traced {memory.traced / MiB:.0f} MiB, RSS +{rss}",
    )
    assert memory.traced < PEAK_LIMIT
    if memory.rss is not None:
        # plus what tracemalloc cannot see (decoder state and window) and what malloc keeps after free
        assert memory.rss < 3 * MAX_DECODED_BYTES < BOMB_BYTES


def test_a_stacked_bomb_is_cut_too() -> None:
    """A bomb under a second coding (``gzip, br``) is still cut at the limit."""
    decoded, notes = decode_content(brotli.compress(bomb("gzip"), quality=5), "gzip, br")
    assert len(decoded) == MAX_DECODED_BYTES
    assert notes[-1].endswith(f"decoded body cut at {MAX_DECODED_BYTES} bytes")


def test_a_zstd_frame_asking_for_a_huge_window_is_refused() -> None:
    """RFC 9659 caps the zstd content coding's window at 8 MiB; a frame asking for 128 MiB (which the
    decoder would fill as it inflates) is refused with a note instead of decoded."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    data = compressor.compress(bytes(32 * MiB)) + compressor.flush()
    with PeakMemory() as memory:
        decoded, notes = decode_content(data, "zstd")
    assert decoded == data
    assert "zstd body truncated or corrupt" in notes[0]
    assert memory.traced < 8 * MiB


class _OldBrotliDecompressor:
    """brotli < 1.2: ``process`` takes no output limit."""

    def __init__(self) -> None:
        self._inner = brotli.Decompressor()

    def process(self, data: bytes) -> bytes:
        return bytes(self._inner.process(data))

    def is_finished(self) -> bool:
        return bool(self._inner.is_finished())


def test_a_brotli_bomb_is_bounded_without_an_output_limit_too() -> None:
    """With an old brotli (no output_buffer_limit) the input goes in small slices and decoding stops
    once the limit is passed: the bomb is never inflated whole."""
    pieces: list[bytes] = []
    with PeakMemory() as memory:
        finished = _brotli_bounded(_OldBrotliDecompressor(), bomb("br"), pieces)
    assert not finished
    assert MAX_DECODED_BYTES < sum(map(len, pieces)) < 2 * MAX_DECODED_BYTES
    assert memory.traced < 3 * MAX_DECODED_BYTES
    small = b'{"ok": true}' * 100
    pieces = []
    assert _brotli_bounded(_OldBrotliDecompressor(), brotli.compress(small), pieces)
    assert b"".join(pieces) == small


def test_a_bomb_capture_becomes_a_record_with_bounded_memory() -> None:
    """The whole build path over a gzip bomb: a record noting the cut, memory a small multiple of
    the limit (decode, then the text the non-JSON body becomes), never the bomb's size."""
    data = bomb("gzip")
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions", content=b"{}")
    headers = httpx.Headers({"content-type": "application/json", "content-encoding": "gzip"})
    raw = RawCapture(
        request, time.time(), 200, headers, (data,), False, False, None, 1.0, None, None, None, "llm"
    )
    with PeakMemory() as memory:
        record = build_record(raw)
        del record
    print(f"build_record over a gzip bomb: peak traced {memory.traced / MiB:.0f} MiB")
    assert memory.traced < PEAK_LIMIT  # the decode's peak: the body is not JSON, so no parser tries it


@pytest.mark.parametrize(
    "body",
    [
        bytes(64 * MiB),  # a zstd or gzip bomb decodes to this
        b"<html>" + b"x" * (64 * MiB),
        b'{"data": [' + b"0.0123," * (9 * MiB),  # a big embeddings response cut at the capture limit
    ],
    ids=["zeros", "html", "cut json"],
)
def test_parse_json_memory_on_big_bodies_that_are_not_json(body: bytes) -> None:
    """orjson's error path holds about 12 bytes per byte of input (768 MiB for 64 MiB), and the
    stdlib parser builds a cut body whole before it fails: neither runs on what cannot be JSON."""
    with PeakMemory() as memory:
        value, notes = parse_json(body)
    assert isinstance(value, str)
    assert notes[0].startswith("body is not JSON")
    assert memory.traced < 2 * len(body) + MiB


# -- atheris ---------------------------------------------------------------------------------------

ATHERIS_RUNS = 50_000  # about 15 s here; -max_total_time caps it on a slower machine
HARNESS = Path(__file__).with_name("fuzz_atheris.py")


def test_atheris_harness_runs_clean(tmp_path: Path) -> None:
    """Coverage-guided fuzzing of the same targets for a bounded number of runs: libFuzzer exits
    non-zero on the first property that fails, exception, crash, timeout or out-of-memory (and leaves
    the input that did it in the test's tmp_path)."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    command = [
        sys.executable,
        str(HARNESS),
        f"-runs={ATHERIS_RUNS}",
        "-max_total_time=45",
        "-timeout=30",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    done = [line for line in result.stderr.splitlines() if line.startswith("Done ")]
    assert done, result.stderr[-4000:]
    print(done[0])
