"""The storage protocol, the query type every backend answers, and helpers shared by backends.

A backend does three things: write a batch idempotently (the same id twice is one record), read
records matching a `Query`, and close. It never builds records and never retries: the writer does.
Transient failures (cannot connect) raise `StorageUnavailableError`; a record the backend refuses
raises `StorageError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit, urlunsplit

from ..integrity.chain import ChainState, RegistryEntry, new_state, registry_entry
from ..record.model import AuditRecord, Kind, record_kind, utcnow

__all__ = [
    "ChainStore",
    "ProblemHandler",
    "Query",
    "RegistryStore",
    "Storage",
    "batch_heads",
    "is_credential_name",
    "mask_url_credentials",
    "matches",
    "raise_head",
    "redact_url",
    "registry_additions",
    "sealed_head",
    "select",
]

logger = logging.getLogger("llmaudit")

#: Called with a human-readable description of data that could not be read (file and line).
ProblemHandler = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """Which records to read. Every filter is optional; ``None`` means "any".

    ``since`` is inclusive and ``until`` exclusive. ``order`` sorts by ``(created_at, id)``.
    ``is_aggregation=None`` returns call records and aggregation records alike. ``kind`` keeps only
    records of those kinds (``"call"``, ``"function"``, ``"aggregation"``: see `record_kind`).
    """

    ids: tuple[str, ...] | None = None
    session_key: str | None = None
    user: str | None = None
    client: str | None = None
    provider: str | None = None
    model: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    errors_only: bool = False
    is_aggregation: bool | None = None
    kind: tuple[Kind, ...] | None = None
    limit: int | None = None
    order: Literal["asc", "desc"] = "asc"


@runtime_checkable
class Storage(Protocol):
    """What the writer and the read side need from a backend."""

    #: The storage URL with any password removed, for messages.
    url: str

    def write(self, records: Sequence[AuditRecord]) -> None:
        """Store *records*; records whose id is already stored are skipped, not duplicated."""

    def read(self, query: Query = ..., *, on_problem: ProblemHandler | None = None) -> Iterator[AuditRecord]:
        """Yield the records matching *query*, in its order, each id once."""

    def close(self) -> None:
        """Release connections and file handles; idempotent."""

    # Optional: ``maintain()``, called by the background writer (under its store lock) when its queue
    # is empty, for housekeeping that should not delay a write or a flush (SQLite's checkpoint).


@runtime_checkable
class ChainStore(Protocol):
    """What the built-in backends add for the tamper-evident chain, erasure and pruning.

    ``write`` also raises each writer's head (``integrity.chain.ChainState``) to the highest ``seq`` written,
    in the same transaction or under the same lock as the records, never lowering it (a replayed
    spool file brings older records). A third-party backend without these methods still stores
    records; `llmaudit.open(url).verify()` then says what it cannot check.
    """

    def chain_states(self) -> dict[str, ChainState]:
        """Each writer's head and prune checkpoint."""

    def erase(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        """Overwrite payload fields in place (``{id: {field: tombstone}}``), leaving no copy of the
        old value behind in the backend's files; returns how many records changed."""

    def delete(self, ids: Sequence[str], checkpoints: Mapping[str, tuple[int, str]]) -> int:
        """Delete *ids* and set each writer's prune checkpoint ``(seq, hash)`` in one step."""


@runtime_checkable
class RegistryStore(Protocol):
    """What the built-in backends add to authenticate heads and checkpoints (see ``integrity.chain``).

    ``chain_key`` (the HMAC key, None for an unkeyed chain) is set by whoever writes: the writer
    from its chain's key, `Reader.prune` and `Reader.seal_legacy` from theirs. ``write`` then MACs
    each head it raises and appends a ``writer`` entry to the registry for a writer the registry
    does not list yet, in the same transaction (or under the same lock) as the records; ``delete``
    MACs each checkpoint and appends a ``prune`` entry the same way.
    """

    chain_key: bytes | None

    def registry(self) -> list[RegistryEntry]:
        """Every registry entry, in order."""

    def seal_legacy(self, records: Sequence[AuditRecord], detail: Mapping[str, Any]) -> None:
        """Give already-stored records the chain fields of *records* (one new writer, sealed by
        `Reader.seal_legacy`), set that writer's head, and append a ``seal-legacy`` registry entry
        carrying *detail*, in one step."""


def raise_head(
    known: ChainState | None, writer: str, seq: int, digest: str, key: bytes | None
) -> ChainState | None:
    """The writer's state with its head raised to ``(seq, digest)`` and MACed, or None when the
    stored head is as high already (a replayed spool brings older records)."""
    if known is None:
        return new_state(writer, seq, digest, key)
    if seq > known.head_seq:
        return known.raised(writer, seq, digest, key)
    return None


def registry_additions(
    tail: RegistryEntry | None,
    kind: str,
    items: Mapping[str, tuple[int, str]],
    key: bytes | None,
    detail: Mapping[str, Any] | None = None,
) -> list[RegistryEntry]:
    """The entries to append after *tail*: one of *kind* per ``{writer: (seq, hash)}``, in writer
    order, each linked to the one before."""
    added: list[RegistryEntry] = []
    now = utcnow()
    for writer, (seq, digest) in sorted(items.items()):
        entry = registry_entry(
            added[-1] if added else tail, kind, writer, seq, digest, key=key, at=now, detail=detail
        )
        added.append(entry)
    return added


def registered_writers(entries: Iterable[RegistryEntry]) -> set[str]:
    """The writers a registry lists (first stored, or sealed from legacy records)."""
    return {e.writer_id for e in entries if e.kind in ("writer", "seal-legacy")}


def sealed_head(records: Sequence[AuditRecord]) -> tuple[str, int, str]:
    """The writer, ``seq`` and hash of the last of *records* (sealed by `Reader.seal_legacy`)."""
    last = records[-1]
    if last.writer_id is None or last.seq is None or last.hash is None:
        raise ValueError("seal_legacy takes records sealed into a chain")
    return last.writer_id, last.seq, last.hash


def batch_heads(records: Sequence[AuditRecord]) -> dict[str, tuple[int, str]]:
    """The highest ``(seq, hash)`` per writer in a batch."""
    heads: dict[str, tuple[int, str]] = {}
    for record in records:
        if record.writer_id is None or record.seq is None or record.hash is None:
            continue
        known = heads.get(record.writer_id)
        if known is None or record.seq > known[0]:
            heads[record.writer_id] = (record.seq, record.hash)
    return heads


_EQUALITY_FILTERS = ("session_key", "user", "client", "provider", "model", "source")


def matches(record: AuditRecord, query: Query) -> bool:  # noqa: PLR0911 - one return per filter
    """Whether *record* satisfies every filter of *query* (limit and order aside)."""
    for name in _EQUALITY_FILTERS:
        wanted = getattr(query, name)
        if wanted is not None and getattr(record, name) != wanted:
            return False
    if query.ids is not None and record.id not in query.ids:
        return False
    if query.since is not None and record.created_at < query.since:
        return False
    if query.until is not None and record.created_at >= query.until:
        return False
    if query.errors_only and not is_error(record):
        return False
    if query.kind is not None and record_kind(record) not in query.kind:
        return False
    return query.is_aggregation is None or record.is_aggregation == query.is_aggregation


def is_error(record: AuditRecord) -> bool:
    """A failed call: an exception was recorded, or the HTTP status is 400 or above."""
    return record.error is not None or (record.status_code or 0) >= 400


def select(records: Iterable[AuditRecord], query: Query) -> list[AuditRecord]:
    """Filter, sort and limit in memory: the reference semantics every backend must match."""
    chosen = [r for r in records if matches(r, query)]
    chosen.sort(key=lambda r: (r.created_at, r.id), reverse=query.order == "desc")
    return chosen if query.limit is None else chosen[: query.limit]


#: A word of a parameter name that makes it a credential: it ends with one of these stems
#: (``key``, ``apikey``, ``accesskey``, ``x-api-key``, ``refresh_token``, ``X-Amz-Signature``...).
_CREDENTIAL_WORD = re.compile(
    r"(?:key|token|secret|signature|sig|password|passwd|passphrase|pwd|credentials?|auth|"
    r"authorization|session|sessionid|jwt|cookie|assertion|hmac)$"
)
#: Whole words that make a name a credential (``code`` is an OAuth authorization code).
_CREDENTIAL_NAMES = frozenset({"code", "pass", "pw", "sid", "otp"})
#: Words that make a name harmless whatever else it says: counts, limits, types and pagination
#: (``max_tokens``, ``token_type``, ``pageToken``, ``key_length``).
_HARMLESS_WORDS = frozenset(
    {"max", "min", "count", "num", "limit", "type", "length", "size", "usage", "page", "next", "ttl"}
)
_NAME_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
#: ``name=value`` in a query string, a fragment or a path segment's matrix parameters.
_PARAMETER = re.compile(r"(^|[&;])([^=&;#]*)=([^&;#]*)")
#: Telegram's bot API puts the token in the path: /bot<id>:<secret>/method.
_PATH_TOKEN = re.compile(r"(?<=/bot)[0-9]+:[A-Za-z0-9_-]+")
MASKED: Final = "***"


def is_credential_name(name: str) -> bool:
    """Whether a URL parameter called *name* carries a credential: one of its words (split at
    ``-``, ``_``, ``.`` and camelCase) ends with key, token, secret, signature, sig, password,
    credential, auth, session, jwt... and none of them is a count, limit, type or page word."""
    words = [word.lower() for word in _NAME_WORD.findall(unquote(name))]
    if any(word in _HARMLESS_WORDS for word in words):
        return False
    return any(word in _CREDENTIAL_NAMES or _CREDENTIAL_WORD.search(word) for word in words)


def _mask_parameters(text: str) -> str:
    """*text* (``a=1&b=2`` or ``a=1;b=2``) with the values of credential parameters masked, the
    rest byte for byte as it was."""
    if "=" not in text:
        return text
    return _PARAMETER.sub(
        lambda m: f"{m[1]}{m[2]}={MASKED}" if m[3] and is_credential_name(m[2]) else m[0], text
    )


def mask_url_credentials(url: str, *, userinfo: Literal["password", "drop"] = "password") -> str:
    """*url* with its credentials replaced by ``***``; everything else is kept as it was written.

    Masked: the password of the userinfo (``userinfo="password"``, keeping the user name) or the
    whole ``user:password@`` (``"drop"``); the values of query, fragment (OAuth's implicit flow
    returns ``#access_token=…``) and matrix (``;key=…``) parameters whose names look like
    credentials (see `is_credential_name`); a token in the path (Telegram's ``/bot<token>/``).
    Tokens a detector recognises elsewhere in a stored URL are the `Redactor`'s job.

    Raises:
        ValueError: the URL cannot be parsed.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        if userinfo == "drop":
            netloc = host
        elif parts.password is not None:
            netloc = f"{credentials.partition(':')[0]}:{MASKED}@{host}"
    path = parts.path
    if ";" in path:
        path = "/".join(_mask_matrix(segment) for segment in path.split("/"))
    if "/bot" in path:
        path = _PATH_TOKEN.sub(MASKED, path)
    query, fragment = _mask_parameters(parts.query), _mask_parameters(parts.fragment)
    if (netloc, path, query, fragment) == (parts.netloc, parts.path, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def _mask_matrix(segment: str) -> str:
    name, sep, parameters = segment.partition(";")
    return name + sep + _mask_parameters(parameters) if sep else segment


def redact_url(url: str) -> str:
    """*url* with its password and credential parameters replaced by ``***``, for messages and logs
    (see `mask_url_credentials`)."""
    try:
        return mask_url_credentials(url)
    except ValueError:
        return "<unparseable storage URL>"


def warn_problem(message: str) -> None:
    """The default `ProblemHandler`: a warning on the ``llmaudit`` logger."""
    logger.warning("%s", message)
