"""Content decoding and stream framing: pure functions that never raise. Writer thread only.

`decode_content` undoes Content-Encoding (gzip, deflate, br, zstd, stacked), `parse_json` turns a body
into JSON or text with a note, `iter_sse` frames server-sent events by the WHATWG rules and
`iter_ndjson` frames JSON lines. Bad input (truncated, corrupt, invalid UTF-8) gives what could be
decoded plus a note; nothing here raises, allocates without bound, or touches I/O.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["MAX_DECODED_BYTES", "SSEEvent", "decode_content", "iter_ndjson", "iter_sse", "parse_json"]

# A JSON number of 19+ digits (after a delimiter, so digits inside strings don't count): orjson would
# turn an integer that long into a float, so such bodies take the exact stdlib parser.
_LONG_NUMBER = re.compile(rb"[:\[,]\s*-?\d{19}")
# Digits to "0", everything else to " ": a run of 19 digits is then a plain substring search (C speed),
# which rules out almost every body before the regex, several times slower per byte, has to look.
_DIGIT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_DIGIT_RUN = b"0" * 19

#: Decoded bodies are cut here (a decompression bomb must not exhaust the writer's memory).
MAX_DECODED_BYTES = 64 * 1024 * 1024


def _zlib(data: bytes, wbits: int) -> tuple[bytes, str | None]:
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(data, MAX_DECODED_BYTES)
    except zlib.error as exc:
        return b"", str(exc)
    if decoder.unconsumed_tail:
        return out, f"decoded body cut at {MAX_DECODED_BYTES} bytes"
    if not decoder.eof:
        return out, "stream truncated"
    return out, None


def _gzip(data: bytes) -> tuple[bytes, str | None]:
    return _zlib(data, 16 + zlib.MAX_WBITS)


def _deflate(data: bytes) -> tuple[bytes, str | None]:
    out, problem = _zlib(data, zlib.MAX_WBITS)  # RFC 9110 deflate is zlib-wrapped…
    if problem and not out:
        return _zlib(data, -zlib.MAX_WBITS)  # …but some servers send raw deflate
    return out, problem


def _brotli(data: bytes) -> tuple[bytes, str | None]:
    try:
        import brotli  # noqa: PLC0415 - optional: httpx only asks for br when it is installed
    except ImportError:
        try:
            import brotlicffi as brotli  # noqa: PLC0415
        except ImportError:
            return data, "br body kept encoded: install brotli to decode it"
    try:
        out: bytes = brotli.decompress(data)
    except Exception as exc:  # noqa: BLE001 - brotli.error has no stable public class
        return b"", str(exc) or type(exc).__name__
    return out[:MAX_DECODED_BYTES], None if len(out) <= MAX_DECODED_BYTES else "decoded body cut"


def _zstd(data: bytes) -> tuple[bytes, str | None]:
    try:
        import zstandard  # noqa: PLC0415 - optional, like brotli
    except ImportError:
        return data, "zstd body kept encoded: install zstandard to decode it"
    try:
        reader = zstandard.ZstdDecompressor().decompressobj()
        out: bytes = reader.decompress(data)
    except zstandard.ZstdError as exc:
        return b"", str(exc)
    return out[:MAX_DECODED_BYTES], None if len(out) <= MAX_DECODED_BYTES else "decoded body cut"


_DECODERS = {"gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli, "zstd": _zstd}


def decode_content(body: bytes, content_encoding: str | None) -> tuple[bytes, tuple[str, ...]]:
    """Undo *content_encoding* (applied in order, so undone in reverse); never raises."""
    if not content_encoding or not body:
        return body, ()
    notes: list[str] = []
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding == "identity":
            continue
        decoder = _DECODERS.get(coding)
        if decoder is None:
            notes.append(f"unknown content-encoding {coding!r}: body kept as received")
            break
        decoded, problem = decoder(body)
        if problem:
            notes.append(f"{coding} body truncated or corrupt: {problem}")
        if not decoded and problem:
            break
        body = decoded
    return body, tuple(notes)


def parse_json(body: bytes, content_type: str | None = None) -> tuple[Any, tuple[str, ...]]:
    """The body as JSON; else its text with a note. Empty is None."""
    if not body.strip():
        return None, ()
    if _DIGIT_RUN not in body.translate(_DIGIT_MAP) or not _LONG_NUMBER.search(body):
        try:
            return orjson.loads(body), ()
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body), ()  # exact for integers beyond 64 bits, which orjson turns into floats
    except (ValueError, RecursionError):
        pass
    notes: tuple[str, ...] = ()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text, notes = body.decode("utf-8", "replace"), ("body is not valid UTF-8",)
    kind = (content_type or "").split(";")[0].strip() or "unknown type"
    return text, (f"body is not JSON ({kind}, {len(body)} bytes)", *notes)


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event."""

    event: str | None
    data: str
    id: str | None


def _lines(text: str) -> Iterator[str]:
    yield from text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def iter_sse(data: bytes) -> Iterator[SSEEvent]:
    """Server-sent events per the WHATWG rules; a final event without its blank line is still yielded
    (a cancelled stream ends mid-event). Never raises."""
    event: str | None = None
    ident: str | None = None
    buffer: list[str] = []
    seen_field = False
    for line in _lines(data.decode("utf-8", "replace")):
        if not line:
            if buffer:
                yield SSEEvent(event, "\n".join(buffer), ident)
            event, buffer, seen_field = None, [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        seen_field = True
        if name == "data":
            buffer.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            ident = value
    if buffer and seen_field:
        yield SSEEvent(event, "\n".join(buffer), ident)


def iter_ndjson(data: bytes) -> Iterator[tuple[Any, str | None]]:
    """One JSON value per non-empty line, or (None, note) for a line that is not JSON."""
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line), None
        except orjson.JSONDecodeError as exc:
            yield None, f"NDJSON line {number} is not JSON: {exc}"
