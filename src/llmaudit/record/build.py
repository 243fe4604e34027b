"""build_record: a RawCapture becomes an AuditRecord. Runs on the writer thread only.

Decodes the bodies (content encoding, JSON, SSE/NDJSON through the provider), picks the provider's view
(operation, model, usage, the reassembled stream, the conversation as flat text), takes who/why from the
context snapshot, and removes the secrets whose place is known: credential headers (never decoded into
the record, and their values scrubbed from the error message and the bodies, where an HTTP library or an
echoing server may repeat them), credential query parameters and form fields, and the tokens of an OAuth
token exchange (`record.masking`). Secrets found by their shape are the redactor's job, after this.
It must not do I/O or run on the caller's hot path, and it never raises:
anything it cannot read becomes a note on the record, and if building fails outright a minimal record
with the failure noted is written instead, so no call is ever lost because its body was odd.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from .. import providers
from ..providers._failure import describe_failure
from .bodies import decode_content, parse_json
from .cost import cost_usd
from .headers import (
    NEVER_STORED_HEADERS,
    STORED_HEADER_PREFIXES,
    STORED_HEADERS,
    is_credential_name,
)
from .masking import (
    _NONE_KNOWN,
    _error_text,
    _Known,
    _mask_names,
    _mask_oauth,
    _scrub,
    _scrub_bytes,
    _secret_forms,
    mask_form,
    mask_url,
)
from .model import STRING_LIMITS, AuditRecord, JSONValue, format_id
from .raw import AuditContext, FlatHeaders, RawCapture

__all__ = ["build_record"]

#: The context of a call made outside every session (immutable, so one serves every record).
_NO_CONTEXT = AuditContext()
_STREAM_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl", "application/ndjson")


#: The headers record building reads (request and response).
_USED_HEADERS = frozenset(
    {
        b"content-type",
        b"content-encoding",
        b"content-length",
        b"x-stainless-retry-count",
        b"retry-after",
        b"anthropic-version",  # Anthropic's shape on any host (`providers._shapes`)
        b"x-litellm-model-api-base",  # where a LiteLLM proxy sent the call (`providers._gateways`)
    }
)

_USED, _STORED, _SECRET = 1, 2, 4
#: name -> (its text, _USED | _STORED | _SECRET bits); header names repeat from call to call, so this
#: stays small
_KINDS: dict[bytes, tuple[str, int]] = {}


def _kind(name: bytes) -> tuple[str, int]:
    text = name.decode("latin-1")
    secret = text in NEVER_STORED_HEADERS or is_credential_name(text)  # X-Stainless-Token: never kept
    stored = not secret and (text in STORED_HEADERS or text.startswith(STORED_HEADER_PREFIXES))
    kind = (
        text,
        (_USED if name in _USED_HEADERS else 0) | (_STORED if stored else 0) | (_SECRET if secret else 0),
    )
    if len(_KINDS) < 4096:
        _KINDS[name] = kind
    return kind


def _headers(
    headers: Any, stored: dict[str, dict[str, str]], side: str, secrets: list[str] | None = None
) -> dict[str, str]:
    """The headers record building uses, names lower-cased, values decoded as latin-1 (cheaper than
    the branch's own decoding, which sniffs a charset for every value); the allow-listed ones are
    also put in ``stored[side]``, the values of credential headers in *secrets*. Nothing else is
    decoded."""
    if headers is None:
        return {}
    out = {}
    kept: dict[str, str] = {}
    # packed by the transport while the capture was queued; else both branches' own
    # (raw name, lower-cased name, value) triples
    triples = headers.triples() if type(headers) is FlatHeaders else getattr(headers, "_list", None)
    if triples is None:
        triples = [(key, key.lower(), value) for key, value in headers.raw]
    kinds = _KINDS
    for _, name, value in triples:
        text, kind = kinds.get(name) or _kind(name)
        if kind:
            decoded = value.decode("latin-1")
            if kind & _USED:
                out[text] = decoded
            if kind & _STORED:
                kept[text] = decoded
            elif kind & _SECRET and secrets is not None:
                secrets.append(decoded)
    if kept:
        stored[side] = kept
    return out


def _request_body(
    raw: RawCapture, headers: Mapping[str, str], secrets: _Known
) -> tuple[JSONValue, tuple[str, ...]]:
    content_type = headers.get("content-type", "")
    if content_type.startswith("multipart/"):
        return _unbuffered_body(raw.request_stream, headers), ()
    try:
        body: bytes = raw.request.content
    except Exception:  # noqa: BLE001 - RequestNotRead: a streaming body, never buffered by llmaudit
        return _unbuffered_body(raw.request_stream, headers), ("request body not buffered: metadata only",)
    decoded, notes = decode_content(body, headers.get("content-encoding"))
    if secrets.needles:
        decoded = _scrub_bytes(decoded, secrets)
    if content_type.startswith("application/x-www-form-urlencoded"):
        text = decoded.decode("utf-8", "replace")
        masked = mask_form(text)
        if masked is not text:
            decoded = masked.encode()
    value, more = parse_json(decoded)
    return _mask_oauth(value), notes + more


def _unbuffered_body(stream: Any, headers: Mapping[str, str]) -> dict[str, Any]:
    """What an upload can tell without reading it: content type, size if declared, field names."""
    fields = getattr(stream, "fields", None) or ()
    meta: dict[str, Any] = {"content_type": headers.get("content-type", "").split(";")[0] or None}
    length = _count(headers.get("content-length", ""), 18)
    if length is not None:
        meta["bytes"] = length
    names = [getattr(f, "name", None) for f in fields]
    if names:
        meta["fields"] = [n for n in names if isinstance(n, str)]
        files = [getattr(f, "filename", None) for f in fields]
        meta["files"] = [f for f in files if isinstance(f, str)]
    return meta


def _clip(name: str, value: str | None, notes: list[str]) -> str | None:
    limit = STRING_LIMITS[name]
    if value is None or len(value) <= limit:
        return value
    notes.append(f"{name} cut to {limit} characters (was {len(value)})")
    return value[:limit]


def _count(value: str, digits: int) -> int | None:
    """A count from a header: ASCII digits only (``"²".isdigit()`` is true but ``int("²")`` raises) and
    at most *digits* of them, so it fits its column; else None."""
    return int(value) if 0 < len(value) <= digits and value.isascii() and value.isdigit() else None


def _attempt(headers: Mapping[str, str]) -> int:
    return _count(headers.get("x-stainless-retry-count", ""), 9) or 0  # attempt is a 32-bit column


def _exchange(
    raw: RawCapture, notes: list[str], stored: dict[str, dict[str, str]]
) -> tuple[providers.Exchange, bool, _Known]:
    """The exchange for the provider, whether it is a stream, and the known secrets (`_secret_forms`)."""
    request = raw.request
    url = request.url
    found: list[str] = []
    req_headers = _headers(request.headers, stored, "request", found)
    secrets = _secret_forms(tuple(found)) if found else _NONE_KNOWN
    resp_headers = _headers(raw.response_headers, stored, "response")
    request_json, request_notes = _request_body(raw, req_headers, secrets)
    encoding = None if raw.decoded else resp_headers.get("content-encoding")
    body, body_notes = decode_content(b"".join(raw.chunks), encoding)
    if secrets.needles:
        body = _scrub_bytes(body, secrets)
    notes.extend(request_notes + body_notes)
    if raw.truncated:
        notes.append("response body larger than the capture limit: the record holds its beginning")
    is_stream = resp_headers.get("content-type", "").split(";")[0].strip().lower() in _STREAM_TYPES
    exchange = providers.Exchange(
        method=request.method,
        host=(url.host or "").lower(),
        path=url.path,
        query=dict(parse_qsl(url.query.decode("latin-1"))) if url.query else {},
        request_headers=req_headers,
        request=request_json,
        status_code=raw.status_code,
        response_headers=resp_headers,
        response_body=body,
        is_stream=is_stream,
    )
    return exchange, is_stream, secrets


#: How each provider's stream says "that was the last event", looked for at the end of the body.
_STREAM_ENDINGS = (
    b"data: [DONE]",
    b"message_stop",
    b"response.completed",
    b"message-end",
    b'"done":true',
    b'"done": true',
    b'"finishReason"',
)


def _finished(raw: RawCapture, body: bytes, is_stream: bool) -> bool:
    """A stream the caller closed right after its final event (SDKs stop reading at ``[DONE]``) is
    complete; one closed earlier, cancelled or broken by an error is not."""
    if not raw.incomplete:
        return True
    if raw.error is not None or not is_stream:
        return False
    tail = body[-512:]
    return any(marker in tail for marker in _STREAM_ENDINGS)


def build_record(raw: RawCapture) -> AuditRecord:
    """The record of one captured exchange (never raises)."""
    try:
        return _build(raw)
    except Exception as exc:  # noqa: BLE001 - keep the call on record even when parsing fails
        return _fallback(raw, exc)


def _build(raw: RawCapture) -> AuditRecord:
    notes: list[str] = list(raw.notes)
    headers: dict[str, dict[str, str]] = {}
    exchange, is_stream, secrets = _exchange(raw, notes, headers)
    parsed = providers.parse(exchange, raw.matched)
    notes.extend(parsed.notes)
    response = _mask_oauth(parsed.response)
    # one pass over the JSON just parsed: the conversation as flat text, whatever the API
    input_text, output_text, tool_calls, text_notes = providers.flat_text(
        parsed.provider, parsed.operation, exchange.request, response
    )
    notes.extend(text_notes)
    ctx = raw.context or _NO_CONTEXT
    created_at = datetime.fromtimestamp(raw.started_at, timezone.utc)
    return AuditRecord(
        created_at=created_at,
        session_key=ctx.session_key,
        parent_session_key=ctx.parent_session_key,
        user=ctx.user,
        tags=ctx.tags,
        metadata=_mask_names(ctx.metadata) if ctx.metadata else {},
        client=_clip("client", raw.client or ctx.client or parsed.provider, notes),
        provider=_clip("provider", parsed.provider, notes),
        operation=_clip("operation", parsed.operation, notes),
        model=_clip("model", parsed.model, notes),
        method=_clip("method", exchange.method, notes),
        url=_scrub(mask_url(str(raw.request.url)), secrets),
        headers=headers,
        request=exchange.request,
        response=response,
        input_text=input_text,
        output_text=output_text,
        tool_calls=tool_calls,
        status_code=raw.status_code,
        error=_error_text(_failure(raw, parsed.response), secrets),
        is_stream=is_stream,
        incomplete=not _finished(raw, exchange.response_body, is_stream),
        duration_ms=raw.duration_ms,
        ttft_ms=raw.ttft_ms if is_stream else None,
        input_tokens=parsed.input_tokens,
        output_tokens=parsed.output_tokens,
        total_tokens=parsed.total_tokens,
        cost_usd=cost_usd(
            parsed.prices or parsed.provider,
            parsed.model,
            parsed.input_tokens,
            parsed.output_tokens,
            created_at,
        ),
        source="transport",
        parent_id=None if ctx.parent_id is None else format_id(ctx.parent_id),
        attempt=_attempt(exchange.request_headers),
        notes=tuple(notes),
    )


def _failure(raw: RawCapture, response: Any) -> str | None:
    """Why the call failed: the exception it raised (a stream broken mid-way, a timeout), else for
    an HTTP status of 400 or more the status and what the provider's body says (`describe_failure`)."""
    if raw.error is not None or raw.status_code is None or raw.status_code < 400:
        return raw.error
    return describe_failure(raw.status_code, response)


def _fallback(raw: RawCapture, exc: Exception) -> AuditRecord:
    ctx = raw.context or _NO_CONTEXT
    try:
        found: list[str] = []
        _headers(raw.request.headers, {}, "request", found)
        secrets = _secret_forms(tuple(found))
    except Exception:  # noqa: BLE001 - the redactor's detectors still scan the error
        secrets = _NONE_KNOWN
    try:
        url: str | None = _scrub(mask_url(str(raw.request.url)), secrets)
    except Exception:  # noqa: BLE001
        url = None
    return AuditRecord(
        created_at=datetime.fromtimestamp(raw.started_at, timezone.utc),
        session_key=ctx.session_key,
        parent_session_key=ctx.parent_session_key,
        user=ctx.user,
        client=raw.client or ctx.client,
        url=url,
        status_code=raw.status_code,
        error=_error_text(raw.error, secrets),
        incomplete=raw.incomplete,
        duration_ms=raw.duration_ms,
        source="transport",
        parent_id=None if ctx.parent_id is None else format_id(ctx.parent_id),
        notes=(_scrub(f"record could not be built from the capture: {type(exc).__name__}: {exc}", secrets),),
    )
