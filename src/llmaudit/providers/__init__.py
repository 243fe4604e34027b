"""Providers: which endpoints are LLM calls, and what their exchanges mean.

A provider answers two questions. ``match(host, path)`` runs on the caller's hot path (plain string
tests, no parsing) and names the operation, or None. ``parse(exchange, operation)`` runs on the writer
thread and extracts the model, the token usage and, for streams, the reassembled final message.
`parse` here never raises: a provider that fails on odd input falls back to the generic view with a
note. Third parties add providers with `register_provider`.

The registry's `match` asks, in order: the user's mapping of hosts and path prefixes to providers
(``configure(providers=...)``, see `Routes`), then each registered provider (official hosts and known
gateways), then the request's shape on any host (`_shapes`: the OpenAI paths, Gemini's
``models/...:generateContent``, Anthropic's ``/messages`` with its ``anthropic-version`` header).
Like every provider's ``match``, it runs on the caller's thread: string tests only.

A provider may answer a third: ``conversation(operation, request, response)`` reads the parsed request
and response once into the provider-independent `Conversation` (see `_conversation`), from which the
record's flat text (`flat_text`, on the writer thread) and the command line's conversation view come.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..record.bodies import parse_json
from ..record.frozen import fast_init
from ._routes import Routes, parse_routes

__all__ = [
    "Conversation",
    "Exchange",
    "Parsed",
    "Part",
    "Provider",
    "Routes",
    "conversation",
    "flat_text",
    "match",
    "parse",
    "parse_routes",
    "provider_names",
    "record_conversation",
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
    #: the provider whose prices apply when it is not `provider` (a gateway that said where it sent
    #: the call); None: `provider`'s own
    prices: str | None = None


class Provider(Protocol):
    """One LLM API (or family of compatible APIs).

    ``match(host, path)`` claims the provider's own hosts (official endpoints, hosted gateways).
    A provider may also define ``shape(path) -> str | None``: the operation its API names by the path
    alone, on any host. It is used when the user maps a host to this provider
    (``configure(providers={"llm.internal": "<name>"})``); without it, ``match`` is asked instead.
    """

    name: str

    def match(self, host: str, path: str) -> str | None: ...

    def parse(self, exchange: Exchange, operation: str) -> Parsed: ...


_providers: list[Provider] = []  # in the order they are asked (what a registration changes)
#: every provider by name, the host-independent shapes (`_shapes`) included: what a user's mapping
#: and a capture's carried decision name
_named: dict[str, Provider] = {}


class _Index:
    """`_providers` arranged for the hot path: the built-ins, whose hosts are disjoint, are found
    by one dict lookup by host (``hosts``) or one ``endswith`` over every host suffix
    (``host_suffixes``), instead of one ``match`` call each; the providers registered before and
    after them are asked in order, as before."""

    def __init__(self, before: list[Provider], builtins: list[Provider], after: list[Provider]) -> None:
        self.before, self.after = tuple(before), tuple(after)
        self.by_host: dict[str, Provider] = {}
        self.by_suffix: list[tuple[str, Provider]] = []
        anywhere: list[Provider] = []
        for provider in builtins:
            hosts, suffixes = getattr(provider, "hosts", ()), getattr(provider, "host_suffixes", ())
            for host in hosts:
                self.by_host.setdefault(host, provider)
            self.by_suffix.extend((suffix, provider) for suffix in suffixes)
            if not hosts and not suffixes:
                anywhere.append(provider)
        self.suffixes = tuple(suffix for suffix, _ in self.by_suffix)
        self.anywhere = tuple(anywhere) + self.after


_index = _Index([], [], [])
_builtins: list[Provider] = []


def _reindex() -> None:
    global _index  # noqa: PLW0603 - replaced whole, so a reader on another thread sees one or the other
    start = next((i for i, p in enumerate(_providers) if _builtins and p is _builtins[0]), len(_providers))
    end = start + len(_builtins)
    _index = _Index(_providers[:start], _providers[start:end], _providers[end:])


def register_provider(provider: Provider, *, first: bool = True) -> None:
    """Add *provider*; ``first=True`` lets it win over the built-in ones.

    Its ``name`` becomes a value that ``configure(providers=...)`` accepts (register it before
    `configure`, which checks the names).
    """
    if first:
        _providers.insert(0, provider)
    else:
        _providers.append(provider)
    _named[provider.name] = provider
    _reindex()


def provider_names() -> list[str]:
    """The names a user's provider mapping may use, sorted."""
    return sorted(_named)


def match(  # noqa: PLR0911 - one return per stage keeps the hot path flat (see below)
    host: str | None,
    path: str,
    headers: Any = None,
    *,
    method: str | None = None,
    routes: Routes | None = None,
    port: int | None = None,
) -> tuple[Provider, str | None] | None:
    """The provider of a request, with the operation it names (None: a mapped host's other paths).

    Args:
        host, path: the request's URL parts (the host lower-cased, as both httpx branches keep it).
        headers: the request's headers as they are (a branch's ``Headers`` or a mapping with
            lower-case names); only looked into when the path has Anthropic's shape.
        method: the request's method; requests matched by their shape alone must be POSTs
            (None: not checked).
        routes: the user's mapping (`Routes`), asked first; a mapped request is recorded whatever
            its path.
        port: the URL's explicit port, for mappings that name one.
    """
    host = (host or "").lower()
    if routes:
        name = routes.lookup(host, port, path)
        provider = None if name is None else _named.get(name)
        if provider is not None:
            return provider, _shape_of(provider, host, path)
    # the registered providers' claims, asked as `_Index` arranges them, inline (not in a helper):
    # this runs for every request (its cost per URL shape: benchmarks/RESULTS.md, issue 17)
    index = _index
    for provider in index.before:
        operation = provider.match(host, path)
        if operation is not None:
            return provider, operation
    found = index.by_host.get(host)
    if found is not None:
        operation = found.match(host, path)
        if operation is not None:
            return found, operation
    if host.endswith(index.suffixes):
        for suffix, found in index.by_suffix:
            operation = found.match(host, path) if host.endswith(suffix) else None
            if operation is not None:
                return found, operation
    for provider in index.anywhere:
        operation = provider.match(host, path)
        if operation is not None:
            return provider, operation
    if method is not None and method != "POST":
        return None
    return _by_shape(path, headers)


def _shape_of(provider: Provider, host: str, path: str) -> str | None:
    shape = getattr(provider, "shape", None)
    return shape(path) if callable(shape) else provider.match(host, path)


def generic(exchange: Exchange, notes: tuple[str, ...] = ()) -> Parsed:
    """The view of an exchange no provider claims: the body as JSON or text."""
    body, more = parse_json(exchange.response_body, exchange.response_headers.get("content-type"))
    model = exchange.request.get("model") if isinstance(exchange.request, dict) else None
    return Parsed("unknown", None, model if isinstance(model, str) else None, body, notes=notes + more)


def parse(exchange: Exchange, matched: tuple[str, str | None] | None = None) -> Parsed:
    """The provider's reading of *exchange*; never raises.

    *matched* is the decision the hot path took (provider name, operation); without it, or when no
    provider of that name is registered here, the exchange is matched again (no user mapping then).
    """
    found = _resolve(exchange, matched)
    if found is None:
        return generic(exchange)
    provider, operation = found
    if operation is None:  # a mapped host's request of no known operation: its body as it is
        view = generic(exchange)
        return Parsed(provider.name, None, view.model, view.response, notes=view.notes)
    try:
        return _gateways.priced(provider.parse(exchange, operation), exchange)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the call
        note = f"{provider.name} parser failed ({type(exc).__name__}: {exc}); body kept as received"
        fallback = generic(exchange, (note,))
        return Parsed(provider.name, operation, fallback.model, fallback.response, notes=fallback.notes)


def _resolve(
    exchange: Exchange, matched: tuple[str, str | None] | None
) -> tuple[Provider, str | None] | None:
    if matched is not None:
        provider = _named.get(matched[0])
        if provider is not None:
            return provider, matched[1]
    return match(exchange.host, exchange.path, exchange.request_headers, method=exchange.method)


def conversation(provider: str | None, operation: str | None, request: Any, response: Any) -> Conversation:
    """The conversation of an exchange the provider named *provider* parsed (a record's
    ``provider`` and ``operation``): `Conversation()` when no provider of that name reads one.

    Raises:
        Exception: whatever the provider's reader raises on JSON it did not expect (callers note it).
    """
    if provider is None or operation is None:
        return EMPTY
    candidate = _named.get(provider) or next((p for p in _providers if p.name == provider), None)
    read = getattr(candidate, "conversation", None)
    return EMPTY if read is None else read(operation, request, response)


#: What a record that names no operation (one submitted by hand, an unknown endpoint) is read as:
#: each API's main operation in turn, under its provider's name or, without one, each provider's.
_GUESSES = (
    ("openai", "chat.completions"),
    ("openai", "responses"),
    ("anthropic", "messages"),
    ("gemini", "generate_content"),
    ("cohere", "chat"),
    ("openai", "completions"),
)


def record_conversation(
    provider: str | None, operation: str | None, request: Any, response: Any
) -> Conversation:
    """The conversation of a stored record (its ``provider``, ``operation``, ``request`` and
    ``response``), for the read side's views: a record that names no operation is read as each
    API's main operation in turn. Never raises: `Conversation()` when nothing reads it (the views
    then show the record's flat text)."""
    try:
        if operation is not None:
            return conversation(provider, operation, request, response)
        for guess, guessed_operation in _GUESSES:
            name = provider if provider not in (None, "unknown") else guess
            found = conversation(name, guessed_operation, request, response)
            if found.input or found.output:
                return found
    except Exception:  # noqa: BLE001 - a reader's bug must not hide the record: show the flat text
        return EMPTY
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

    builtins: tuple[Provider, ...] = (
        openai.OPENAI,
        openai.AZURE,
        anthropic.ANTHROPIC,
        gemini.GEMINI,
        cohere.COHERE,
        mistral.MISTRAL,
        *compat.HOSTED,
        ollama.OLLAMA,
    )
    for provider in builtins:
        _builtins.append(provider)
        _named[provider.name] = provider
    # known gateways: matched by their hosts, not named in mappings (a user maps to the provider)
    _builtins[-1:-1] = compat.GATEWAYS
    _providers.extend(_builtins)
    for shaped in _shapes.SHAPES:  # named (for mappings), matched by `_by_shape` after the rest
        _named[shaped.name] = shaped


from . import _gateways, _shapes  # noqa: E402 - they import this module's types
from ._conversation import EMPTY, Conversation, Part, flat_fields  # noqa: E402 - after Exchange

_by_shape = _shapes.by_shape
_load_builtins()
_reindex()
