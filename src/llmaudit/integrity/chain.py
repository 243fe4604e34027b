"""The tamper-evident hash chain: sealing records on the writer thread (verifying a log is `verify`).

Each writer (one per process, a new one after ``fork``) numbers its records ``seq = 1, 2, …`` under a
fresh ``writer_id`` and links them: ``hash = H(canonical JSON of the record with prev_hash and seq)``
where ``H`` is SHA-256, or HMAC-SHA256 keyed with ``LLMAUDIT_CHAIN_KEY`` when one is set. In that JSON
every field that can hold the data subject's text stands as a digest, so that `Reader.forget` can
replace it and the chain still verifies. The hashing is versioned, and the version is written in the
hash itself:

* version 1 (bare hex, written before version 2): the payload fields (``request``, ``response``,
  ``metadata``) stand as the SHA-256 of their canonical JSON; everything else enters as is.
* version 2 (``"v2:" + hex``): the JSON fields of `TOMBSTONE_FIELDS` (the payloads and ``headers``)
  as the SHA-256 of their canonical JSON; the text fields of `MARKED_FIELDS` (``session_key``,
  ``parent_session_key``, ``user``, ``url``, ``error``, ``tags``, ``notes``), unless empty, as
  `field_digest`: HMAC-SHA256 with the chain key (SHA-256 without one) of the field's domain and
  canonical JSON. An erased JSON field becomes a `tombstone` (its digest, the time of erasure and,
  with a key, a MAC over record id, field, digest and time: `erasure_mac`); an erased text field
  becomes the marker ``erased:<digest>``, which groups as the value did (the same user gives the same
  marker) and, with a key, tells nothing about the value. The conversation fields added with record
  schema 4 (`ABSENT_WHEN_NONE`: ``input_text``, ``output_text``, ``tool_calls``) are marked fields
  too, and enter the hash only when they hold something: a record that has none (every record
  sealed before they existed, with either hashing) hashes exactly as it did.

Backends keep, beside the records, each writer's authenticated *head* and prune *checkpoint*, and
an append-only *registry* of writers, prunes and sealings: `integrity.heads` (re-exported here).

`verify.verify_chain` classifies every record of a writer: verified, modified (its content no longer matches
its hash), reordered (it verifies only at another position than the ``seq`` it claims), inserted
(it does not belong: no chain fields, a duplicate position, or a link to nothing) and missing positions
(a gap, or a tail shorter than the head). An unkeyed chain proves integrity against accidents and
casual edits; only a keyed chain (the key kept away from the database) resists someone who can
recompute hashes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Container, Sequence
from dataclasses import fields
from datetime import datetime
from hashlib import sha256
from typing import Any

import orjson

from ..record.codec import dumps, dumps_presorted, record_to_dict, remember
from ..record.model import AuditRecord, new_id
from .erasure import (
    ERASED_PREFIX,
    MARKED_FIELDS,
    TOMBSTONE_FIELDS,
    erased_fields,
    erasure_mac,
    field_digest,
    is_marker,
    is_tombstone,
    marker,
    payload_digest,
    tombstone,
)
from .heads import (
    GENESIS,
    REGISTRY_KINDS,
    ChainState,
    RegistryEntry,
    _digest,
    new_state,
    registry_entry,
    state_mac,
)

__all__ = [
    "ABSENT_WHEN_NONE",
    "ERASED_PREFIX",
    "GENESIS",
    "HASH_VERSION",
    "MARKED_FIELDS",
    "PAYLOAD_FIELDS",
    "REGISTRY_KINDS",
    "TOMBSTONE_FIELDS",
    "Chain",
    "ChainState",
    "RegistryEntry",
    "chain_key",
    "compute_hash",
    "erased_fields",
    "erasure_mac",
    "field_digest",
    "hash_version",
    "is_marker",
    "is_tombstone",
    "marker",
    "new_state",
    "payload_digest",
    "registry_entry",
    "state_mac",
    "tombstone",
]

#: Fields that enter a version 1 hash as the digest of their own canonical JSON.
PAYLOAD_FIELDS = ("request", "response", "metadata")
#: The hashing of records sealed now (see the module docstring); older versions still verify.
HASH_VERSION = 2
_V2 = "v2:"
#: Fields added to the record after records were sealed without them: left out of the hash when None,
#: so those records still verify (and a value added to one later does not).
ABSENT_WHEN_NONE = ("input_text", "output_text", "tool_calls")


def chain_key(value: str | bytes | None) -> bytes | None:
    """The HMAC key from a setting (``LLMAUDIT_CHAIN_KEY``); empty means unkeyed."""
    if not value:
        return None
    return value.encode() if isinstance(value, str) else value


def hash_version(record: AuditRecord) -> int:
    """The hashing a sealed record was sealed with (`HASH_VERSION` for one not sealed yet)."""
    if record.hash is None or record.hash.startswith(_V2):
        return HASH_VERSION
    return 1


def compute_hash(record: AuditRecord, key: bytes | None = None, *, seq: int | None = None) -> str:
    """The chain hash of *record* (with *seq* in place of its own, to test another position), in the
    hashing version its own hash names (`hash_version`)."""
    data = record_to_dict(record)
    if seq is not None:
        data["seq"] = seq
    return _hash_data(data, key, version=hash_version(record))


#: Encodings this short (``{}``, ``null``, ``[]``, small numbers) keep their digest: most records
#: carry an empty ``metadata``, and hashing it again is a tenth of a record's sealing.
_SHORT = 8
_short_digests: dict[bytes, str] = {}
_EMPTY_OBJECT = orjson.Fragment(b"{}")


def _short_payload_hash(encoded: bytes) -> str:
    """The digest of an encoding of at most `_SHORT` bytes, remembered."""
    digest = _short_digests.get(encoded)
    if digest is None:
        digest = hashlib.sha256(encoded).hexdigest()
        if len(_short_digests) < 1024:
            _short_digests[encoded] = digest
    return digest


def _hash_data(
    data: dict[str, Any],
    key: bytes | None,
    *,
    memo: bool = False,
    full: dict[str, Any] | None = None,
    version: int = HASH_VERSION,
) -> str:
    """The hash of a record's dict (`record_to_dict`, keys in sorted order) in hashing *version*:
    fields by digest as the module docstring says, ``hash`` itself left out. With *memo*, the
    canonical JSON of each payload and of the headers is remembered for the storage to reuse; *full*
    (a copy of *data*) gets every container as a canonical fragment, ready for `dumps_presorted` to
    encode the whole record without encoding a payload twice."""
    data.pop("hash", None)
    for name in ABSENT_WHEN_NONE:
        if data[name] is None:
            del data[name]
    if version == 1:
        _headers_as_is(data, memo, full)
        digested: tuple[str, ...] = PAYLOAD_FIELDS
    else:
        _digest_marked(data, key, full)
        digested = TOMBSTONE_FIELDS
    for name in digested:
        value = data[name]
        if isinstance(value, dict) and 3 <= len(value) <= 4 and is_tombstone(value):  # no call for most
            data[name] = value["sha256"]
            if full is not None:
                full[name] = orjson.Fragment(dumps(value))
            continue
        encoded = dumps(value)
        if memo:
            remember(value, encoded)
        if full is not None:
            full[name] = orjson.Fragment(encoded)
        if len(encoded) > _SHORT:
            data[name] = sha256(encoded).hexdigest()
        else:
            data[name] = _short_payload_hash(encoded)
    digest = _digest(dumps_presorted(data), key)
    return digest if version == 1 else _V2 + digest


def _digest_marked(data: dict[str, Any], key: bytes | None, full: dict[str, Any] | None) -> None:
    """Version 2: each text field of the data subject as its `field_digest`."""
    for name in MARKED_FIELDS:
        value = data.get(name)
        if value:  # None, "" and () enter as they are: there is nothing to erase
            data[name] = field_digest(name, value, key)
    if full is not None and data.get("tool_calls"):  # objects: keys sorted, as in every payload
        full["tool_calls"] = orjson.Fragment(dumps(full["tool_calls"]))


def _headers_as_is(data: dict[str, Any], memo: bool, full: dict[str, Any] | None) -> None:
    """Version 1: the headers enter the hash as they are (a canonical fragment)."""
    headers = data["headers"]
    if isinstance(headers, (dict, list)):
        if not headers and isinstance(headers, dict):
            fragment = _EMPTY_OBJECT
        else:
            encoded = dumps(headers)
            if memo:
                remember(headers, encoded)
            fragment = orjson.Fragment(encoded)
        data["headers"] = fragment
        if full is not None:
            full["headers"] = fragment


class Chain:
    """One writer's chain: `seal` gives each record its ``writer_id``, ``seq``, ``prev_hash`` and
    ``hash``. Thread-safe; records are numbered in the order they are sealed."""

    def __init__(self, key: bytes | None = None, writer_id: str | None = None) -> None:
        self.key = key
        self.writer_id = writer_id or new_id()
        self._seq = 0
        self._prev = GENESIS
        self._lock = threading.Lock()
        #: Remember each sealed record's canonical JSON (worth it when the storage writes whole
        #: records as JSON, like JSONL; SQL stores take the payloads' JSON, always remembered).
        self.remember_records = False

    def seal(self, records: Sequence[AuditRecord], owned: Container[int] = ()) -> list[AuditRecord]:
        """The records with their chain fields set. Records whose ``id()`` is in *owned* were built by
        the writer and never seen by anyone else: they are completed in place instead of copied."""
        sealed = []
        writer_id, key, whole = self.writer_id, self.key, self.remember_records
        with self._lock:
            for original in records:
                self._seq += 1
                seq, prev = self._seq, self._prev
                data = record_to_dict(original)
                data["writer_id"], data["seq"], data["prev_hash"] = writer_id, seq, prev
                if whole:
                    # The record as storage writes it: the same dict with each payload's encoding
                    # spliced in (orjson.Fragment), so a JSONL store never encodes a payload twice.
                    full = dict(data)
                    digest = _hash_data(data, key, full=full)
                else:  # a SQL store takes each payload's JSON: remember those instead
                    full = None
                    digest = _hash_data(data, key, memo=True)
                if id(original) in owned:
                    _set_writer_id(original, writer_id)
                    _set_seq(original, seq)
                    _set_prev_hash(original, prev)
                    _set_hash(original, digest)
                    record = original
                else:
                    record = _with_links(original, writer_id, seq, prev, digest)
                if full is not None:  # a JSONL store writes these very bytes
                    full["hash"] = digest
                    remember(record, _encode_spliced(full, record))
                sealed.append(record)
                self._prev = digest
        return sealed


def _encode_spliced(full: dict[str, Any], record: AuditRecord) -> bytes:
    """The canonical JSON of a record dict from `_hash_data`'s *full* (sorted keys, containers as
    fragments): the same bytes as `dumps` of the plain dict."""
    try:
        return dumps_presorted(full)
    except Exception:  # noqa: BLE001 - never expected; the plain path is always right
        return dumps(record_to_dict(record))


_FIELD_NAMES = tuple(f.name for f in fields(AuditRecord))
_LINKS = {"writer_id": "writer_id", "seq": "seq", "prev_hash": "prev_hash", "hash": "digest"}


def _make_copier() -> Any:
    """``_with_links(record, writer_id, seq, prev_hash, digest)``: a copy of *record* with its chain
    fields set, skipping ``__init__`` (whose validation a sealed record already passed; the chain
    fields are ours). Generated with one line per field through the slots' own descriptors, as
    dataclasses generate ``__init__``: a loop over the field names costs several times more."""
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": AuditRecord}
    lines = ["def _with_links(record, writer_id, seq, prev_hash, digest):", "    new = _new(_cls)"]
    for name in _FIELD_NAMES:
        namespace[f"_set_{name}"] = AuditRecord.__dict__[name].__set__
        lines.append(f"    _set_{name}(new, {_LINKS.get(name, f'record.{name}')})")
    lines.append("    return new")
    exec("\n".join(lines), namespace)  # noqa: S102 - code built here from the record's field names
    return namespace["_with_links"]


_with_links = _make_copier()
_set_writer_id = AuditRecord.__dict__["writer_id"].__set__
_set_seq = AuditRecord.__dict__["seq"].__set__
_set_prev_hash = AuditRecord.__dict__["prev_hash"].__set__
_set_hash = AuditRecord.__dict__["hash"].__set__


def erasure_changes(record: AuditRecord, now: datetime, key: bytes | None) -> dict[str, Any]:
    """The fields of *record* not erased yet, erased at *now*: tombstones and markers (see
    `Reader.forget`; the spool's forget list applies the same).
    A record sealed with hashing version 1 digests its payloads only: only those can go."""
    modern = hash_version(record) >= 2
    changes: dict[str, Any] = {
        name: tombstone(getattr(record, name), now, key=key, record_id=record.id, name=name)
        for name in (TOMBSTONE_FIELDS if modern else PAYLOAD_FIELDS)
        if not is_tombstone(getattr(record, name))
    }
    if modern:
        for name in MARKED_FIELDS:
            value = getattr(record, name)
            if value and not is_marker(value):
                changes[name] = marker(name, value, key)
    return changes
