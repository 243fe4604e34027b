"""Coverage-guided fuzzing (atheris / libFuzzer) of what the writer thread parses; see test_fuzz.py.

Run it directly with any libFuzzer flag, e.g. ``python tests/stress/fuzz_atheris.py -runs=20000`` or
``-max_total_time=600 corpus_dir/``; ``test_fuzz.py`` runs it for a bounded number of runs. The first
byte of each input picks the target, the rest is the target's input. A property that does not hold
raises, and libFuzzer stops with the input that broke it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import atheris
import httpx  # imported before instrumentation: only llmaudit's own code is instrumented

with atheris.instrument_imports(include=["llmaudit"]):
    from llmaudit import AuditRecord, Redactor, providers

    # private: the capture layer, driven directly below the public transports
    from llmaudit.capture.streams import UsageChunkFilter
    from llmaudit.providers import Exchange
    from llmaudit.record.bodies import decode_content, iter_ndjson, iter_sse, parse_json
    from llmaudit.record.build import build_record
    from llmaudit.record.codec import dumps, encode_record
    from llmaudit.record.raw import RawCapture

ENCODINGS = (
    "gzip",
    "deflate",
    "br",
    "zstd",
    "identity",
    "x-gzip",
    "gzip, br",
    "zstd, deflate",
    "compress",
    "",
)
CONTENT_TYPES = ("text/event-stream", "application/x-ndjson", "application/json", "text/html", "")
ROUTES = (
    ("api.openai.com", "/v1/chat/completions"),
    ("api.openai.com", "/v1/completions"),
    ("api.openai.com", "/v1/responses"),
    ("api.openai.com", "/v1/embeddings"),
    ("res.openai.azure.com", "/openai/deployments/dep/chat/completions"),
    ("api.anthropic.com", "/v1/messages"),
    ("api.anthropic.com", "/v1/messages/count_tokens"),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:generateContent"),
    ("api.cohere.com", "/v2/chat"),
    ("api.mistral.ai", "/v1/agents/completions"),
    ("api.groq.com", "/openai/v1/chat/completions"),
    ("localhost", "/api/chat"),
    ("localhost", "/api/generate"),
    ("127.0.0.1", "/v1/chat/completions"),
    ("example.com", "/anything"),
)
REDACTOR = Redactor(hash_key=b"atheris")


def _sse(data: bytes) -> None:
    for event in iter_sse(data):
        assert "\r" not in event.data


def _ndjson(data: bytes) -> None:
    items = list(iter_ndjson(data))
    assert len(items) == sum(1 for line in data.split(b"\n") if line.strip())
    dumps([value for value, _ in items])


def _json(data: bytes) -> None:
    value, notes = parse_json(data)
    dumps(value)
    assert not notes or isinstance(value, str)


def _decode(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    encoding = ENCODINGS[fdp.ConsumeIntInRange(0, len(ENCODINGS) - 1)]
    decoded, notes = decode_content(fdp.ConsumeBytes(fdp.remaining_bytes()), encoding)
    assert isinstance(decoded, bytes)
    assert all(isinstance(note, str) for note in notes)


def _provider(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    host, path = ROUTES[fdp.ConsumeIntInRange(0, len(ROUTES) - 1)]
    stream = fdp.ConsumeBool()
    request, _ = parse_json(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64)))
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    exchange = Exchange("POST", host, path, {}, {}, request, 200, {}, body, stream)
    parsed = providers.parse(exchange)
    assert not [note for note in parsed.notes if "parser failed" in note], parsed.notes
    dumps([parsed.response, parsed.model, parsed.input_tokens, parsed.output_tokens, parsed.total_tokens])


def _record(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    host, path = ROUTES[fdp.ConsumeIntInRange(0, len(ROUTES) - 1)]
    encoding = ENCODINGS[fdp.ConsumeIntInRange(0, len(ENCODINGS) - 1)]
    ctype = CONTENT_TYPES[fdp.ConsumeIntInRange(0, len(CONTENT_TYPES) - 1)]
    retry = fdp.ConsumeBytes(2)
    request_body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 128))
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    request = httpx.Request(
        "POST", f"https://{host}{path}", content=request_body, headers=[(b"x-stainless-retry-count", retry)]
    )
    headers = httpx.Headers([(b"content-type", ctype.encode()), (b"content-encoding", encoding.encode())])
    half = len(body) // 2
    raw = RawCapture(
        request,
        time.time(),
        200,
        headers,
        (body[:half], body[half:]),
        False,
        True,
        None,
        1.0,
        None,
        None,
        None,
        "llm",
    )
    record = build_record(raw)
    assert not [note for note in record.notes if note.startswith("record could not be built")], record.notes
    redacted = REDACTOR(record)
    assert redacted is not None
    encode_record(redacted)


def _usage_filter(data: bytes) -> None:
    size = 1 + (data[0] if data else 0)
    whole = UsageChunkFilter()
    expected = whole.feed(data) + whole.end()
    chunked = UsageChunkFilter()
    out = b"".join(chunked.feed(data[i : i + size]) for i in range(0, len(data), size)) + chunked.end()
    assert out == expected


def _redactor(data: bytes) -> None:
    value, _ = parse_json(data)
    once = REDACTOR(AuditRecord(request=value, response=[value, {"x": value}]))
    assert once is not None
    twice = REDACTOR(once)
    assert twice is not None
    assert dumps([twice.request, twice.response]) == dumps([once.request, once.response])
    encode_record(once)


TARGETS: tuple[Callable[[bytes], None], ...] = (
    _sse,
    _ndjson,
    _json,
    _decode,
    _provider,
    _record,
    _usage_filter,
    _redactor,
)


def TestOneInput(data: bytes) -> None:
    if data:
        TARGETS[data[0] % len(TARGETS)](data[1:])


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
