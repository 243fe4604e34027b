"""A call's conversation in a provider-independent form, and the flat text made from it.

Each provider reads its own API's JSON once into a `Conversation` (who said what, which tools were
called with which arguments, what the model reasoned, how many vectors an embedding call returned);
everything else reads that form instead of walking each API's JSON again: the record's flat fields
(`flat_fields`: ``input_text``, ``output_text``, ``tool_calls``) on the writer thread, and the
command line's conversation view on the read side.

Pure functions over already-parsed JSON that never raise on odd input (provider JSON is never
trusted) and never copy a string until the flat text is joined, which stops at `TEXT_LIMIT_CHARS`:
a prompt of a megabyte costs no more than one of a few pages. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..record.codec import dumps
from ..record.frozen import fast_init

__all__ = [
    "ARGUMENTS_LIMIT_CHARS",
    "TEXT_LIMIT_CHARS",
    "TOOL_CALLS_LIMIT",
    "Conversation",
    "Part",
    "arguments_text",
    "flat_fields",
    "storable",
    "text_of",
]

#: Longest ``input_text`` and ``output_text``, in characters; longer text is cut, with a note.
TEXT_LIMIT_CHARS = 32_000
#: Most tool calls kept in ``tool_calls``, and the longest arguments text of each one.
TOOL_CALLS_LIMIT = 64
ARGUMENTS_LIMIT_CHARS = 8_000

#: The kinds of a `Part`: what each one holds in its ``text``.
KINDS = ("text", "tool_call", "tool_result", "reasoning", "media")


@fast_init
@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a conversation.

    Attributes:
        role: who says it: ``system``, ``developer``, ``user``, ``assistant``, ``tool``, ...
        kind: ``text`` (message text), ``tool_call`` (text: the arguments, as JSON text),
            ``tool_result`` (text: what the tool returned), ``reasoning`` (a reasoning summary or
            visible thinking) or ``media`` (text: what it is, e.g. ``image``; never its bytes).
        text: the text, as the API gave it.
        name: the tool's name (tool calls and results, where the API names it).
        call_id: the id linking a tool call to its result.
    """

    role: str
    kind: str
    text: str
    name: str | None = None
    call_id: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Conversation:
    """What was asked (``input``) and answered (``output``); for embeddings, ``vectors`` is
    (how many vectors, their dimensions) instead of the vectors themselves."""

    input: tuple[Part, ...] = ()
    output: tuple[Part, ...] = ()
    vectors: tuple[int, int | None] | None = None


EMPTY = Conversation()


def text_of(value: Any) -> str | None:
    """*value* if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def arguments_text(value: Any) -> str:
    """Tool-call arguments as JSON text: a string as the model wrote it, anything else as compact
    canonical JSON (Anthropic's ``input`` and Gemini's ``args`` are objects)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return dumps(value).decode()


def _line(part: Part) -> str:
    kind = part.kind
    if kind in {"text", "tool_result"}:
        return f"{part.role}: {part.text}"
    if kind == "tool_call":
        return f"{part.role}: [tool call] {part.name or '?'}({part.text})"
    return f"{part.role}: [{part.text or kind}]"  # media


def storable(text: str) -> str:
    """*text* as every text column can hold it: lone surrogates (which no driver encodes; JSON's
    ``\\ud800`` escape parses to one) become U+FFFD, as the codec makes them, and so does NUL, which
    PostgreSQL's text refuses (the payloads keep it, escaped in their JSON)."""
    if not text.isascii():
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _joined(pieces: Iterable[str], notes: list[str], name: str) -> str | None:
    """*pieces* joined by newlines, cut at `TEXT_LIMIT_CHARS` (a note says so); None when empty."""
    kept: list[str] = []
    size = 0
    cut = False
    for piece in pieces:
        room = TEXT_LIMIT_CHARS - size - (1 if kept else 0)
        if len(piece) > room:
            if room > 0:
                kept.append(piece[:room])
            cut = True
            break
        kept.append(piece)
        size += len(piece) + (1 if len(kept) > 1 else 0)
    if cut:
        notes.append(f"{name} cut to {TEXT_LIMIT_CHARS} characters")
    return storable("\n".join(kept)) or None


def flat_fields(
    conversation: Conversation, notes: list[str]
) -> tuple[str | None, str | None, tuple[dict[str, Any], ...] | None]:
    """(``input_text``, ``output_text``, ``tool_calls``) of a record.

    ``input_text`` has one ``role: text`` line per input part (tool calls and media as a short
    bracketed form, reasoning left out); ``output_text`` is the answer's text alone, without roles;
    ``tool_calls`` the calls the model asked for in its answer, each ``{"name", "arguments", "id"}``
    with the arguments as JSON text. Cuts are noted in *notes*."""
    inp = _joined((_line(p) for p in conversation.input if p.kind != "reasoning"), notes, "input_text")
    out = _joined((p.text for p in conversation.output if p.kind == "text" and p.text), notes, "output_text")
    calls = [p for p in conversation.output if p.kind == "tool_call"]
    if not calls:
        return inp, out, None
    if len(calls) > TOOL_CALLS_LIMIT:
        notes.append(f"tool_calls cut to {TOOL_CALLS_LIMIT} (was {len(calls)})")
    found = []
    for part in calls[:TOOL_CALLS_LIMIT]:
        arguments = part.text
        if len(arguments) > ARGUMENTS_LIMIT_CHARS:
            notes.append(f"arguments of tool call {part.name!r} cut to {ARGUMENTS_LIMIT_CHARS} characters")
            arguments = arguments[:ARGUMENTS_LIMIT_CHARS]
        name, call_id = part.name, part.call_id
        found.append(  # keys in sorted order, as the chain encodes them
            {
                "arguments": storable(arguments),
                "id": None if call_id is None else storable(call_id),
                "name": None if name is None else storable(name),
            }
        )
    return inp, out, tuple(found)
