"""Recorded values made safe to show: the one way a stored string reaches a terminal or a pipe.

Everything in a record (prompts, answers, client, model, error, session key, user, tags, metadata, even
the id of a tampered row) is untrusted: an end user chose it. So no recorded string is ever parsed as
rich markup (it becomes a `Text`, never a markup `str`), and every character a terminal could act on,
or that hides or reorders text, is replaced by a visible escape: ``\\x1b``, ``\\u202e``, ``\\U000e0041``.
That covers the C0 controls (ESC, BEL, backspace, carriage return, NUL…; newline and tab are kept in
multi-line text only), DEL, the C1 controls (8-bit CSI and OSC), the Unicode format characters (bidi
overrides and isolates, zero-width characters, tag characters; the zero-width joiner of emoji
sequences excepted), line and paragraph separators and lone surrogates. The same text goes to a
terminal and to a pipe: a pipe may end in a terminal too (``| less -R``, ``| tee``).

``--json`` output goes through `json_line`: valid JSON, with those characters as ``\\uXXXX`` escapes.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from typing import Any

import click
from rich.text import Text

__all__ = ["ESCAPE_STYLE", "EscapedLogHandler", "json_line", "plain", "shown"]

#: How an escaped character stands out on a terminal (dropped, like every style, through a pipe).
ESCAPE_STYLE = "reverse"

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ZERO_WIDTH_JOINER = "\u200d"
_MULTILINE_KEEP = frozenset("\n\t")
# printable ASCII (plus newline and tab in multi-line text) needs no look at each character
_SAFE_LINE = re.compile(r"[\x20-\x7e]*")
_SAFE_LINES = re.compile(r"[\x20-\x7e\n\t]*")
_JSON_UNSAFE = re.compile(r"[^\x00-\x7e]")  # DEL and every non-ASCII character


def _unsafe(char: str) -> bool:
    return char != _ZERO_WIDTH_JOINER and unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point < 0x10000 else f"\\U{point:08x}"


def _pieces(text: str, multiline: bool) -> list[tuple[str, bool]]:
    """*text* as runs of (characters, is_escape)."""
    if (_SAFE_LINES if multiline else _SAFE_LINE).fullmatch(text):
        return [(text, False)]
    keep = _MULTILINE_KEEP if multiline else frozenset()
    pieces: list[tuple[str, bool]] = []
    start = 0
    for index, char in enumerate(text):
        if char in keep or not _unsafe(char):
            continue
        if start < index:
            pieces.append((text[start:index], False))
        pieces.append((_escape(char), True))
        start = index + 1
    if start < len(text):
        pieces.append((text[start:], False))
    return pieces


def _as_text(value: Any) -> str:
    return "-" if value is None else value if isinstance(value, str) else str(value)


def plain(value: Any, *, multiline: bool = False) -> str:
    """*value* as a string safe to print: unsafe characters escaped, ``None`` as ``-``.

    Args:
        value: a recorded value (any type; not a string is shown as ``str(value)``).
        multiline: keep newlines and tabs (message text); otherwise they are escaped too (one line).
    """
    return "".join(piece for piece, _ in _pieces(_as_text(value), multiline))


def shown(value: Any, *, multiline: bool = False, style: str = "") -> Text:
    """*value* as a rich `Text` (never markup), unsafe characters escaped and highlighted.

    Args:
        value: a recorded value (any type; ``None`` is shown as ``-``).
        multiline: keep newlines and tabs (message text).
        style: the style of the whole text.
    """
    text = Text(style=style)
    for piece, escaped in _pieces(_as_text(value), multiline):
        text.append(piece, style=ESCAPE_STYLE if escaped else None)
    return text


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    if not _unsafe(char):
        return char
    point = ord(char)
    if point < 0x10000:
        return f"\\u{point:04x}"
    point -= 0x10000  # a UTF-16 surrogate pair, as JSON spells a character beyond the BMP
    return f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}"


def json_line(value: Any) -> str:
    """*value* as one line of JSON, readable (non-ASCII text kept) but with every unsafe character escaped.

    JSON already escapes the C0 controls; DEL, C1, format characters, U+2028/U+2029 and lone surrogates
    are escaped here. They can only occur inside JSON strings, where ``\\uXXXX`` means the same
    character, so the line decodes to exactly the recorded value.
    """
    encoded = json.dumps(value, ensure_ascii=False, default=str)
    return _JSON_UNSAFE.sub(_json_escape, encoded)


class EscapedLogHandler(logging.Handler):
    """The ``llmaudit`` logger's warnings on stderr while a command runs, escaped like everything else
    (a storage's warning can quote a recorded value). Installed on the logger itself, so Python's
    last-resort handler, which would print them raw, is not used."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(plain(self.format(record), multiline=True), err=True)
        except Exception:  # noqa: BLE001 - logging's own contract: a handler reports, never raises
            self.handleError(record)
