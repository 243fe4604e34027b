"""RawCapture: what the transport hands to the writer. Built on the caller's hot path, so it only holds
references (the request object, the response headers, the received chunks) and timings: no parsing, no
copying, no I/O. The writer thread turns it into an `AuditRecord` (`record.build.build_record`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, NamedTuple

from ..record.frozen import fast_init
from .context import AuditContext

if TYPE_CHECKING:
    from ..record.model import AuditRecord

__all__ = [
    "MAX_CAPTURE_BYTES",
    "FlatHeaders",
    "FlatRequest",
    "PairHeaders",
    "RawCapture",
    "UnreadRequest",
    "flat_headers",
    "flat_request",
    "pack_headers",
]

#: Response bytes kept per call; the caller still receives everything, the record notes the cut.
MAX_CAPTURE_BYTES = 32 * 1024 * 1024


_chain = chain.from_iterable


class FlatHeaders:
    """A branch's headers packed into one bytes object for the time a capture waits in the queue.

    A queued capture that holds the branch's own ``Headers`` keeps about a hundred small objects alive
    (a tuple and three bytes per header: the openai SDK sends 17), and keeping them cost the caller
    more than the transport's own work (they are allocated in memory the caller's next call cannot
    reuse, freed cold by the writer, and walked by the garbage collector meanwhile).
    ``benchmarks/bench_capture_hold.py``, held minus dropped: 17-27 µs per call before the packing,
    6 µs after; 12-14 µs less per recorded call in all. Packing is one ``join`` of the fields (no
    decoding, no parsing); the writer unpacks them with ``triples()``.
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


class PairHeaders:
    """``(name, value)`` byte pairs as record building reads them (``.raw``): the fallback of
    `pack_headers` for a header holding the separator."""

    __slots__ = ("raw",)

    def __init__(self, raw: tuple[tuple[bytes, bytes], ...]) -> None:
        self.raw = raw

    def __reduce__(self) -> tuple[Any, ...]:
        return (PairHeaders, (self.raw,))


def pack_headers(pairs: Iterable[tuple[bytes, bytes]]) -> FlatHeaders | PairHeaders:
    """Headers given as ``(name, value)`` byte pairs (aiohttp's ``raw_headers``), packed like
    `flat_headers` packs a branch's; as `PairHeaders` when a field holds the separator."""
    kept = tuple(pairs)
    blob = b"\0".join(_chain((name, name.lower(), value) for name, value in kept))
    if blob.count(b"\0") != max(3 * len(kept) - 1, 0):
        return PairHeaders(kept)
    return FlatHeaders(blob, len(kept))


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
        """Pickled for the writer process (`pipeline.process_runner`): the fields in order, the request's body
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
    from ..record.build import build_record  # noqa: PLC0415

    _builder = build_record
    return build_record
