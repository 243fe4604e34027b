"""The transport packs a queued capture's headers and request (`FlatHeaders`, `FlatRequest`) so that
it does not keep the branch's objects alive; record building must read exactly what it would have
read from the originals."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

# private: the capture layer, driven directly below the public transports
from llmaudit.capture.raw import (
    FlatHeaders,
    FlatRequest,
    PairHeaders,
    flat_headers,
    flat_request,
    pack_headers,
)
from llmaudit.record.build import _headers

_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1)
_NAMES = st.sampled_from(
    ["Authorization", "Content-Type", "X-Stainless-Retry-Count", "x-request-id", "User-Agent", "Cookie"]
)


def _read(headers: Any) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    stored: dict[str, dict[str, str]] = {}
    return _headers(headers, stored, "request"), stored


@given(st.lists(st.tuples(_NAMES | _TOKEN, st.binary(max_size=40)), max_size=20))
def test_packed_headers_read_as_the_originals_on_both_branches(pairs: list[tuple[str, bytes]]) -> None:
    """Any names and any byte values (NUL included: an in-memory transport can be
    handed anything): what record building reads is the same, packed or not."""
    import httpx
    import httpx2

    for module in (httpx, httpx2):
        original = module.Headers([(name.encode(), value) for name, value in pairs])
        packed = flat_headers(original)
        assert _read(packed) == _read(original)
        if any(b"\0" in value for _, value in pairs):
            assert packed is original  # cannot be packed exactly: kept as it is
        else:
            assert isinstance(packed, FlatHeaders)


def test_headers_that_are_not_a_branchs_are_kept_as_they_are() -> None:
    """A custom transport may hand back anything as headers: packing never raises (an exception here
    would cost the record), it keeps the object, and record building reads it as before."""

    class Odd:
        _list = (("not", "bytes", "at all"),)
        raw = ((b"x-request-id", b"req-1"),)

    odd, plain = Odd(), {"x-request-id": "req-1"}
    assert flat_headers(odd) is odd and flat_headers(plain) is plain
    assert _read(flat_headers(None)) == ({}, {})
    assert flat_headers(Odd.raw) is Odd.raw


def test_a_read_request_is_packed_and_a_streaming_one_is_kept(hx: ModuleType) -> None:
    request = hx.Request(
        "POST",
        "https://api.openai.com/v1/chat/completions?api-version=1",
        headers={"Authorization": "Bearer sk-test-FAKE", "X-Stainless-Retry-Count": "2"},
        content=b'{"model":"gpt-4o"}',
    )
    flat = flat_request(request)
    assert isinstance(flat, FlatRequest)
    assert (flat.method, flat.url, flat.content) == ("POST", request.url, b'{"model":"gpt-4o"}')
    assert _read(flat.headers) == _read(request.headers)
    assert _read(flat.headers)[0]["x-stainless-retry-count"] == "2"

    def body() -> Any:
        yield b"{}"

    streaming = hx.Request("POST", "https://api.openai.com/v1/files", content=body())
    assert flat_request(streaming) is streaming  # never read by llmaudit: its metadata is read later


def test_a_recorded_call_holds_no_branch_headers_while_queued(hx: ModuleType, tmp_path: Path) -> None:
    """What the transport queues holds packed headers, the chunks as they came, and no Request object."""
    from llmaudit import Auditor

    # private: the capture layer, driven directly below the public transports
    from llmaudit.capture.raw import RawCapture
    from llmaudit.transports import httpx as t_httpx
    from llmaudit.transports import httpx2 as t_httpx2

    queued: list[RawCapture] = []
    auditor = Auditor(f"jsonl://{tmp_path / 'log'}", spool_dir=str(tmp_path / "spool"))
    # private: replaces the writer's submit to catch the raw capture before it becomes a record
    auditor._writer.submit = queued.append  # type: ignore[method-assign]
    chunks = [b'data: {"choices":[]}\n\n', b"data: [DONE]\n\n"]

    def handler(request: Any) -> Any:
        return hx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))

    transport_cls: Any = (t_httpx if hx.__name__ == "httpx" else t_httpx2).AuditTransport
    with hx.Client(transport=transport_cls(hx.MockTransport(handler), auditor=auditor)) as client:
        with client.stream("POST", "https://api.openai.com/v1/chat/completions", json={"stream": True}) as r:
            assert list(r.iter_raw()) == chunks  # the caller still gets the chunks as they came
    # private: closes the writer whose submit the test replaced
    auditor._writer.close(0)
    [raw] = queued
    assert isinstance(raw.request, FlatRequest) and isinstance(raw.response_headers, FlatHeaders)
    assert raw.chunks == tuple(chunks)  # as they came: joining them is the writer's work
    record = raw.to_record()
    assert record is not None and record.status_code == 200 and record.is_stream


@given(st.lists(st.tuples(_NAMES | _TOKEN, st.binary(max_size=40)), max_size=20))
def test_header_pairs_packed_for_aiohttp_read_as_the_originals(pairs: list[tuple[str, bytes]]) -> None:
    """aiohttp's raw ``(name, value)`` pairs, packed by `pack_headers` (or kept as pairs when a value
    holds the separator), read as httpx's Headers of the same pairs do; packing again is a no-op."""
    import httpx

    raw = [(name.encode(), value) for name, value in pairs]
    packed = pack_headers(raw)
    assert _read(packed) == _read(httpx.Headers(raw))
    assert type(packed) is (PairHeaders if any(b"\0" in v for _, v in raw) else FlatHeaders)
    assert flat_headers(packed) is packed
