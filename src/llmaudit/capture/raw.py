"""Flattening an exchange for the queue, on the caller's hot path: the request and the headers packed
into the plain data of `record.raw` (`RawCapture` and its parts, re-exported here), so that a waiting
capture holds a few objects instead of the HTTP library's.

Runs on the caller's hot path: one ``join`` per header list, no decoding, no parsing, no I/O; it must
never raise (what cannot be packed exactly is kept as it was). It must not import record building
(`record.build`): the writer loads that.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

from ..record.raw import (
    FlatHeaders,
    FlatRequest,
    PairHeaders,
    RawCapture,
    UnreadRequest,
    UploadField,
    UploadFields,
)

__all__ = [
    "MAX_CAPTURE_BYTES",
    "FlatHeaders",
    "FlatRequest",
    "PairHeaders",
    "RawCapture",
    "UnreadRequest",
    "UploadField",
    "UploadFields",
    "flat_headers",
    "flat_request",
    "pack_headers",
]

#: Response bytes kept per call; the caller still receives everything, the record notes the cut.
MAX_CAPTURE_BYTES = 32 * 1024 * 1024


_chain = chain.from_iterable


def flat_headers(headers: Any) -> Any:
    """*headers* packed (see `FlatHeaders`), or unchanged when it cannot be packed exactly: not a
    branch's ``Headers``, or a name or value holding the separator (a header may not contain NUL on
    the wire, but an in-memory transport can be handed anything)."""
    if type(headers) is FlatHeaders or type(headers) is PairHeaders:
        return headers  # packed by a shell already (aiohttp)
    try:
        triples = headers._list
        count = len(triples)
        blob = b"\0".join(_chain(triples))  # each triple's three fields, at C speed
    except Exception:  # noqa: BLE001 - not a branch's Headers (or not bytes): kept as it is
        return headers
    if blob.count(b"\0") != max(3 * count - 1, 0):
        return headers
    return FlatHeaders(blob, count)


def pack_headers(pairs: Iterable[tuple[bytes, bytes]]) -> FlatHeaders | PairHeaders:
    """Headers given as ``(name, value)`` byte pairs (aiohttp's ``raw_headers``), packed like
    `flat_headers` packs a branch's; as `PairHeaders` when a field holds the separator."""
    kept = tuple(pairs)
    blob = b"\0".join(_chain((name, name.lower(), value) for name, value in kept))
    if blob.count(b"\0") != max(3 * len(kept) - 1, 0):
        return PairHeaders(kept)
    return FlatHeaders(blob, len(kept))


def flat_request(request: Any) -> Any:
    """*request* as a `FlatRequest`, or unchanged when its body was never read (a streaming or
    multipart upload: record building then reads its metadata from the request itself)."""
    if type(request) is FlatRequest or type(request) is UnreadRequest:
        return request  # flattened by a shell already (aiohttp)
    try:
        content = request.content
    except Exception:  # noqa: BLE001 - RequestNotRead: a streaming body
        return request
    return FlatRequest(request.method, request.url, flat_headers(request.headers), content)
