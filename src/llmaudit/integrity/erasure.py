"""Erasure in the chain: what an erased field becomes and how a field enters a version 2 hash.

An erased JSON field (`TOMBSTONE_FIELDS`) becomes a `tombstone`: its digest, the time of erasure and,
with a key, a MAC over record id, field, digest and time (`erasure_mac`). An erased text field
(`MARKED_FIELDS`) becomes the marker ``erased:<digest>`` (`marker`), which groups as the value did and,
with a key, tells nothing about the value. Both stand in the hash for the value they replaced
(`payload_digest`, `field_digest`), so an erased record still verifies.

Pure functions over values (a bounded digest cache aside): no I/O, no record sealing (that is
`integrity.chain`, which re-exports these names), and nothing from the stages above the record stage.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
import re
from datetime import datetime
from hashlib import sha256
from typing import Any

from ..record.codec import dumps, format_timestamp
from ..record.model import AuditRecord

__all__ = [
    "ERASED_PREFIX",
    "MARKED_FIELDS",
    "TOMBSTONE_FIELDS",
    "erased_fields",
    "erasure_mac",
    "field_digest",
    "is_marker",
    "is_tombstone",
    "marker",
    "payload_digest",
    "tombstone",
]

#: JSON fields that enter a version 2 hash as the SHA-256 of their canonical JSON; erased, a `tombstone`.
TOMBSTONE_FIELDS = ("headers", "metadata", "request", "response")
#: Text fields that enter a version 2 hash as their `field_digest` (unless empty); erased, a `marker`.
MARKED_FIELDS = (
    "error",
    "input_text",
    "notes",
    "output_text",
    "parent_session_key",
    "session_key",
    "tags",
    "tool_calls",
    "url",
    "user",
)
#: What an erased text field starts with (then 64 hex digits: 71 characters fit every column).
ERASED_PREFIX = "erased:"
_MARKER = re.compile(r"erased:[0-9a-f]{64}")
# a session key and the parent_session_key naming it erase to the same marker
_DOMAINS = {name: name.encode() for name in MARKED_FIELDS} | {"parent_session_key": b"session_key"}
_FIELD_PREFIXES = {name: b"llmaudit-field\0" + domain + b"\0" for name, domain in _DOMAINS.items()}
_ERASABLE = tuple(sorted(TOMBSTONE_FIELDS + MARKED_FIELDS))
_erasable_values = operator.attrgetter(*_ERASABLE)


def tombstone(
    value: Any,
    at: datetime,
    *,
    key: bytes | None = None,
    record_id: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """What an erased JSON field becomes: its digest (so the chain still verifies) and when it went;
    with a *key* (and the *record_id* and field *name*), a MAC over those (`erasure_mac`), so that
    verify tells this erasure from a hand-made tombstone or a changed time."""
    digest, when = payload_digest(value), format_timestamp(at)
    stone: dict[str, Any] = {"erased": True, "sha256": digest, "at": when}
    if key is not None and record_id is not None and name is not None:
        stone["mac"] = erasure_mac(key, record_id, name, digest, when)
    return stone


def erasure_mac(key: bytes, record_id: str, name: str, digest: str, at: str) -> str:
    """HMAC-SHA256 over a tombstone's record id, field, digest and erasure time."""
    message = "\0".join(("llmaudit-erasure-v1", record_id, name, digest, at)).encode()
    return hmac.digest(key, message, "sha256").hex()


def is_tombstone(value: Any) -> bool:
    # len and membership, not ``value.keys() == {...}``: that builds a set per call, and the writer
    # asks this of every payload it seals
    return (
        isinstance(value, dict)
        and (len(value) == 3 or (len(value) == 4 and isinstance(value.get("mac"), str)))
        and "sha256" in value
        and "at" in value
        and value.get("erased") is True
        and isinstance(value["sha256"], str)
    )


def is_marker(value: Any) -> bool:
    """Whether *value* is an erased text field: ``erased:<digest>`` (tags and notes: a tuple of one)."""
    if isinstance(value, tuple):
        return len(value) == 1 and is_marker(value[0])
    return isinstance(value, str) and len(value) == 71 and _MARKER.fullmatch(value) is not None


def field_digest(name: str, value: Any, key: bytes | None) -> str:
    """What a text field of `MARKED_FIELDS` enters a version 2 hash as: its marker's digest if it is
    one, else HMAC-SHA256 (with the chain key) or SHA-256 (without) of its domain and canonical JSON."""
    if is_marker(value):
        return str(value[0] if isinstance(value, tuple) else value)[len(ERASED_PREFIX) :]
    cacheable = isinstance(value, str) and len(value) <= 256
    if cacheable:  # users, session keys and URLs repeat from record to record
        known = _field_digests.get((key, name, value))
        if known is not None:
            return known
    message = _FIELD_PREFIXES[name] + dumps(value)
    digest = sha256(message).hexdigest() if key is None else hmac.digest(key, message, "sha256").hex()
    if cacheable:
        if len(_field_digests) >= _FIELD_DIGESTS_KEPT:
            _field_digests.clear()
        _field_digests[(key, name, value)] = digest
    return digest


_FIELD_DIGESTS_KEPT = 4096
_field_digests: dict[tuple[bytes | None, str, str], str] = {}


def marker(name: str, value: Any, key: bytes | None) -> Any:
    """What an erased text field becomes: ``erased:<field_digest>`` (a tuple of one for tags, notes)."""
    text = ERASED_PREFIX + field_digest(name, value, key)
    return (text,) if isinstance(value, tuple) else text


def erased_fields(record: AuditRecord) -> tuple[str, ...]:
    """The fields of *record* that were erased (tombstones and markers), in field order."""
    found = [
        name
        for name, value in zip(_ERASABLE, _erasable_values(record), strict=True)
        # most values are plainly not erased: ruled out without a call (verify asks every record)
        if value
        and (
            (isinstance(value, dict) and "erased" in value and is_tombstone(value))
            or (isinstance(value, str) and len(value) == 71 and is_marker(value))
            or (isinstance(value, tuple) and len(value) == 1 and is_marker(value))
        )
    ]
    return tuple(found)


def payload_digest(value: Any) -> str:
    """SHA-256 of *value*'s canonical JSON; a tombstone stands for the digest it keeps."""
    if is_tombstone(value):
        return str(value["sha256"])
    return hashlib.sha256(dumps(value)).hexdigest()
