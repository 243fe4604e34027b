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
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, Final

import orjson

from .. import providers
from .._errors import ConfigurationError
from ..record.codec import dumps
from ..record.headers import NEVER_STORED_HEADERS
from ..record.model import STRING_LIMITS, AuditRecord
from .detectors import (
    CHECKS,
    FORMAT_CHARS,
    MIN_RUN,
    RULE_KEYWORDS,
    candidates,
    fold,
    needs_fold,
    needs_fold_bytes,
)
from .detectors import PATTERNS as _RULE_PATTERNS
from .paths import (
    _INDEX,
    _KEY,
    _MAX_DEPTH,
    _PREFIXES,
    _VALUES,
    Rule,
    RuleSpec,
    _compile_path,
    _Path,
    _to_rule,
    _TooDeepError,
)

__all__ = ["DEFAULT_MAX_VALUE_BYTES", "DETECTORS", "Redactor", "Rule"]

#: Default `Redactor` ``max_value_bytes``: longer strings are replaced by a truncation marker.
DEFAULT_MAX_VALUE_BYTES: Final = 64 * 1024

#: Smallest accepted ``max_value_bytes``: every marker the redactor writes stays below it (idempotency).
MIN_MAX_VALUE_BYTES: Final = 256

#: A base64 ``data:`` URL longer than this (UTF-8 bytes) is truncated whatever ``max_value_bytes`` says.
DATA_URL_MAX_BYTES: Final = 1024

#: The built-in detectors, in the order they run. Each pattern matches the text that is replaced by
#: ``[REDACTED:<name>]`` (only its named group, when it has one: the secret after its key name); a
#: ``card`` match is replaced only when its digits pass the Luhn check. The token formats between
#: ``google_key`` and ``bearer`` come from the catalogue in `llmaudit.redact.detectors` (gitleaks' rules).
DETECTORS: dict[str, re.Pattern[str]] = {
    # before openai_key, and openai_key refuses "sk-ant-": together they cover every "sk-" + 20 chars
    "anthropic_key": re.compile(r"sk-ant-[A-Za-z0-9_-]{16,}"),
    "openai_key": re.compile(r"sk-(?!ant-)[A-Za-z0-9_-]{20,}"),
    "google_key": re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    **_RULE_PATTERNS,
    "bearer": re.compile(r"\bbearer\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    "aws_key": re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),
    "email": re.compile(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    ),
    # digits with single spaces, dashes or dots, or double spaces, between them (see _card_spans)
    "card": re.compile(r"[0-9](?<![0-9]{2})(?:(?:[ .-]| {2})?[0-9]){12,18}(?![0-9])"),
}

#: Fields the log groups and links records by: a value in which a credential detector fires is
#: replaced whole by its keyed hash (``hmac-sha256:<hex>``, as a ``hash`` rule makes it), so equal values
#: still group and a nested session still names its parent.
_GROUPING_FIELDS: Final = ("session_key", "parent_session_key", "user", "client")
#: Detectors of personal data rather than credentials, not run on the grouping fields: an e-mail
#: address is how many applications name their users, and ``user`` is how the log is searched.
_PERSONAL_DETECTORS: Final = frozenset({"email"})
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
MASK: Final = "[REDACTED]"
FAILED_TEXT: Final = "[REDACTED: could not be processed]"
_HASH_PREFIX: Final = "hmac-sha256:"
_HASH_MARKER = re.compile(r"hmac-sha256:[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MIN_SCAN_LENGTH: Final = 6
# a maximal run of >= 13 digits with single spaces, dashes or dots, or double spaces, between them
_CARD_RUN = re.compile(r"[0-9](?<![0-9]{2})(?:(?:[ .-]| {2})?[0-9]){12,}")
_DIGITS = re.compile(r"[0-9]+")
#: An int in a payload whose absolute value is at least this has 13 digits: it may be a card number.
_CARD_INT_MIN: Final = 10**12
_CARD_MIN_DIGITS, _CARD_MAX_DIGITS = 13, 19
_DATA_URL = re.compile(r"data:([^,;]{0,255})(?:;[^,;]{0,255}){0,16};base64,", re.IGNORECASE)
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_PROCESS_KEY: Final = os.urandom(32)
#: The scanned fields that fill a database column of fixed width (cut to it after redaction).
_LIMITED: Final = tuple((n, STRING_LIMITS[n]) for n in _ALL_SCANNED if n in STRING_LIMITS)

_MAX_SCAN_ROUNDS = 8  # replacements never create new matches; a bound all the same


def _compile_patterns(
    patterns: Mapping[str, str] | None,
) -> tuple[tuple[str, Callable[[str], tuple[str, int]]], ...]:
    """Custom detectors ``{name: regex}``, checked now so that a bad one fails at configure time."""
    compiled = []
    for name, source in (patterns or {}).items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or name in DETECTORS:
            raise ConfigurationError(
                f"redaction pattern name {name!r} must be a new word of letters, digits, _ . -"
            )
        try:
            regex = re.compile(source)
        except (re.error, TypeError) as exc:
            raise ConfigurationError(f"redaction pattern {name!r} is not a valid regex: {exc}") from None
        marker = f"[REDACTED:{name}]"
        if regex.search("") is not None or regex.search(marker) is not None:
            raise ConfigurationError(
                f"redaction pattern {name!r} matches the empty string or its own marker {marker!r}"
            )
        compiled.append((name, lambda text, regex=regex, marker=marker: regex.subn(marker, text)))
    return tuple(compiled)


def _select_detectors(detectors: bool | Iterable[str]) -> tuple[str, ...]:
    if detectors is True:
        return tuple(DETECTORS)
    if detectors is False or detectors is None:
        return ()
    names = (detectors,) if isinstance(detectors, str) else tuple(detectors)
    for name in names:
        if name not in DETECTORS:
            raise ConfigurationError(f"unknown redaction detector {name!r}; known: {', '.join(DETECTORS)}")
    return tuple(name for name in DETECTORS if name in names)  # always in the canonical order


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


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position & 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_spans(text: str) -> list[tuple[int, int]]:
    """Spans of Luhn-valid card numbers: 13-19 digits, with single spaces, dashes or dots, or double
    spaces, between them.

    Each maximal run of digits is cut at its separators into groups; the longest Luhn-valid window of
    whole groups starting at each group is taken, so a card inside a longer run is still found. A
    window with a dot between its groups needs groups of 4-6 digits (how cards are written with
    dots), so that a decimal number or a version string is not taken for a card.
    """
    spans: list[tuple[int, int]] = []
    for run in _CARD_RUN.finditer(text):
        base, run_text = run.start(), run.group()
        groups = [(m.start(), m.end()) for m in _DIGITS.finditer(run_text)]
        i = 0
        while i < len(groups):
            best, digits, dotted = -1, "", False
            for j in range(i, len(groups)):
                if j > i:
                    dotted = dotted or "." in run_text[groups[j - 1][1] : groups[j][0]]
                digits += run_text[groups[j][0] : groups[j][1]]
                if len(digits) > _CARD_MAX_DIGITS:
                    break
                if dotted and not all(4 <= end - start <= 6 for start, end in groups[i : j + 1]):
                    break
                if len(digits) >= _CARD_MIN_DIGITS and _luhn(digits):
                    best = j
            if best < 0:
                i += 1
                continue
            spans.append((base + groups[i][0], base + groups[best][1]))
            i = best + 1
    return spans


def _replace_spans(text: str, spans: list[tuple[int, int]], marker: str) -> tuple[str, int]:
    """*text* with each (sorted, disjoint) span replaced by *marker*."""
    if not spans:
        return text, 0
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append(marker)
        last = end
    parts.append(text[last:])
    return "".join(parts), len(spans)


def _anchored_spans(pattern: re.Pattern[str], text: str, search: str, anchor: str) -> list[tuple[int, int]]:
    """Spans of *pattern* matched at each occurrence of *anchor* in *search* (same indices as *text*)."""
    spans: list[tuple[int, int]] = []
    pos = search.find(anchor)
    while pos >= 0:
        match = pattern.match(text, pos)
        if match is None:
            pos = search.find(anchor, pos + 1)
        else:
            spans.append(match.span())
            pos = search.find(anchor, match.end())
    return spans


_Spans = Callable[[str], list[tuple[int, int]]]


def _literal_spans(name: str, literal: str) -> _Spans:
    """Spans of a pattern that starts with *literal* (re then scans for it quickly on its own)."""
    pattern = DETECTORS[name]

    def spans(text: str) -> list[tuple[int, int]]:
        if literal not in text:
            return []
        return [match.span() for match in pattern.finditer(text)]

    return spans


def _rule_spans(name: str) -> _Spans:
    """Spans of a catalogue rule (`llmaudit.redact.detectors`): run only when one of its keywords occurs;
    the named group is the secret when the pattern has one; a match failing the rule's check is kept."""
    pattern, keywords, check = DETECTORS[name], RULE_KEYWORDS[name], CHECKS[name]

    def spans(text: str) -> list[tuple[int, int]]:
        for keyword in keywords:
            if keyword in text:
                break
        else:
            return []
        found = []
        for match in pattern.finditer(text):
            group = match.lastgroup
            span = match.span(group) if group is not None else match.span()
            if check is None or check(text[span[0] : span[1]]):
                found.append(span)
        return found

    return spans


def _aws_spans(text: str) -> list[tuple[int, int]]:
    pattern = DETECTORS["aws_key"]
    spans = _anchored_spans(pattern, text, text, "AKIA") if "AKIA" in text else []
    if "ASIA" in text:
        spans = sorted(spans + _anchored_spans(pattern, text, text, "ASIA"))
    return spans


def _bearer_spans(text: str) -> list[tuple[int, int]]:
    pattern = DETECTORS["bearer"]
    if text.isascii():  # lower() keeps the indices: match only where "bearer" occurs, in any case
        lowered = text.lower()
        if "bearer" not in lowered:
            return []
        return _anchored_spans(pattern, text, lowered, "bearer")
    if b"bearer" not in text.encode("utf-8", "surrogatepass").lower():
        return []
    return [match.span() for match in pattern.finditer(text)]


_EMAIL_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")


def _email_spans(text: str) -> list[tuple[int, int]]:
    """Match the e-mail pattern only from the start of the run of local-part characters before each "@"."""
    at = text.find("@")
    if at < 0:
        return []
    pattern = DETECTORS["email"]
    spans: list[tuple[int, int]] = []
    floor = 0
    while at >= 0:
        start = at
        while start > floor and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        match = pattern.match(text, start) if start < at else None
        if match is None:
            at = text.find("@", at + 1)
        else:
            spans.append(match.span())
            floor = match.end()
            at = text.find("@", floor)
    return spans


# ASCII letters -> lower case, digits -> "0", anything else -> "."; deleting spaces and dashes as well
# leaves every card number written with spaces or dashes as >= 13 zeros in a row and every "bearer"
# (in any case) as "bearer"
_SQUEEZE_TABLE = bytes(
    48 if 48 <= b <= 57 else b + 32 if 65 <= b <= 90 else b if 97 <= b <= 122 else 46 for b in range(256)
)
_THIRTEEN_DIGITS = b"0" * _CARD_MIN_DIGITS
#: The fast path's needles (see `Redactor._nothing_to_do`): key prefixes in the raw JSON (and the
#: catalogue's `candidates`), and in the squeezed JSON a data URL (";base64," in any case) or a
#: bearer token.
_OPENAI_KEY_START = re.compile(rb"sk-")
_OTHER_KEY_STARTS = re.compile(rb"A(?:Iza|KIA|SIA)")
_SQUEEZED_MARKERS = re.compile(rb"base00\.|bearer")
#: A card written with dots, squeezed: a dot between two groups of (at least) four digits.
_DOTTED_DIGITS = b"0000.0000"
_BEARER_MIN_LENGTH: Final = len("bearer x1234567")


def _squeeze(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").translate(_SQUEEZE_TABLE, b" -")


def _card_finder_spans(text: str) -> list[tuple[int, int]]:
    if len(text) < _CARD_MIN_DIGITS:
        return []
    squeezed = _squeeze(text)
    if _THIRTEEN_DIGITS not in squeezed and _DOTTED_DIGITS not in squeezed:
        return []
    return _card_spans(text)


def _may_match(text: str) -> bool:
    """A cheap test, true whenever some built-in detector could match *text* (single characters first:
    ``in`` on one character is a memchr; longer needles cost about a nanosecond per character). Text
    with format or compatibility characters is tested in its folded form (see `detectors.fold`)."""
    if not text.isascii() and needs_fold(text):
        text = unicodedata.normalize("NFKC", FORMAT_CHARS.sub("", text))
    if "@" in text or ("-" in text and "sk-" in text):
        return True
    if "A" in text and "I" in text and ("AIza" in text or "AKIA" in text or "ASIA" in text):
        return True
    if len(text) < _CARD_MIN_DIGITS:
        return False
    raw = text.encode("utf-8", "surrogatepass")
    squeezed = raw.translate(_SQUEEZE_TABLE, b" -")
    return (
        _THIRTEEN_DIGITS in squeezed
        or (len(text) >= _BEARER_MIN_LENGTH and b"bearer" in squeezed)
        or _DOTTED_DIGITS in squeezed
        or (len(text) >= MIN_RUN and bool(candidates(raw)))
    )


#: How each detector finds its spans: a cheap pre-check (a substring test), then the regex only where
#: it can match.
_SPAN_FINDERS: Final[Mapping[str, _Spans]] = {
    "anthropic_key": _literal_spans("anthropic_key", "sk-ant-"),
    "openai_key": _literal_spans("openai_key", "sk-"),
    "google_key": _literal_spans("google_key", "AIza"),
    **{name: _rule_spans(name) for name in _RULE_PATTERNS},
    "bearer": _bearer_spans,
    "aws_key": _aws_spans,
    "email": _email_spans,
    "card": _card_finder_spans,
}


def _finder(name: str, spans: _Spans) -> Callable[[str], tuple[str, int]]:
    marker = f"[REDACTED:{name}]"
    return lambda text: _replace_spans(text, spans(text), marker)


#: How each detector is run: its spans replaced by ``[REDACTED:<name>]``; returns the new text and
#: the number of replacements.
_FINDERS: Final[Mapping[str, Callable[[str], tuple[str, int]]]] = {
    name: _finder(name, spans) for name, spans in _SPAN_FINDERS.items()
}


def _folded_scan(text: str, names: Iterable[str]) -> tuple[str, dict[str, int]]:
    """*text* with the matches of the detectors *names* in its folded form replaced in the original
    (a key split by zero-width characters or written in full-width letters), once; earlier detectors
    win where matches overlap."""
    folded, origin = fold(text)
    chosen: list[tuple[int, int, str]] = []
    for name in names:
        for start, end in _SPAN_FINDERS[name](folded):
            span = (origin[start], origin[end - 1] + 1)
            if all(span[1] <= s or span[0] >= e for s, e, _ in chosen):
                chosen.append((*span, name))
    if not chosen:
        return text, {}
    chosen.sort()
    parts: list[str] = []
    counts: dict[str, int] = {}
    last = 0
    for start, end, name in chosen:
        parts.append(text[last:start])
        parts.append(f"[REDACTED:{name}]")
        counts[name] = counts.get(name, 0) + 1
        last = end
    parts.append(text[last:])
    return "".join(parts), counts


def _is_truncation_marker(value: dict[Any, Any]) -> bool:
    sha = value.get("sha256")
    return value.get("truncated") is True and isinstance(sha, str) and _HEX64.fullmatch(sha) is not None


def _disjoint_lowered(names: frozenset[str], side: dict[Any, Any]) -> bool:
    """Whether no string key of *side*, lower-cased, is in *names* (``map`` runs at C speed; a key
    that is not a string sends it to the slower loop that skips such keys)."""
    try:
        return names.isdisjoint(map(str.lower, side))
    except TypeError:
        return names.isdisjoint(k.lower() for k in side if isinstance(k, str))


class Redactor:
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

    __slots__ = (
        "_args",
        "_before_write",
        "_deny_headers",
        "_detectors",
        "_failures",
        "_key",
        "_limit",
        "_lock",
        "_max",
        "_patterns",
        "_plan",
        "_rules",
    )

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
        (a few µs per KB) instead of walking every value: no path rule or custom pattern, nothing a
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
        # Needles of several bytes through `re`, which skips to their first byte at C speed: on prose
        # it is two to three times faster than `bytes.find`, and one pattern covers many needles.
        # Text with format or compatibility characters (a key split by a zero-width space, full-width
        # letters) is for the walk, which matches on its folded form.
        return (
            blob.find(b"@") < 0
            and _OPENAI_KEY_START.search(blob) is None
            and _OTHER_KEY_STARTS.search(blob) is None
            and squeezed.find(_THIRTEEN_DIGITS) < 0
            and _SQUEEZED_MARKERS.search(squeezed) is None
            and squeezed.find(_DOTTED_DIGITS) < 0
            and not candidates(blob)
            and not needs_fold_bytes(blob)
        )

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

    def _text_field(self, value: Any, counts: dict[str, int]) -> Any:
        """``error`` / ``url`` (a string), ``tags`` / ``notes`` (a tuple of strings) or ``headers`` (a
        dict): no path rules, detectors only (and the size limit for the header values)."""
        if isinstance(value, str):
            return self._scan(value, counts)
        if isinstance(value, dict):
            return self._walk(value, counts, 0)
        if isinstance(value, tuple):  # tags and notes (strings), tool_calls (objects)
            new = tuple(
                self._scan(item, counts)
                if isinstance(item, str)
                else self._walk(item, counts, 0)
                if isinstance(item, (dict, list))
                else item
                for item in value
            )
            return value if all(a is b for a, b in zip(new, value, strict=True)) else new
        return value

    def _grouping(self, value: Any, counts: dict[str, int]) -> Any:
        """A session key, user or client: the same value, or its keyed hash when a credential
        detector fires in it."""
        if not isinstance(value, str) or len(value) < _MIN_SCAN_LENGTH or not _may_match(value):
            return value
        found = False
        for name, find in self._detectors:
            if name not in _PERSONAL_DETECTORS:
                n = find(value)[1]
                if n:
                    counts[name] = counts.get(name, 0) + n
                    found = True
        return self._transform(value, "hash") if found else value

    def _payload(self, value: Any, rules: tuple[tuple[_Path, str], ...], counts: dict[str, int]) -> Any:
        for segments, action in rules:
            value = self._apply_rule(value, segments, action)
        if self._detectors or self._patterns or self._max is not None:
            value = self._walk(value, counts, 0)
        return value

    # -- path rules ------------------------------------------------------------------------------

    def _transform(self, value: Any, action: str) -> Any:
        if action == "mask":
            return value if isinstance(value, str) and value == MASK else MASK
        if isinstance(value, str) and value.startswith(_HASH_PREFIX) and _HASH_MARKER.fullmatch(value):
            return value  # already hashed: hashing again would break idempotency and grouping
        return _HASH_PREFIX + hmac.new(self._key, dumps(value), hashlib.sha256).hexdigest()

    def _apply_rule(self, value: Any, segments: _Path, action: str) -> Any:
        if not segments:  # the whole field
            return None if action == "drop" else self._transform(value, action)
        return self._apply(value, segments, 0, action)

    def _apply(self, value: Any, segments: _Path, i: int, action: str) -> Any:  # noqa: PLR0911, PLR0912
        kind, arg = segments[i]
        keys: Iterable[Any]
        if kind in (_KEY, _VALUES):
            if not isinstance(value, dict):
                return value
            if kind == _KEY:
                if arg not in value:
                    return value
                keys = (arg,)
            else:
                keys = tuple(value)
        else:
            if not isinstance(value, (list, tuple)) or not value:
                return value
            if kind == _INDEX:
                index = arg + len(value) if arg < 0 else arg
                if not 0 <= index < len(value):
                    return value
                keys = (index,)
            else:
                keys = range(len(value))
        last = i == len(segments) - 1
        if last and action == "drop":
            if isinstance(value, dict):
                gone = set(keys)
                return {k: v for k, v in value.items() if k not in gone}
            gone_items = set(keys)
            return [item for n, item in enumerate(value) if n not in gone_items]
        new: Any = None
        for key in keys:
            old = value[key]
            item = self._transform(old, action) if last else self._apply(old, segments, i + 1, action)
            if item is not old:
                if new is None:
                    new = dict(value) if isinstance(value, dict) else list(value)
                new[key] = item
        return value if new is None else new

    # -- large values and detectors --------------------------------------------------------------

    def _walk(self, value: Any, counts: dict[str, int], depth: int) -> Any:  # noqa: PLR0911, PLR0912
        """*value* with large strings truncated and detector matches replaced (copied only where changed).

        Strings and scalars inside containers are handled inline: this loop is the redactor's hot path.
        """
        cls = type(value)
        if cls is str:
            return self._string(value, counts)
        if value is None or cls is float or cls is bool:
            return value
        if cls is int:
            return value if -_CARD_INT_MIN < value < _CARD_INT_MIN else self._big_int(value, counts)
        if depth >= _MAX_DEPTH:
            raise _TooDeepError(f"nested deeper than {_MAX_DEPTH} levels")
        if isinstance(value, dict):
            skip = "sha256" if "truncated" in value and _is_truncation_marker(value) else None
            new_dict: dict[Any, Any] | None = None
            for key, item in value.items():
                cls = type(item)
                if cls is str:
                    if len(item) < _MIN_SCAN_LENGTH or key == skip:
                        continue
                    result = self._string(item, counts)
                elif (
                    item is None
                    or (cls is int and -_CARD_INT_MIN < item < _CARD_INT_MIN)
                    or cls is float
                    or cls is bool
                ):
                    continue
                else:
                    result = self._walk(item, counts, depth + 1)
                if result is not item:
                    if new_dict is None:
                        new_dict = dict(value)
                    new_dict[key] = result
            result = value if new_dict is None else new_dict
            if self._patterns or self._detectors:
                return self._keys(result, counts)
            return result
        if isinstance(value, (list, tuple)):
            new_list: list[Any] | None = None
            for n, item in enumerate(value):
                cls = type(item)
                if cls is str:
                    if len(item) < _MIN_SCAN_LENGTH:
                        continue
                    result = self._string(item, counts)
                elif (
                    item is None
                    or (cls is int and -_CARD_INT_MIN < item < _CARD_INT_MIN)
                    or cls is float
                    or cls is bool
                ):
                    continue
                else:
                    result = self._walk(item, counts, depth + 1)
                if result is not item:
                    if new_list is None:
                        new_list = list(value)
                    new_list[n] = result
            return value if new_list is None else new_list
        if isinstance(value, str):
            return self._string(value, counts)
        if isinstance(value, (bool, int, float, datetime)):
            return value
        # outside JSON: the codec would store repr(value) unscanned, so scan that text instead
        return self._string(repr(value), counts)

    def _big_int(self, value: int, counts: dict[str, int]) -> int | str:
        """A JSON number of 13 digits or more: ``[REDACTED:card]`` if it is a Luhn-valid card number
        (and the ``card`` detector is on), else the number itself."""
        if abs(value) >= 10**_CARD_MAX_DIGITS:  # before str(): a huge int may not even convert
            return value
        if not _luhn(str(abs(value))) or all(n != "card" for n, _ in self._detectors):
            return value
        counts["card"] = counts.get("card", 0) + 1
        return "[REDACTED:card]"

    def _keys(self, value: dict[Any, Any], counts: dict[str, int]) -> dict[Any, Any]:
        """*value* with detector matches replaced in its keys (a metadata key, a header name, a JSON
        object keyed by tokens). All keys are tested at once first; a key made equal to another by
        its marker gets a ``#2``, ``#3``… suffix, so that no value is lost."""
        try:
            joined = "\n".join(value)
        except TypeError:
            joined = "\n".join(k for k in value if isinstance(k, str))
        if len(joined) < _MIN_SCAN_LENGTH or not (self._patterns or _may_match(joined)):
            return value
        renamed = {}
        for key in value:
            if isinstance(key, str):
                new = self._scan(key, counts)
                if new is not key:
                    renamed[key] = new
        if not renamed:
            return value
        out: dict[Any, Any] = {}
        for key, item in value.items():
            name = renamed.get(key, key)
            n = 1
            while name in out:
                n += 1
                name = f"{renamed.get(key, key)}#{n}"
            out[name] = item
        return out

    def _string(self, text: str, counts: dict[str, int]) -> Any:
        """A payload string: truncated when too large, else scanned by the detectors."""
        size = len(text) * 4  # an upper bound of its UTF-8 length
        if size > self._limit or (
            size > DATA_URL_MAX_BYTES and text[0] in "dD" and text[:5].lower() == "data:"
        ):
            marker = self._truncate(text, counts)
            if marker is not None:
                return marker
        if len(text) < _MIN_SCAN_LENGTH or not (self._patterns or (self._detectors and _may_match(text))):
            return text
        scanned = self._scan(text, counts)
        size = len(scanned) * 4
        if scanned is not text and (size > self._limit or size > DATA_URL_MAX_BYTES):
            marker = self._truncate(scanned, counts)  # markers can make a string longer than the limit
            if marker is not None:
                return marker
        return scanned

    def _truncate(self, text: str, counts: dict[str, int]) -> dict[str, Any] | None:
        """The truncation marker of *text* if it is too large (``self._max`` is set), else None."""
        limit = self._max
        if limit is None:
            return None
        chars = len(text)
        data_url = _DATA_URL.match(text) if text[:5].lower() == "data:" else None
        if chars * 4 <= limit and data_url is None:
            return None
        encoded = text.encode("utf-8", "surrogatepass")
        size = len(encoded)
        if size <= limit and (data_url is None or size <= DATA_URL_MAX_BYTES):
            return None
        marker: dict[str, Any] = {
            "truncated": True,
            "bytes": size,
            "sha256": hashlib.sha256(encoded).hexdigest(),
        }
        if data_url is not None and _MIME.fullmatch(data_url.group(1)):
            marker["media_type"] = self._scan(data_url.group(1), counts)
        return marker

    def _scan(self, text: str, counts: dict[str, int]) -> str:
        """*text* with every detector match replaced, repeated until nothing matches (idempotency)."""
        if len(text) < _MIN_SCAN_LENGTH or (text.startswith(_HASH_PREFIX) and _HASH_MARKER.fullmatch(text)):
            return text
        if self._detectors and not text.isascii() and needs_fold(text):
            text = self._scan_folded(text, counts)
            active = self._patterns
        elif self._detectors and _may_match(text):
            rules = candidates(text.encode("utf-8", "surrogatepass"))
            active = (
                tuple(d for d in self._detectors if d[0] in rules or d[0] not in _RULE_PATTERNS)
                + self._patterns
            )
        else:
            active = self._patterns
        if not active:
            return text
        for _ in range(_MAX_SCAN_ROUNDS):
            changed = False
            for name, find in active:
                text, found = find(text)
                if found:
                    counts[name] = counts.get(name, 0) + found
                    changed = True
            if not changed:
                return text
        return text

    def _scan_folded(self, text: str, counts: dict[str, int]) -> str:
        """*text* (which folding changes) with the built-in detectors' matches in its folded form
        replaced in the original, repeated until nothing matches."""
        names = [name for name, _ in self._detectors]
        for _ in range(_MAX_SCAN_ROUNDS):
            if not _may_match(text):
                return text
            text, found = _folded_scan(text, names)
            if not found:
                return text
            for name, n in found.items():
                counts[name] = counts.get(name, 0) + n
        return text


def _rebuild(args: dict[str, Any]) -> Redactor:
    """Unpickle a `Redactor` (see ``Redactor.__reduce__``)."""
    return Redactor(**args)
