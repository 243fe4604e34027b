"""The user's mapping of hosts and path prefixes to providers (``configure(providers=...)``).

Compiled once, when the settings are resolved (where a bad key or an unknown provider name fails,
naming both); looked up on the caller's hot path with one dict lookup by host and, for a mapped host
only, a few ``startswith`` tests. No parsing happens there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["Routes", "parse_routes"]

#: (port or None for any, path prefix without its trailing "/" or "" for all, provider name)
_Entry = tuple[int | None, str, str]


class Routes:
    """Host (``"llm.internal"``, ``"127.0.0.1:8765"``) or host + path prefix
    (``"llm.internal/openai"``) -> provider name. The longest prefix wins; a key naming a port wins
    over one that does not. Immutable; false when empty."""

    __slots__ = ("_by_host", "entries")

    def __init__(self, entries: Iterable[tuple[str, str]] = ()) -> None:
        by_host: dict[str, list[_Entry]] = {}
        normalised = []
        for key, name in entries:
            host, port, prefix = _split_key(key)
            normalised.append((_join(host, port, prefix), name))
            by_host.setdefault(host, []).append((port, prefix, name))
        self.entries: tuple[tuple[str, str], ...] = tuple(normalised)
        self._by_host = {
            host: tuple(sorted(found, key=lambda e: (len(e[1]), e[0] is not None), reverse=True))
            for host, found in by_host.items()
        }

    def lookup(self, host: str, port: int | None, path: str) -> str | None:
        """The provider name mapped for this request, or None (hot path: string tests only)."""
        found = self._by_host.get(host)
        if found is None:
            return None
        for want_port, prefix, name in found:
            if want_port is not None and want_port != port:
                continue
            if not prefix or path == prefix or (path.startswith(prefix) and path[len(prefix)] == "/"):
                return name
        return None

    def __bool__(self) -> bool:
        return bool(self._by_host)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Routes) and other.entries == self.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"Routes({dict(self.entries)!r})"


def _split_key(key: str) -> tuple[str, int | None, str]:
    """``[scheme://]host[:port][/prefix]`` -> (lower-case host, port, prefix); ValueError if bad."""
    text = key.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    where, slash, prefix = text.partition("/")
    host, colon, port_text = where.partition(":")
    host = host.lower()
    if not host or any(c.isspace() or c in "?#@[]" for c in host):
        raise ValueError(f"{key!r} is not a host or host/path-prefix")
    port = None
    if colon:
        if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
            raise ValueError(f"{key!r} has no valid port")
        port = int(port_text)
    prefix = ("/" + prefix).rstrip("/") if slash else ""
    if any(c.isspace() or c in "?#" for c in prefix):
        raise ValueError(f"{key!r}: the path prefix may not hold spaces, '?' or '#'")
    return host, port, prefix


def _join(host: str, port: int | None, prefix: str) -> str:
    return f"{host}{'' if port is None else f':{port}'}{prefix}"


def parse_routes(value: Any, known: Callable[[], Iterable[str]]) -> Routes:
    """A mapping ``{key: provider}`` or the environment's ``"key=provider,key=provider"`` as
    `Routes`, every provider name checked against *known*.

    Raises:
        ValueError: a key that is not a host or host/prefix, or a provider name not in *known* (the
            message lists the accepted names).
    """
    if isinstance(value, str):
        pairs = []
        for item in value.split(","):
            if not item.strip():
                continue
            key, equals, name = item.rpartition("=")
            if not equals:
                raise ValueError(f"expected host[/prefix]=provider, got {item.strip()!r}")
            pairs.append((key, name.strip()))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        # ValueError, not TypeError: the settings turn it into a ConfigurationError naming the keyword
        raise ValueError(  # noqa: TRY004
            f"expected a mapping of host[/prefix] to provider name, not {type(value).__name__}"
        )
    names = set(known())
    for key, name in pairs:
        if not isinstance(key, str) or not isinstance(name, str):
            raise ValueError(f"keys and provider names must be strings, not {key!r}: {name!r}")  # noqa: TRY004
        if name not in names:
            raise ValueError(
                f"unknown provider {name!r} for {key!r}; accepted provider names: {', '.join(sorted(names))}"
            )
    return Routes(pairs)
