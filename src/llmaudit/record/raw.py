"""What the capture stage hands to record building: `RawCapture` (one HTTP exchange as captured), the
flat parts it holds while it waits in the queue (`FlatHeaders`, `FlatRequest`, …), and `AuditContext`
(the session and decorator context a capture carries).

Plain data: these are built on the caller's hot path (by `capture.raw` and the transports), so they only
hold references and timings. This module must not parse, copy, decode or do I/O, nor import any stage
above the record stage; it imports record building only inside `RawCapture.to_record`, which runs on
the writer side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from .frozen import fast_init

if TYPE_CHECKING:
    from .model import AuditRecord

__all__ = [
    "EMPTY",
    "AuditContext",
    "FlatHeaders",
    "FlatRequest",
    "PairHeaders",
    "RawCapture",
    "UnreadRequest",
    "UploadField",
    "UploadFields",
]


EMPTY: Mapping[str, Any] = MappingProxyType({})


class AuditContext(NamedTuple):
    """What every record made inside a session or an audited function inherits.

    A NamedTuple: immutable and cheap to build, since one is made per session entry and per audited
    call on the caller's hot path. ``metadata`` is never mutated; nesting builds a new mapping.
    """

    session_key: str | None = None
    parent_session_key: str | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = EMPTY
    client: str | None = None
    # The enclosing @audited call's record id: an int (its UUIDv7 value, formatted off the hot path by
    # the writer) when set by the decorator, a string when set by hand.
    parent_id: str | int | None = None


class FlatHeaders:
    """A branch's headers packed into one bytes object for the time a capture waits in the queue.

    A queued capture that holds the branch's own ``Headers`` keeps about a hundred small objects alive
    (a tuple and three bytes per header: the openai SDK sends 17), allocated in memory the caller's
    next call cannot reuse, freed cold by the writer and walked by the garbage collector meanwhile;
    one bytes object avoids that (`benchmarks/RESULTS.md`, bench_capture_hold). `capture.raw.flat_headers`
    packs them with one ``join`` of the fields (no decoding, no parsing); the writer unpacks them with
    ``triples()``.
    """

    __slots__ = ("_blob", "_count")

    def __init__(self, blob: bytes, count: int) -> None:
        self._blob = blob
        self._count = count

    def __reduce__(self) -> tuple[Any, ...]:  # for the writer process: one bytes object
        return (FlatHeaders, (self._blob, self._count))

    def triples(self) -> list[tuple[bytes, bytes, bytes]]:
        """``(name, lower-cased name, value)`` for each header, as the branches' ``Headers._list``."""
        if not self._count:
            return []
        fields = iter(self._blob.split(b"\0"))
        return list(zip(fields, fields, fields, strict=True))


class PairHeaders:
    """``(name, value)`` byte pairs as record building reads them (``.raw``): the fallback of
    `capture.raw.pack_headers` for a header holding the separator."""

    __slots__ = ("raw",)

    def __init__(self, raw: tuple[tuple[bytes, bytes], ...]) -> None:
        self.raw = raw

    def __reduce__(self) -> tuple[Any, ...]:
        return (PairHeaders, (self.raw,))


class FlatRequest:
    """What record building reads from a request, without the request object (see `FlatHeaders`)."""

    __slots__ = ("content", "headers", "method", "url")

    def __init__(self, method: str, url: Any, headers: Any, content: bytes) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.content = content

    def __reduce__(self) -> tuple[Any, ...]:
        return (FlatRequest, (self.method, self.url, self.headers, self.content))


class UnreadRequest:
    """A request whose body was streamed to the server, never buffered (an aiohttp upload from a
    file or an iterator): record building reads its method, URL and headers only."""

    __slots__ = ("headers", "method", "url")

    def __init__(self, method: str, url: Any, headers: Any) -> None:
        self.method = method
        self.url = url
        self.headers = headers

    @property
    def content(self) -> bytes:
        raise LookupError("the request body was streamed, not kept")

    def __reduce__(self) -> tuple[Any, ...]:
        return (UnreadRequest, (self.method, self.url, self.headers))


@fast_init
@dataclass(frozen=True, slots=True)
class RawCapture:
    """One HTTP exchange as seen by the transport (the request is the branch's own Request object)."""

    request: Any
    started_at: float  # time.time() when the request left
    status_code: int | None
    response_headers: Any  # the branch's Headers object, or None when the call failed
    chunks: tuple[bytes, ...]  # raw (still content-encoded) response bytes, in order
    truncated: bool
    incomplete: bool
    error: str | None
    duration_ms: float
    ttft_ms: float | None
    context: AuditContext | None
    client: str | None
    capture: str  # "llm" or "all"
    notes: tuple[str, ...] = ()
    decoded: bool = False  # the inner transport handed over an already-read (decoded) response
    request_stream: Any = None  # the request's original body stream (multipart field names live there)
    #: the hot path's decision (provider name, operation), so that the writer parses the exchange as
    #: the user's provider mapping said; None: the writer matches the exchange again
    matched: tuple[str, str | None] | None = None

    def to_record(self) -> AuditRecord | None:
        build = _builder or _load_builder()
        return build(self)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled for the writer process: the fields in order, the request's body
        stream reduced to what record building reads from it (an upload's field and file names)."""
        return (
            RawCapture,
            (
                self.request,
                self.started_at,
                self.status_code,
                self.response_headers,
                self.chunks,
                self.truncated,
                self.incomplete,
                self.error,
                self.duration_ms,
                self.ttft_ms,
                self.context,
                self.client,
                self.capture,
                self.notes,
                self.decoded,
                _upload_fields(self.request_stream),
                self.matched,
            ),
        )


class UploadFields:
    """An upload's form fields as record building reads them (``.fields``, each with ``.name`` and
    ``.filename``), without the files: what a pickled capture keeps of its request stream."""

    __slots__ = ("fields",)

    def __init__(self, fields: tuple[UploadField, ...]) -> None:
        self.fields = fields


class UploadField(NamedTuple):
    name: str | None
    filename: str | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _upload_fields(stream: Any) -> UploadFields | None:
    fields = getattr(stream, "fields", None)
    if not fields:
        return None
    return UploadFields(
        tuple(
            UploadField(_text(getattr(f, "name", None)), _text(getattr(f, "filename", None))) for f in fields
        )
    )


_builder: Callable[[RawCapture], AuditRecord] | None = None


def _load_builder() -> Callable[[RawCapture], AuditRecord]:
    """`record.build.build_record`, imported on the writer thread at its first record (parsing is not
    loaded on the hot path), then kept: an import statement per record costs a microsecond."""
    global _builder  # noqa: PLW0603 - set once; a race sets the same function twice
    from .build import build_record  # noqa: PLC0415

    _builder = build_record
    return build_record
