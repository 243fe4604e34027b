"""Providers: which endpoints are LLM calls, and what their exchanges mean.

A provider answers two questions. ``match(host, path)`` runs on the caller's hot path (plain string
tests, no parsing) and names the operation, or None. ``parse(exchange, operation)`` runs on the writer
thread and extracts the model, the token usage and, for streams, the reassembled final message.
`parse` here never raises: a provider that fails on odd input falls back to the generic view with a
note. Third parties add providers with `register_provider`.

A provider may answer a third: ``conversation(operation, request, response)`` reads the parsed request
and response once into the provider-independent `Conversation` (see `_conversation`), from which the
record's flat text (`flat_text`, on the writer thread) and the command line's conversation view come.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .._decode import parse_json
from .._frozen import fast_init

__all__ = [
    "Conversation",
    "Exchange",
    "Parsed",
    "Part",
    "Provider",
    "conversation",
    "flat_text",
    "match",
    "parse",
    "register_provider",
]


@fast_init
@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP exchange, content-decoded, as the writer sees it."""

    method: str
    host: str
    path: str
    query: Mapping[str, str]
    request_headers: Mapping[str, str]
    request: Any
    status_code: int | None
    response_headers: Mapping[str, str]
    response_body: bytes
    is_stream: bool


@fast_init
@dataclass(frozen=True, slots=True)
class Parsed:
    """What a provider makes of an exchange."""

    provider: str
    operation: str | None
    model: str | None
    response: Any
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    notes: tuple[str, ...] = ()


class Provider(Protocol):
    """One LLM API (or family of compatible APIs)."""

    name: str

    def match(self, host: str, path: str) -> str | None: ...

    def parse(self, exchange: Exchange, operation: str) -> Parsed: ...


_providers: list[Provider] = []


def register_provider(provider: Provider, *, first: bool = True) -> None:
    """Add *provider*; ``first=True`` lets it win over the built-in ones."""
    if first:
        _providers.insert(0, provider)
    else:
        _providers.append(provider)


def match(host: str | None, path: str) -> tuple[Provider, str] | None:
    """The first provider claiming ``host`` + ``path``, with the operation it names."""
    host = (host or "").lower()
    for provider in _providers:
        operation = provider.match(host, path)
        if operation is not None:
            return provider, operation
    return None


def generic(exchange: Exchange, notes: tuple[str, ...] = ()) -> Parsed:
    """The view of an exchange no provider claims: the body as JSON or text."""
    body, more = parse_json(exchange.response_body, exchange.response_headers.get("content-type"))
    model = exchange.request.get("model") if isinstance(exchange.request, dict) else None
    return Parsed("unknown", None, model if isinstance(model, str) else None, body, notes=notes + more)


def parse(exchange: Exchange) -> Parsed:
    """The matched provider's reading of *exchange*; never raises."""
    found = match(exchange.host, exchange.path)
    if found is None:
        return generic(exchange)
    provider, operation = found
    try:
        return provider.parse(exchange, operation)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the call
        note = f"{provider.name} parser failed ({type(exc).__name__}: {exc}); body kept as received"
        fallback = generic(exchange, (note,))
        return Parsed(provider.name, operation, fallback.model, fallback.response, notes=fallback.notes)


def conversation(provider: str | None, operation: str | None, request: Any, response: Any) -> Conversation:
    """The conversation of an exchange the provider named *provider* parsed (a record's
    ``provider`` and ``operation``): `Conversation()` when no provider of that name reads one.

    Raises:
        Exception: whatever the provider's reader raises on JSON it did not expect (callers note it).
    """
    if provider is None or operation is None:
        return EMPTY
    for candidate in _providers:
        if candidate.name == provider:
            read = getattr(candidate, "conversation", None)
            return EMPTY if read is None else read(operation, request, response)
    return EMPTY


def flat_text(
    provider: str | None, operation: str | None, request: Any, response: Any
) -> tuple[str | None, str | None, tuple[dict[str, Any], ...] | None, tuple[str, ...]]:
    """A record's ``input_text``, ``output_text`` and ``tool_calls`` from its provider's
    `conversation`, and notes (cuts, or why the conversation could not be read); never raises."""
    notes: list[str] = []
    try:
        found = conversation(provider, operation, request, response)
        return (*flat_fields(found, notes), tuple(notes))
    except Exception as exc:  # noqa: BLE001 - a reader bug must not lose the call
        return None, None, None, (f"{provider} conversation not read ({type(exc).__name__}: {exc})",)


def _load_builtins() -> None:
    from . import anthropic, cohere, compat, gemini, mistral, ollama, openai  # noqa: PLC0415

    for provider in (
        openai.OPENAI,
        openai.AZURE,
        anthropic.ANTHROPIC,
        gemini.GEMINI,
        cohere.COHERE,
        mistral.MISTRAL,
        *compat.HOSTED,
        ollama.OLLAMA,
        compat.GENERIC,
    ):
        register_provider(provider, first=False)


from ._conversation import EMPTY, Conversation, Part, flat_fields  # noqa: E402 - after Exchange

_load_builtins()
