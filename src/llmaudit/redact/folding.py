"""Text folding for the detectors: keys can be split by zero-width or other format characters (Unicode
category Cf) or written in full-width or other compatibility forms (``ghp_`` in full-width letters,
U+FF47...). `needs_fold` decides cheaply whether a text needs it; `fold` removes the format characters
and applies NFKC character by character, keeping for each folded character the index of the original
character it came from, so that a match in the folded text redacts the original span.

Pure functions and compiled tables, run on the writer thread: no I/O, no state, and nothing from the
stages above redaction.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["FORMAT_CHARS", "fold", "needs_fold", "needs_fold_bytes"]


#: The format characters (Unicode category Cf) of Python's Unicode database, as ranges: zero-width
#: space and joiners, word joiner, BOM, soft hyphen, bidi controls, tag characters... The test suite
#: checks this list against ``unicodedata`` (computing it here would cost 0.1 s at import).
_CF_RANGES: Final = (
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
FORMAT_CHARS: Final = re.compile(
    "[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in _CF_RANGES) + "]"
)


# Whether text needs folding is decided on its UTF-8 bytes, each family behind its own lead byte so
# that `re` skips to it at memchr speed (a character class over the whole text costs 20 times more):
# the full-width forms U+FF01-FF5E (and the BOM, U+FFF9-FFFB), the format characters of the General
# Punctuation block (zero-width space and joiners, bidi controls, word joiner...), the soft hyphen
# and the tag characters U+E0000-E007F (invisible "ASCII smuggling").
_FOLD_EF: Final = re.compile(rb"\xef(?:[\xbc\xbd]|\xbb\xbf|\xbf[\xb9-\xbb])")
_FOLD_E2: Final = re.compile(rb"\xe2(?:\x80[\x8b-\x8f\xaa-\xae]|\x81[\xa0-\xa4\xa6-\xaf])")
_SOFT_HYPHEN: Final = b"\xc2\xad"
_TAGS_LEAD: Final = b"\xf3"  # U+C0000-FFFFF: only the tags (plane 14) and private use start so


def needs_fold_bytes(data: bytes) -> bool:
    """Whether the UTF-8 text *data* holds a format character that can hide inside a key, or a
    full-width form (never for ASCII).

    Other compatibility characters (ligatures, superscripts, mathematical letters) and the format
    characters of other scripts (Arabic, Syriac, Mongolian...) are not a reason to fold: no key is
    pasted with them by accident, and checking all of non-ASCII text for them would cost the writer
    thread more than all the detectors together. (When a text is folded, every format character is
    removed.)
    """
    if data.isascii():
        return False
    return (
        _FOLD_EF.search(data) is not None
        or _FOLD_E2.search(data) is not None
        or data.find(_TAGS_LEAD) >= 0  # one byte: a memchr
        or (data.find(b"\xc2") >= 0 and data.find(_SOFT_HYPHEN) >= 0)
    )


def needs_fold(text: str) -> bool:
    """`needs_fold_bytes` of a string."""
    return not text.isascii() and needs_fold_bytes(text.encode("utf-8", "surrogatepass"))


def fold(text: str) -> tuple[str, list[int]]:
    """*text* without format characters and NFKC-normalised character by character, and for each of
    its characters the index of the original character it came from (plus ``len(text)`` at the end,
    so that an end offset maps too)."""
    out: list[str] = []
    origin: list[int] = []
    normalize = unicodedata.normalize
    for i, char in enumerate(text):
        if char.isascii():
            out.append(char)
            origin.append(i)
            continue
        if FORMAT_CHARS.match(char):
            continue
        folded = normalize("NFKC", char)
        out.append(folded)
        origin.extend([i] * len(folded))
    origin.append(len(text))
    return "".join(out), origin
