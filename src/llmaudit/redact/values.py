"""What the `Redactor` does to one value: path rules applied (drop, mask, keyed hash), strings over
the limit and base64 data URLs replaced by a truncation marker, and the detectors run on every string
and every JSON object key, until nothing more matches.

`ValueRedaction` is the configured part of a `Redactor` that walks values; the `Redactor` adds the
record: which fields, the fast path, the notes and the failure count. Runs on the writer thread, on
values the record already holds: it must not do I/O, must not keep anything it saw, and copies a
container only where something in it changed. It must not import the stages above redaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

from ..record.codec import dumps
from .detectors import PATTERNS as _RULE_PATTERNS
from .detectors import candidates
from .finders import _CARD_MAX_DIGITS, _folded_scan, _luhn, _may_match
from .folding import needs_fold
from .paths import _INDEX, _KEY, _MAX_DEPTH, _VALUES, _Path, _TooDeepError

__all__ = ["DATA_URL_MAX_BYTES", "MASK", "ValueRedaction"]

#: A base64 ``data:`` URL longer than this (UTF-8 bytes) is truncated whatever ``max_value_bytes`` says.
DATA_URL_MAX_BYTES: Final = 1024
MASK: Final = "[REDACTED]"
#: Detectors of personal data rather than credentials, not run on the grouping fields: an e-mail
#: address is how many applications name their users, and ``user`` is how the log is searched.
_PERSONAL_DETECTORS: Final = frozenset({"email"})
_HASH_PREFIX: Final = "hmac-sha256:"
_HASH_MARKER = re.compile(r"hmac-sha256:[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MIN_SCAN_LENGTH: Final = 6
#: An int in a payload whose absolute value is at least this has 13 digits: it may be a card number.
_CARD_INT_MIN: Final = 10**12
_DATA_URL = re.compile(r"data:([^,;]{0,255})(?:;[^,;]{0,255}){0,16};base64,", re.IGNORECASE)
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_MAX_SCAN_ROUNDS = 8  # replacements never create new matches; a bound all the same

_Finder = Callable[[str], tuple[str, int]]


def _is_truncation_marker(value: dict[Any, Any]) -> bool:
    sha = value.get("sha256")
    return value.get("truncated") is True and isinstance(sha, str) and _HEX64.fullmatch(sha) is not None


class ValueRedaction:
    """The value-level half of a `Redactor`: its detectors, custom patterns, size limit and hash key,
    and the walk over one field's value. Made only as a `Redactor`, which validates the options."""

    __slots__ = ("_detectors", "_key", "_limit", "_max", "_patterns")

    _detectors: tuple[tuple[str, _Finder], ...]
    _patterns: tuple[tuple[str, _Finder], ...]
    _max: int | None
    _limit: int
    _key: bytes

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
