"""The built-in detectors and how each one finds its matches in a text: `DETECTORS` (the patterns,
in the order they run), a cheap pre-check per detector so that its regex runs only where it can
match, the card numbers' Luhn check, the matching on folded text, and custom patterns' compilation.

Pure functions over strings, compiled once at import: they run on the writer thread for each string
the `Redactor` scans, so they must stay cheap, do no I/O and keep no state. The token catalogue and
its keyword pre-filter come from `redact.detectors`, the folding from `redact.folding`. Nothing here
imports the `Redactor` or any stage above the redaction stage.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from .._errors import ConfigurationError
from .detectors import CHECKS, MIN_RUN, RULE_KEYWORDS, candidates
from .detectors import PATTERNS as _RULE_PATTERNS
from .folding import FORMAT_CHARS, fold, needs_fold, needs_fold_bytes

__all__ = ["DETECTORS"]

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

# a maximal run of >= 13 digits with single spaces, dashes or dots, or double spaces, between them
_CARD_RUN = re.compile(r"[0-9](?<![0-9]{2})(?:(?:[ .-]| {2})?[0-9]){12,}")
_DIGITS = re.compile(r"[0-9]+")
_CARD_MIN_DIGITS, _CARD_MAX_DIGITS = 13, 19


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
    with format or compatibility characters is tested in its folded form (see `folding.fold`)."""
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


def _json_is_clean(blob: bytes, squeezed: bytes) -> bool:
    """Whether no built-in detector can match anything in *blob* (a record's JSON; *squeezed* is it
    translated by `_SQUEEZE_TABLE`), or a data URL start there: the `Redactor`'s fast path. A
    superset test of `_may_match` over the whole record: when in doubt it says False."""
    # `find`, not `in` (see the Redactor's fast path); needles of several bytes through `re`, which
    # skips to their first byte at C speed: on prose it is two to three times faster than
    # `bytes.find`, and one pattern covers many needles. Text with format or compatibility
    # characters (a key split by a zero-width space, full-width letters) is for the walk, which
    # matches on its folded form.
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
