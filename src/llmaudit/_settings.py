"""Settings: ``configure()`` keywords, their ``LLMAUDIT_*`` twins, and the defaults.

An explicit keyword wins over the environment, which wins over the default. Every value is checked
here, so a bad setting fails at ``configure()`` (naming the keyword or variable), never later on the
writer thread.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import platformdirs

from ._errors import ConfigurationError
from ._writer import DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_S, DEFAULT_QUEUE_SIZE, Mode
from .providers import Routes, parse_routes, provider_names

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "Settings",
    "data_dir",
    "default_spool_dir",
    "default_storage_url",
]

DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def data_dir() -> Path:
    """Where llmaudit keeps its embedded store and spool (``platformdirs`` user data dir)."""
    return platformdirs.user_data_path("llmaudit", appauthor=False)


def default_storage_url() -> str:
    """The embedded default: a SQLite database in the user's data directory."""
    return f"sqlite:///{data_dir() / 'audit.db'}"


def default_spool_dir(storage_url: str) -> Path:
    """One spool directory per storage, so records are only ever replayed into their own store."""
    digest = hashlib.sha256(storage_url.encode()).hexdigest()[:16]
    return data_dir() / "spool" / digest


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE - {''})}")


def _parse_mode(text: str) -> Mode:
    if text not in ("background", "sync"):
        raise ValueError("expected 'background' or 'sync'")
    return cast(Mode, text)


def _parse_writer(text: str) -> str:
    if text not in ("thread", "process"):
        raise ValueError("expected 'thread' or 'process'")
    return text


def _parse_providers(value: Any) -> Routes:
    """``{"llm.internal/openai": "openai"}``, or ``"llm.internal/openai=openai,gw.corp=anthropic"``."""
    return parse_routes(value, provider_names)


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise ValueError("must be greater than 0")
        return value

    return parse


_PARSERS: dict[str, Callable[[str], Any]] = {
    "storage": str,
    "mode": _parse_mode,
    "writer": _parse_writer,
    "strict": _parse_bool,
    "disabled": _parse_bool,
    "handle_sigterm": _parse_bool,
    "batch_size": _positive(int),
    "flush_interval_s": _positive(float),
    "queue_size": _positive(int),
    "spool_dir": str,
    "shutdown_timeout_s": _positive(float),
    "chain_key": str,
    "providers": _parse_providers,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Resolved settings; see `Settings.resolve`."""

    storage: str | None = None
    mode: Mode = "background"
    writer: str = "thread"  # "process": build and store in a child process (see _process)
    strict: bool = False
    disabled: bool = False
    handle_sigterm: bool = True  # SIGTERM becomes a normal exit, so the queue is flushed (see _auditor)
    batch_size: int = DEFAULT_BATCH_SIZE
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S
    queue_size: int = DEFAULT_QUEUE_SIZE
    spool_dir: str | None = None
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S
    chain_key: str | None = field(default=None, repr=False)  # HMAC key of the hash chain: never shown
    #: the user's mapping of hosts / path prefixes to providers (asked first by the transport)
    providers: Routes = field(default_factory=Routes)

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Explicit keywords (None means "not given"), then ``LLMAUDIT_<NAME>``, then defaults.

        Raises:
            ConfigurationError: an unknown keyword, or a value that does not parse or is out of range.
        """
        env = os.environ if environ is None else environ
        unknown = set(explicit) - set(_PARSERS)
        if unknown:
            raise ConfigurationError(f"unknown llmaudit setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if explicit.get(f.name) is not None:
                values[f.name] = _check(f.name, explicit[f.name], f"{f.name}=")
            elif f"LLMAUDIT_{f.name.upper()}" in env:
                name = f"LLMAUDIT_{f.name.upper()}"
                values[f.name] = _check(f.name, env[name], f"{name}=")
        return cls(**values)


def _check(name: str, value: Any, label: str) -> Any:
    parser = _PARSERS[name]
    try:
        if isinstance(value, str) or name == "providers":
            return parser(value)
        if name in ("strict", "disabled", "handle_sigterm") and isinstance(value, bool):
            return value
        return parser(str(value)) if not isinstance(value, bool) else parser(str(int(value)))
    except ValueError as exc:
        raise ConfigurationError(f"invalid llmaudit setting {label}{value!r}: {exc}") from None
