"""RawCapture: what the transport hands to the writer. Built on the caller's hot path, so it only holds
references (the request object, the response headers, the received chunks) and timings: no parsing, no
copying, no I/O. The writer thread turns it into an `AuditRecord` (`_build.build_record`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._context import AuditContext
from ._frozen import fast_init

if TYPE_CHECKING:
    from ._record import AuditRecord

__all__ = ["MAX_CAPTURE_BYTES", "RawCapture"]

#: Response bytes kept per call; the caller still receives everything, the record notes the cut.
MAX_CAPTURE_BYTES = 32 * 1024 * 1024


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

    def to_record(self) -> AuditRecord | None:
        build = _builder or _load_builder()
        return build(self)


_builder: Callable[[RawCapture], AuditRecord] | None = None


def _load_builder() -> Callable[[RawCapture], AuditRecord]:
    """`_build.build_record`, imported on the writer thread at its first record (parsing is not
    loaded on the hot path), then kept: an import statement per record costs a microsecond."""
    global _builder  # noqa: PLW0603 - set once; a race sets the same function twice
    from ._build import build_record  # noqa: PLC0415

    _builder = build_record
    return build_record
