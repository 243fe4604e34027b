"""How the viewer turns records into what its templates show: the conversation of a session as a
tree of turns, a JSON value as escaped, highlighted and collapsible HTML, and the formatting of
numbers, times and untrusted text.

Every recorded string is untrusted. Text is cleaned (`visible`: control characters such as ANSI
escapes shown as their Unicode control pictures, lone surrogates replaced) and HTML-escaped before
it reaches a page; the only HTML built here is `markupsafe.Markup` made of fixed tags around
escaped text. Nothing here reads the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup

from .. import providers
from ..integrity.chain import is_tombstone
from ..providers import Part
from ..record.model import AuditRecord, record_kind
from ..storage._base import is_error

__all__ = [
    "JSON_CHAR_BUDGET",
    "TEXT_LIMIT_CHARS",
    "Turn",
    "build_turns",
    "clipped",
    "duration",
    "json_html",
    "markers",
    "money",
    "number",
    "span",
    "timestamp",
    "visible",
]

#: Longest text of one message shown in a page; the rest is behind a "show all" link.
TEXT_LIMIT_CHARS = 20_000
#: How much JSON text a record page renders before it stops and links to the raw value.
JSON_CHAR_BUDGET = 400_000
#: Deepest JSON nesting rendered as a tree; deeper values are shown as (cut) JSON text.
JSON_DEPTH_LIMIT = 40
#: Levels of a JSON tree open when the page loads.
JSON_OPEN_LEVELS = 3
_STRING_LIMIT_CHARS = 5_000
#: What a missing number or time is shown as (an en dash).
NONE = "\u2013"

# C0 and C1 controls but tab and newline, DEL: shown as pictures (U+2400 block) or U+FFFD
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# in a Python string every surrogate code point is a lone one (a pair is one code point)
_SURROGATES = re.compile("[\ud800-\udfff]")
_MARKER = re.compile(r"^(?:\[REDACTED(?::[A-Za-z0-9_.-]+)?\]|hmac-sha256:[0-9a-f]{64}|erased:[0-9a-f]{64})$")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


def visible(text: Any) -> str:
    """*text* as a string that is safe to encode and shows every character: lone surrogates become
    U+FFFD, control characters (ANSI escapes, NUL, bells...) their control pictures."""
    value = text if isinstance(text, str) else str(text)
    if not value.isascii():
        value = _SURROGATES.sub("\ufffd", value)
    return _CONTROLS.sub(_picture, value)


def clipped(text: str | None, limit: int = TEXT_LIMIT_CHARS) -> tuple[str, int]:
    """*text* cut to *limit* characters, and how many were left out."""
    if text is None:
        return "", 0
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def money(value: float | None) -> str:
    return NONE if value is None else f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


def number(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def duration(value: float | None) -> str:
    """Milliseconds for people: ``0.19 ms``, ``12.3 ms``, ``1,204 ms``."""
    if value is None:
        return NONE
    if value >= 100:
        return f"{value:,.0f} ms"
    return f"{value:.2g} ms" if value < 1 else f"{value:.1f} ms"


def span(value: timedelta) -> str:
    """A bucket's width for people: ``1 minute``, ``15 minutes``, ``1 hour``, ``7 days``."""
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def timestamp(value: datetime | None, *, precise: bool = False) -> str:
    if value is None:
        return NONE
    return f"{value:%Y-%m-%d %H:%M:%S.%f}"[:-3] if precise else f"{value:%Y-%m-%d %H:%M:%S}"


# -- the conversation ----------------------------------------------------------------------------


@dataclass(slots=True)
class Message:
    """One chat bubble: who, what kind, its (clipped) text and how much was left out."""

    role: str
    kind: str
    text: str
    more: int = 0
    name: str | None = None
    call_id: str | None = None


@dataclass(slots=True)
class Turn:
    """One record in a session's tree: an LLM call (its chat), a function record with the calls
    made inside it (``children``), or an aggregation record (``covers``: the ids it lists)."""

    record: AuditRecord
    kind: str
    earlier: list[Message] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    answer: list[Message] = field(default_factory=list)
    vectors: tuple[int, int | None] | None = None
    children: list[Turn] = field(default_factory=list)
    covers: list[str] = field(default_factory=list)
    error: bool = False


def _message(part: Part) -> Message:
    text, more = clipped(part.text)
    return Message(part.role, part.kind, text, more, part.name, part.call_id)


def _flat(record: AuditRecord) -> tuple[list[Message], list[Message]]:
    """The stored flat text, for a record no provider reads (or whose payloads were erased)."""
    asked: list[Message] = []
    answered: list[Message] = []
    if record.input_text:
        text, more = clipped(record.input_text)
        asked.append(Message("input", "text", text, more))
    if record.output_text:
        text, more = clipped(record.output_text)
        answered.append(Message("assistant", "text", text, more))
    for call in record.tool_calls or ():
        if isinstance(call, dict):
            text, more = clipped(str(call.get("arguments") or ""))
            answered.append(Message("assistant", "tool_call", text, more, call.get("name"), call.get("id")))
    return asked, answered


def _call_turn(record: AuditRecord, first: bool) -> Turn:
    turn = Turn(record, "call", error=is_error(record))
    found = providers.record_conversation(record.provider, record.operation, record.request, record.response)
    if not found.input and not found.output and found.vectors is None:
        turn.messages, turn.answer = _flat(record)
        return turn
    asked = [_message(p) for p in found.input]
    # a chat request repeats the history: what came before the last assistant turn is folded away
    # (shown on demand), except in the session's first call
    last_assistant = max((i for i, m in enumerate(asked) if m.role in ("assistant", "model")), default=-1)
    split = 0 if first else last_assistant + 1
    _describe_media(asked, record.request)
    turn.earlier, turn.messages = asked[:split], asked[split:]
    turn.answer = [_message(p) for p in found.output]
    turn.vectors = found.vectors
    return turn


def _describe_media(messages: list[Message], request: Any) -> None:
    """Give each media message the size and hash of the value the redactor put in its place (the
    request's truncation markers, in order): the conversation shows what was sent, never its bytes."""
    media = [m for m in messages if m.kind == "media"]
    if not media:
        return
    found = [item for item in _walk_values(request) if _is_truncation(item)]
    for message, marker in zip(media, found, strict=False):
        kind = marker.get("media_type") or message.text or "media"
        digest = str(marker.get("sha256", ""))[:16]
        message.text = f"{kind} · {_size(int(marker['bytes']))} · sha256 {digest}…"


def _is_truncation(value: Any) -> bool:
    return isinstance(value, dict) and value.get("truncated") is True and isinstance(value.get("bytes"), int)


def _walk_values(value: Any, limit: int = 100_000) -> list[Any]:
    """The containers of *value* in document order, without recursion (payloads nest deeply)."""
    out: list[Any] = []
    stack = [value]
    while stack and len(out) < limit:
        item = stack.pop()
        if isinstance(item, dict):
            out.append(item)
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return out


def _covers(record: AuditRecord) -> list[str]:
    request = record.request if isinstance(record.request, dict) else {}
    ids = request.get("record_ids")
    return [str(i) for i in ids if isinstance(i, str)][:1000] if isinstance(ids, list) else []


def build_turns(records: Iterable[AuditRecord]) -> list[Turn]:
    """A session's records as a tree, in time order: each record under the ``@audited`` function
    record it names as ``parent_id`` (when that one is in the session too), the rest at the top."""
    ordered = list(records)
    turns: dict[str, Turn] = {}
    first_call = True
    for record in ordered:
        kind = record_kind(record)
        if kind == "call":
            turn = _call_turn(record, first_call)
            first_call = False
        else:
            turn = Turn(record, kind, error=is_error(record))
            if kind == "aggregation":
                turn.covers = _covers(record)
        turns.setdefault(record.id, turn)
    roots: list[Turn] = []
    for record in ordered:
        turn = turns[record.id]
        parent = turns.get(record.parent_id) if record.parent_id else None
        if parent is not None and parent is not turn and not _descends(parent, turn, turns):
            parent.children.append(turn)
        else:
            roots.append(turn)
    return roots


def _descends(candidate: Turn, turn: Turn, turns: dict[str, Turn]) -> bool:
    """Whether *candidate* sits under *turn* already (a cycle of parent ids in hostile data)."""
    seen: set[str] = set()
    current: Turn | None = candidate
    while current is not None and current.record.id not in seen:
        if current is turn:
            return True
        seen.add(current.record.id)
        parent_id = current.record.parent_id
        current = turns.get(parent_id) if parent_id else None
    return False


# -- JSON ----------------------------------------------------------------------------------------


class _Budget:
    __slots__ = ("left", "spent")

    def __init__(self, chars: int) -> None:
        self.left = chars
        self.spent = False

    def take(self, n: int) -> bool:
        self.left -= n
        if self.left < 0:
            self.spent = True
        return not self.spent


def _scalar(value: Any) -> Markup:
    if value is None:
        return Markup('<span class="j-null">null</span>')
    if value is True or value is False:
        return Markup('<span class="j-bool">{}</span>').format("true" if value else "false")
    if isinstance(value, (int, float)):
        return Markup('<span class="j-num">{}</span>').format(repr(value))
    text = visible(value)
    css = "j-str j-mark" if _MARKER.match(text) else "j-str"
    if len(text) > _STRING_LIMIT_CHARS:
        left = len(text) - _STRING_LIMIT_CHARS
        return Markup('<span class="{}">"{}</span><span class="j-cut">… {} more characters</span>"').format(
            css, text[:_STRING_LIMIT_CHARS], f"{left:,}"
        )
    return Markup('<span class="{}">"{}"</span>').format(css, text)


def _placeholder(value: dict[str, Any]) -> Markup | None:
    """A large value the redactor replaced (``{"truncated": true, "bytes", "sha256"}``) or a
    payload `forget` erased (a tombstone), shown as one badge."""
    if value.get("truncated") is True and isinstance(value.get("bytes"), int):
        kind = visible(value.get("media_type") or "value")
        digest = visible(str(value.get("sha256", "")))[:16]
        return Markup(
            '<span class="j-placeholder" title="replaced by its size and hash">{} · {} · sha256 {}…</span>'
        ).format(kind, _size(value["bytes"]), digest)
    if is_tombstone(value):
        return Markup('<span class="j-placeholder j-erased">erased · sha256 {}… · {}</span>').format(
            visible(value["sha256"])[:16], visible(str(value.get("at")))
        )
    return None


def _size(n: int) -> str:
    """A byte count for people: ``512 bytes``, ``1.2 KB``, ``3.4 MB``."""
    if n < 1024:
        return f"{n:,} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            return f"{value:,.1f} {unit}"
    return f"{value:,.1f} GB"


def _node(value: Any, depth: int, budget: _Budget) -> Markup:
    if budget.spent:
        return Markup("")
    if isinstance(value, dict):
        badge = _placeholder(value)
        if badge is not None:
            budget.take(80)
            return badge
        items = list(value.items())
        opener, closer = "{", "}"
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
        opener, closer = "[", "]"
    else:
        out = _scalar(value)
        budget.take(len(out))
        return out
    if not items:
        return Markup('<span class="j-punct">{}{}</span>').format(opener, closer)
    if depth >= JSON_DEPTH_LIMIT:
        budget.take(40)
        return Markup('<span class="j-cut">{}… nested deeper than {} levels (see raw){}</span>').format(
            opener, JSON_DEPTH_LIMIT, closer
        )
    rows = []
    for key, item in items:
        if budget.spent:
            rows.append(Markup('<li class="j-cut">… cut here: the rest is in the raw value</li>'))
            break
        label = (
            Markup('<span class="j-key">"{}"</span>: ').format(visible(key))
            if opener == "{"
            else Markup('<span class="j-index">{}</span> ').format(key)
        )
        budget.take(len(str(key)) + 8)
        rows.append(Markup("<li>{}{}</li>").format(label, _node(item, depth + 1, budget)))
    summary = f"{len(items)} {'keys' if opener == '{' else 'items'}"
    is_open = Markup(" open") if depth < JSON_OPEN_LEVELS else Markup("")
    return Markup(
        '<details class="j-node"{}><summary><span class="j-punct">{}</span>'
        '<span class="j-count">{}</span></summary><ul>{}</ul><span class="j-punct">{}</span></details>'
    ).format(is_open, opener, summary, Markup("").join(rows), closer)


def json_html(value: Any, budget_chars: int = JSON_CHAR_BUDGET) -> tuple[Markup, bool]:
    """*value* as a collapsible tree of escaped, highlighted spans, and whether it was cut short
    (past *budget_chars* of rendered text or `JSON_DEPTH_LIMIT` levels)."""
    budget = _Budget(budget_chars)
    html = _node(value, 0, budget)
    return Markup('<div class="json">{}</div>').format(html), budget.spent


def markers(value: Any, path: str = "", limit: int = 200) -> list[tuple[str, str]]:
    """Where redaction left its marks in *value*: ``(JSON path, what is there)`` for each
    ``[REDACTED…]``, ``hmac-sha256:…`` or erasure marker and each value replaced by its size and
    hash, at most *limit* of them (walked without recursion: payloads can nest deeply)."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack and len(found) < limit:
        where, item = stack.pop()
        if isinstance(item, dict):
            if item.get("truncated") is True and "sha256" in item:
                found.append((where or "$", f"{item.get('bytes')} bytes replaced by their size and hash"))
                continue
            if is_tombstone(item):
                found.append((where or "$", "erased (forget)"))
                continue
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, str) and (_MARKER.match(item) or "[REDACTED:" in item):
            found.append((where or "$", item if len(item) < 120 else item[:120] + "…"))
    return found
