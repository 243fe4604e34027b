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

# A JSON number of 19+ digits (at the start or after a delimiter, so digits inside strings don't count):
# orjson would turn an integer that long into a float, so such bodies take the exact stdlib parser.
_LONG_NUMBER = re.compile(rb"(?:^|[:\[,])\s*-?\d{19}")
# Digits to "0", everything else to " ": a run of 19 digits is then a plain substring search (C speed),
# which rules out almost every body before the regex, several times slower per byte, has to look.
DIGIT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
DIGIT_RUN = b"0" * 19
# The parsers' error paths are costly on big bodies: orjson's holds about 12 bytes per byte of input
# (768 MiB for a 64 MiB body), the stdlib builds everything before the cut (24 s for a cut 64 MiB
# embeddings list). So orjson only sees what starts like JSON it reads (the stdlib also reads a BOM
# and UTF-16/32), neither sees a body whose last byte cannot end JSON, and a body orjson found cut
# short does not go to the stdlib, which cannot read it either.
_ORJSON_START = re.compile(rb"[ \t\r\n]*[\[{\"\-0-9tfn]")
_JSON_ENDS = frozenset(b'}]"0123456789elNy\x00')  # \x00: UTF-16/32

#: Decoded bodies are cut here (a decompression bomb must not exhaust the writer's memory).
MAX_DECODED_BYTES = 64 * 1024 * 1024
_CUT = f"decoded body cut at {MAX_DECODED_BYTES} bytes"
#: Output asked of the brotli decoder per call, so a bomb stops within one step of the limit.
_OUTPUT_STEP = 1024 * 1024
#: Input fed per call to a brotli decoder without an output limit (brotli < 1.2).
_BROTLI_SLICE = 64
#: A zstd block (at most 128 KiB of output) takes at least 4 bytes of input: the worst-case ratio.
_ZSTD_MAX_RATIO = 32 * 1024
#: RFC 9659: a "zstd" content coding never needs a larger window (the default, 128 MiB, lets a crafted
#: frame make the decoder touch a window as large as the decoded body, on top of the body itself).
_ZSTD_MAX_WINDOW_BYTES = 8 * 1024 * 1024
#: At least this much zstd input per call (a worst case of 8 MiB output beyond the limit).
_ZSTD_MIN_SLICE = 256


def _zlib(data: bytes, wbits: int) -> tuple[bytes, str | None]:
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(data, MAX_DECODED_BYTES)
    except zlib.error as exc:
        return b"", str(exc)
    if decoder.unconsumed_tail:
        return out, _CUT
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
    pieces: list[bytes] = []
    try:
        finished = _brotli_bounded(brotli.Decompressor(), data, pieces)
    except Exception as exc:  # noqa: BLE001 - brotli.error has no stable public class
        return b"", str(exc) or type(exc).__name__
    return _joined(pieces, finished)


def _brotli_bounded(decoder: Any, data: bytes, pieces: list[bytes]) -> bool:
    """Decode into *pieces*, stopping once they hold more than MAX_DECODED_BYTES (a bomb must not be
    inflated whole); whether the stream ended."""
    try:
        piece = decoder.process(data, output_buffer_limit=_OUTPUT_STEP)
    except TypeError:  # brotli / brotlicffi before 1.2: no output limit, so feed the input in slices
        return _brotli_sliced(decoder, data, pieces)
    size = len(piece)
    pieces.append(piece)
    while piece and size <= MAX_DECODED_BYTES and not decoder.is_finished():
        piece = decoder.process(b"", output_buffer_limit=_OUTPUT_STEP)  # the rest of the buffered input
        size += len(piece)
        pieces.append(piece)
    return bool(decoder.is_finished())


def _brotli_sliced(decoder: Any, data: bytes, pieces: list[bytes]) -> bool:
    size = 0
    view = memoryview(data)
    for start in range(0, len(data), _BROTLI_SLICE):
        piece = decoder.process(view[start : start + _BROTLI_SLICE])
        size += len(piece)
        pieces.append(piece)
        if size > MAX_DECODED_BYTES:
            break
    return bool(decoder.is_finished())


def _zstd(data: bytes) -> tuple[bytes, str | None]:
    try:
        import zstandard  # noqa: PLC0415 - optional, like brotli
    except ImportError:
        return data, "zstd body kept encoded: install zstandard to decode it"
    decoder = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW_BYTES).decompressobj()
    pieces: list[bytes] = []
    size = start = 0
    view = memoryview(data)
    try:
        while start < len(data) and size <= MAX_DECODED_BYTES and not decoder.eof:
            # decompressobj has no output limit: feed only as much input as cannot overshoot it by much
            step = max(_ZSTD_MIN_SLICE, (MAX_DECODED_BYTES - size) // _ZSTD_MAX_RATIO)
            piece = decoder.decompress(view[start : start + step])
            start += step
            size += len(piece)
            pieces.append(piece)
    except zstandard.ZstdError as exc:
        return b"", str(exc)
    return _joined(pieces, bool(decoder.eof))


def _joined(pieces: list[bytes], finished: bool) -> tuple[bytes, str | None]:
    """The decoded pieces as one body, cut at MAX_DECODED_BYTES (only the last piece can cross it, so
    only that one is copied before the join: the peak stays near twice the limit, like zlib's)."""
    excess = sum(map(len, pieces)) - MAX_DECODED_BYTES
    if excess > 0:
        pieces[-1] = pieces[-1][: len(pieces[-1]) - excess]
    out = b"".join(pieces)
    pieces.clear()
    if excess > 0:
        return out, _CUT
    return out, None if finished else "stream truncated"


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
    tail = body[-64:].rstrip()
    exact = not tail or tail[-1] in _JSON_ENDS
    if exact and _ORJSON_START.match(body):
        large = len(body) > _SCAN_FIRST_BELOW
        if large or not _may_hold_long_integer(body):
            try:
                value = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                exact = exc.pos < len(exc.doc)  # else cut short
            else:
                # orjson keeps every integer that fits 64 bits and makes the others floats: a body
                # with no float that large read exactly (asked of the values when there are few,
                # which costs far less than scanning a large body's text)
                if not large or _no_large_float(value, len(body) >> 7) or not _may_hold_long_integer(body):
                    return value, ()
    if exact:
        try:
            return json.loads(body), ()  # exact for integers beyond 64 bits, which orjson makes floats
        except (ValueError, RecursionError):
            pass
    notes: tuple[str, ...] = ()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text, notes = body.decode("utf-8", "replace"), ("body is not valid UTF-8",)
    kind = (content_type or "").split(";")[0].strip() or "unknown type"
    return text, (f"body is not JSON ({kind}, {len(body)} bytes)", *notes)


#: Bodies up to this size are scanned for long numbers before orjson reads them; larger ones after,
#: and only when their values cannot rule the numbers out.
_SCAN_FIRST_BELOW = 16 * 1024
#: orjson turns integers above 2**64 - 1 or below -2**63 into floats at least this large.
_LARGE_FLOAT = 9.2e18


def _may_hold_long_integer(body: bytes) -> bool:
    """Whether *body* may hold a JSON integer of 19 digits or more (orjson would make one beyond 64
    bits a float). `find`, not `in`, on bytes: `in` first tries its needle as an integer (a raised and
    cleared TypeError per call), which costs more than this search on a stream's small events."""
    return body.translate(DIGIT_MAP).find(DIGIT_RUN) >= 0 and _LONG_NUMBER.search(body) is not None


def _no_large_float(value: Any, budget: int) -> bool:
    """True when *value* holds no float of `_LARGE_FLOAT` or more in size (so no integer orjson
    rounded); False when it may, or when it has more than *budget* values to look at."""
    stack = [value]
    while stack:
        budget -= 1
        if budget < 0:
            return False
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float and not -_LARGE_FLOAT < item < _LARGE_FLOAT:
            return False
    return True


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
