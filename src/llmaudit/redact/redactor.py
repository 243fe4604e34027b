"""Redaction: the writer processor that removes secrets and bulk from a record before it is stored.

A `Redactor` is a writer *processor* (``AuditRecord -> AuditRecord | None``); it runs on the writer
thread, never on the caller's hot path. For each payload field (``request``, ``response``, ``metadata``)
it applies, in this order:

1. **Path rules** (`Rule`): a JSON path selects values to ``drop`` (remove the key or list item),
   ``mask`` (replace by ``"[REDACTED]"``) or ``hash`` (replace by ``"hmac-sha256:<hex>"``, the HMAC of the
   value's canonical JSON, so equal values still group). A path starting with ``request.``,
   ``response.`` or ``metadata.`` applies to that field only; any other path applies to both the request
   and the response. Syntax: dot-separated keys, ``[*]`` (every list item), ``[N]`` (one index, negative
   counts from the end), ``*`` as a key (every value of an object), ``["a.b"]`` for a key with dots,
   brackets or quotes (``\\"`` and ``\\\\`` escape inside). A bare ``request`` or ``response`` selects
   the whole field (``drop`` then stores ``None``).
2. **Large values**: a string longer than ``max_value_bytes`` (UTF-8), and a base64 ``data:`` URL longer
   than 1 KiB, becomes ``{"truncated": True, "bytes": n, "sha256": "<hex>"}`` (plus ``"media_type"`` for
   a data URL). Dict keys are never truncated.
3. **Detectors** (`DETECTORS`): built-in patterns for API keys and tokens (the catalogue of
   `llmaudit.redact.detectors`, adapted from gitleaks), bearer tokens, e-mail addresses and card numbers
   (Luhn-checked); each match inside any string becomes ``[REDACTED:<name>]``, in the keys of every JSON
   object as in its values (two keys made equal by their markers are numbered ``#2``…). Text holding
   format characters (zero-width space...) or full-width forms is matched in its folded form and the
   original span is replaced. A JSON integer of 13 to 19 digits that passes the Luhn check becomes
   ``"[REDACTED:card]"`` too; other numbers are never changed.

Every field of the record that can hold text is scanned, found from `AuditRecord` itself so that a field
added later is scanned too: the payloads as above; ``headers`` (names and values), ``url``, ``error``,
``model``, ``operation``, ``provider``, ``method``, ``tags``, ``notes``, the conversation's flat text
(``input_text``, ``output_text``, ``tool_calls``) and any other text field by the detectors (then cut
to their column's width, `STRING_LIMITS`, since a marker can be longer than what it replaced). The
flat text is made from the payloads: when a path rule changes a payload, it is made again from the
payload as the rule left it, so that what a rule removes from a prompt is not kept there either.
``session_key``, ``parent_session_key``, ``user`` and ``client`` group the log: when a
credential detector (every one but ``email``) fires in one, the whole value becomes its keyed hash
(``hmac-sha256:<hex>``, as a ``hash`` rule makes it), so equal values still group and a nested session
still names its parent; an e-mail address there is kept, as it is how many applications name their
users. Not scanned: ``id``, ``parent_id``, ``writer_id``, ``prev_hash``, ``hash`` (made by llmaudit) and
``source`` (checked against a fixed list).

Secrets whose *place* names them (credential headers, query parameters and form fields, OAuth tokens,
function arguments named like credentials) are removed before the redactor, where the record is built
(`record.build`, `record.jsonable`), whatever the redactor's configuration.

When a detector fired, a note such as ``"redacted: 2 openai_key, 1 email"`` is added (counts only,
never the secret). The record is replaced (`dataclasses.replace`) only when something changed.

Guarantees:

* The redactor never raises (except from ``before_write``, see `Redactor`): when processing a field fails
  (an unexpected type, a cycle, nesting deeper than JSON allows), the whole field is masked, `failures`
  is incremented and a note says so. The unredacted value is never returned.
* The output always encodes with `llmaudit.record.codec.dumps`; values outside JSON (objects, bytes, sets) are
  turned into their ``repr`` *before* scanning, as the codec would, so they cannot carry a secret past
  the detectors.
* Redaction is idempotent: ``r(r(x)) == r(x)`` for the payload fields. Replacement markers match no
  detector, truncation markers are recognised and left alone, hashes are not re-hashed, and detectors
  run until nothing more matches. The one exception is ``drop`` on an index path (``messages[0]``),
  which by its nature removes another item every time it runs.

Hashing keys: ``hash_key`` (bytes or str) keys the HMAC. Without it, ``LLMAUDIT_REDACT_KEY`` is used, and
without that a random key drawn once per process: hashes then group records of one process only. Set
``LLMAUDIT_REDACT_KEY`` (or pass ``hash_key``) to group across processes and restarts.

This module holds the record-level half (which fields, the fast path, notes, failures, pickling for
the writer process); what happens to one value is `redact.values`, how each detector finds its
matches `redact.finders`. It must not do I/O or import the stages above redaction.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, replace
from operator import attrgetter
from typing import Any, Final

import orjson

from .. import providers
from .._errors import ConfigurationError
from ..record.headers import NEVER_STORED_HEADERS
from ..record.model import STRING_LIMITS, AuditRecord
from .finders import _FINDERS, _SQUEEZE_TABLE, DETECTORS, _compile_patterns, _json_is_clean, _select_detectors
from .paths import _PREFIXES, Rule, RuleSpec, _compile_path, _Path, _to_rule
from .values import ValueRedaction

__all__ = ["DEFAULT_MAX_VALUE_BYTES", "DETECTORS", "Redactor", "Rule"]

#: Default `Redactor` ``max_value_bytes``: longer strings are replaced by a truncation marker.
DEFAULT_MAX_VALUE_BYTES: Final = 64 * 1024

#: Smallest accepted ``max_value_bytes``: every marker the redactor writes stays below it (idempotency).
MIN_MAX_VALUE_BYTES: Final = 256

#: Fields the log groups and links records by: a value in which a credential detector fires is
#: replaced whole by its keyed hash (``hmac-sha256:<hex>``, as a ``hash`` rule makes it), so equal values
#: still group and a nested session still names its parent.
_GROUPING_FIELDS: Final = ("session_key", "parent_session_key", "user", "client")
#: Fields never scanned: identifiers and chain values that llmaudit makes itself (UUIDs, hex digests)
#: and ``source``, which the record checks against a fixed list.
_EXEMPT_FIELDS: Final = frozenset({"id", "parent_id", "writer_id", "prev_hash", "hash", "source"})
_TEXT_TYPES: Final = ("str", "dict", "tuple", "JSONValue", "Any")


def _text_fields() -> tuple[str, ...]:
    """Every field of `AuditRecord` that can hold text, except the exempt ones: a field added to the
    record later is scanned without anyone having to remember it here."""
    return tuple(
        f.name
        for f in fields(AuditRecord)
        if f.name not in _EXEMPT_FIELDS and any(kind in str(f.type) for kind in _TEXT_TYPES)
    )


_ALL_SCANNED: Final = _text_fields()
#: The fields scanned by the detectors only (no path rules, no hashing).
_SCANNED_FIELDS: Final = tuple(n for n in _ALL_SCANNED if n not in _PREFIXES and n not in _GROUPING_FIELDS)
_scanned_values = attrgetter(*_ALL_SCANNED)
FAILED_TEXT: Final = "[REDACTED: could not be processed]"
_PROCESS_KEY: Final = os.urandom(32)
#: The scanned fields that fill a database column of fixed width (cut to it after redaction).
_LIMITED: Final = tuple((n, STRING_LIMITS[n]) for n in _ALL_SCANNED if n in STRING_LIMITS)


def _resolve_key(hash_key: bytes | str | None) -> bytes:
    if hash_key is None:
        env = os.environ.get("LLMAUDIT_REDACT_KEY")
        return env.encode("utf-8") if env else _PROCESS_KEY
    if isinstance(hash_key, str):
        key = hash_key.encode("utf-8")
    elif isinstance(hash_key, (bytes, bytearray, memoryview)):
        key = bytes(hash_key)
    else:
        raise ConfigurationError(f"hash_key must be bytes or str, not {type(hash_key).__name__}")
    if not key:
        raise ConfigurationError("hash_key must not be empty")
    return key


def _disjoint_lowered(names: frozenset[str], side: dict[Any, Any]) -> bool:
    """Whether no string key of *side*, lower-cased, is in *names* (``map`` runs at C speed; a key
    that is not a string sends it to the slower loop that skips such keys)."""
    try:
        return names.isdisjoint(map(str.lower, side))
    except TypeError:
        return names.isdisjoint(k.lower() for k in side if isinstance(k, str))


class Redactor(ValueRedaction):
    """A writer processor that redacts a record (see the module docstring for what and in which order).

    Args:
        rules: `Rule` objects, dicts ``{"path": ..., "action": ...}`` or path strings (action ``mask``).
        detectors: True for every built-in detector, False or ``()`` for none, or names from `DETECTORS`.
        max_value_bytes: strings longer than this (UTF-8) are truncated; None keeps every string whole
            (data URLs included). At least 256.
        hash_key: the HMAC key of ``hash`` rules; None reads ``LLMAUDIT_REDACT_KEY`` and falls back to a
            random key drawn once per process (hashes then group within one process only).
        before_write: called last with the redacted record; its result is returned (None drops the
            record, which the writer counts as dropped). An exception it raises propagates to the writer,
            which counts the record as failed: it is the one way a `Redactor` call can raise.
        patterns: custom detectors ``{name: regex}`` (an employee number, an internal ticket id…): each
            match becomes ``[REDACTED:<name>]`` like the built-ins'.
        deny_headers: header names (any case) removed from ``record.headers`` on top of the ones that
            are never stored (Authorization, Cookie, API key headers: see
            ``record.headers.NEVER_STORED_HEADERS``).

    Raises:
        ConfigurationError: an invalid rule, path, action, detector name, limit or key.
    """

    # the detectors, patterns, limits and key are `ValueRedaction`'s slots
    __slots__ = ("_args", "_before_write", "_deny_headers", "_failures", "_lock", "_plan", "_rules")

    def __init__(
        self,
        rules: Iterable[RuleSpec] | RuleSpec = (),
        *,
        detectors: bool | Iterable[str] = True,
        max_value_bytes: int | None = DEFAULT_MAX_VALUE_BYTES,
        hash_key: bytes | str | None = None,
        before_write: Callable[[AuditRecord], AuditRecord | None] | None = None,
        deny_headers: Iterable[str] = (),
        patterns: Mapping[str, str] | None = None,
    ) -> None:
        listable = isinstance(deny_headers, Iterable) and not isinstance(deny_headers, str)
        headers = list(deny_headers) if listable else None
        if headers is None or not all(isinstance(h, str) for h in headers):
            raise ConfigurationError(f"deny_headers must be a list of header names, not {deny_headers!r}")
        self._deny_headers = frozenset(h.strip().lower() for h in headers) | NEVER_STORED_HEADERS
        if not isinstance(rules, (str, Rule, Mapping, Iterable)):
            raise ConfigurationError(
                f"rules must be a list of Rule objects, dicts or path strings, not {rules!r}"
            )
        if patterns is not None and not isinstance(patterns, Mapping):
            raise ConfigurationError(f"patterns must be a dict {{name: regex}}, not {patterns!r}")
        specs: Iterable[RuleSpec] = (rules,) if isinstance(rules, (str, Rule, Mapping)) else rules
        self._rules = tuple(_to_rule(spec) for spec in specs)
        plan: dict[str, list[tuple[_Path, str]]] = {name: [] for name in _PREFIXES}
        for rule in self._rules:
            fields, segments = _compile_path(rule.path)
            for name in fields:
                plan[name].append((segments, rule.action))
        self._plan = tuple((name, tuple(plan[name])) for name in _PREFIXES)
        names = _select_detectors(detectors)
        self._detectors = tuple((name, _FINDERS[name]) for name in names)
        self._patterns = _compile_patterns(patterns)
        if max_value_bytes is not None and (
            isinstance(max_value_bytes, bool)
            or not isinstance(max_value_bytes, int)
            or max_value_bytes < MIN_MAX_VALUE_BYTES
        ):
            raise ConfigurationError(
                f"max_value_bytes must be None or an int >= {MIN_MAX_VALUE_BYTES}, not {max_value_bytes!r}"
            )
        self._max = max_value_bytes
        self._limit = sys.maxsize if max_value_bytes is None else max_value_bytes
        self._key = _resolve_key(hash_key)
        if before_write is not None and not callable(before_write):
            raise ConfigurationError(f"before_write must be callable, not {type(before_write).__name__}")
        self._before_write = before_write
        self._failures = 0
        self._lock = threading.Lock()
        # what rebuilds an equal Redactor in the writer process (compiled finders do not pickle);
        # the resolved key, so that keyed hashes match the ones made in this process
        self._args: dict[str, Any] = {
            "rules": self._rules,
            "detectors": names,
            "max_value_bytes": max_value_bytes,
            "hash_key": self._key,
            "before_write": before_write,
            "deny_headers": tuple(sorted(self._deny_headers)),
            "patterns": None if patterns is None else dict(patterns),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._args,))

    def __repr__(self) -> str:  # never shows the key
        detectors = [name for name, _ in self._detectors]
        return (
            f"Redactor(rules={list(self._rules)!r}, detectors={detectors!r}, "
            f"max_value_bytes={self._max!r}, before_write={self._before_write!r})"
        )

    @property
    def failures(self) -> int:
        """How many fields could not be processed and were masked whole instead."""
        return self._failures

    # -- the processor ---------------------------------------------------------------------------

    def __call__(self, record: AuditRecord) -> AuditRecord | None:
        """The redacted record (the same object when nothing changed), passed through ``before_write``."""
        headers = record.headers
        if headers:
            allowed = self._allowed_headers(headers)
            if allowed is not headers:
                record = replace(record, headers=allowed)
        if self._nothing_to_do(record):
            return record if self._before_write is None else self._before_write(record)
        changes: dict[str, Any] = {}
        counts: dict[str, int] = {}
        failed: list[str] = []
        self._fields(record, changes, counts, failed)
        added: list[str] = []
        if counts:
            summary = ", ".join(
                f"{counts[name]} {name}" for name, _ in self._detectors + self._patterns if name in counts
            )
            added.append(f"redacted: {summary}")
        if failed:
            with self._lock:
                self._failures += len(failed)
            added.extend(f"redaction failed on {name}: whole field masked" for name in failed)
        if added:
            changes["notes"] = (*changes.get("notes", record.notes), *added)
        if changes:
            record = replace(record, **changes)
        if self._before_write is not None:
            return self._before_write(record)
        return record

    def _fields(
        self, record: AuditRecord, changes: dict[str, Any], counts: dict[str, int], failed: list[str]
    ) -> None:
        """Every field that can hold text (`_ALL_SCANNED`) into *changes*: the payloads, the text
        fields, the grouping fields; then the fixed-width ones cut to their column."""
        for name, rules in self._plan:
            self._field(record, name, rules, changes=changes, counts=counts, failed=failed)
        derived = self._rederived(record, changes)
        if derived is not None:
            changes.update(derived)
            record = replace(record, **derived)
        if self._detectors or self._patterns:
            for name in _SCANNED_FIELDS:
                self._field(record, name, None, changes=changes, counts=counts, failed=failed)
            for name in _GROUPING_FIELDS:
                self._field(record, name, (), changes=changes, counts=counts, failed=failed)
        for name, limit in _LIMITED:
            value = changes.get(name)
            if isinstance(value, str) and len(value) > limit:  # a marker can be longer than the secret
                changes[name] = value[:limit]

    def _rederived(self, record: AuditRecord, changes: dict[str, Any]) -> dict[str, Any] | None:
        """The conversation fields made again from the payloads as the path rules left them, so that
        what a rule removed from a prompt or an answer is not kept in ``input_text``, ``output_text``
        or ``tool_calls`` (None when no rule changed a payload, or the record has none of them)."""
        if not self._rules or ("request" not in changes and "response" not in changes):
            return None
        if record.input_text is None and record.output_text is None and record.tool_calls is None:
            return None
        inp, out, calls, _ = providers.flat_text(
            record.provider,
            record.operation,
            changes.get("request", record.request),
            changes.get("response", record.response),
        )
        return {"input_text": inp, "output_text": out, "tool_calls": calls}

    def _nothing_to_do(self, record: AuditRecord) -> bool:
        """Whether redaction would leave *record* as it is, decided on its canonical JSON at C speed
        instead of walking every value: no path rule or custom pattern, nothing a
        built-in detector could match, no string over the limit and no base64 data URL. A superset
        test: when in doubt it says False and the full walk decides."""
        if self._rules or self._patterns:
            return False
        try:  # orjson itself, not `dumps`: anything it refuses (nesting deeper than the walk goes, a
            # cycle, a big int) is for the full walk, which masks what it cannot process
            blob = orjson.dumps(_scanned_values(record), option=orjson.OPT_NON_STR_KEYS)
        except Exception:  # noqa: BLE001 - let the full walk deal with it (and fall back if it must)
            return False
        if len(blob) > self._limit:
            return False
        # `find`, not `in`: `needle in some_bytes` first tries the needle as an integer, and raising
        # and clearing that TypeError costs as much as the search itself on a short record
        squeezed = blob.translate(_SQUEEZE_TABLE, b" -")
        if not self._detectors:
            return squeezed.find(b"base00.") < 0  # ";base64," in any case: a data URL
        return _json_is_clean(blob, squeezed)

    def _allowed_headers(self, headers: Any) -> Any:
        """*headers* without denied names (the same object when none is there)."""
        if not isinstance(headers, dict):
            return headers
        deny = self._deny_headers
        for side in headers.values():
            if isinstance(side, dict) and side and not _disjoint_lowered(deny, side):
                break
        else:
            return headers
        return {
            where: {
                k: v for k, v in side.items() if not (isinstance(k, str) and k.lower() in self._deny_headers)
            }
            if isinstance(side, dict)
            else side
            for where, side in headers.items()
        }

    def _field(
        self,
        record: AuditRecord,
        name: str,
        rules: tuple[tuple[_Path, str], ...] | None,
        *,
        changes: dict[str, Any],
        counts: dict[str, int],
        failed: list[str],
    ) -> None:
        """Process one field into *changes*: a payload field when *rules* is not None, a grouping field
        (hashed whole when a detector fires) when they are ``()``; on any exception mask the whole
        field instead."""
        old = getattr(record, name)
        local: dict[str, int] = {}
        try:
            if rules is None:
                new = self._text_field(old, local)
            elif rules or name in _PREFIXES:
                new = self._payload(old, rules, local)
            else:
                new = self._grouping(old, local)
        except Exception:  # noqa: BLE001 - the counted fallback: mask the whole field, never raise
            if name in ("metadata", "headers"):
                new = {"redacted": "could not be processed"}
            else:
                new = (FAILED_TEXT,) if isinstance(old, tuple) else FAILED_TEXT
            failed.append(name)
        else:
            for detector, n in local.items():
                counts[detector] = counts.get(detector, 0) + n
        if new is not old:
            changes[name] = new


def _rebuild(args: dict[str, Any]) -> Redactor:
    """Unpickle a `Redactor` (see ``Redactor.__reduce__``)."""
    return Redactor(**args)
