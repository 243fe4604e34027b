"""Settings: ``configure()`` keywords, their ``LLMAUDIT_*`` twins, and the defaults.

An explicit keyword wins over the environment, which wins over the default. Every value is checked
here, so a bad setting fails at ``configure()`` (naming the keyword or variable), never later on the
writer thread. Reads the environment and nothing else: opens no storage and writes no file (the data
directory is only named here); the defaults come from `limits`, never from the writer.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import platformdirs

from .._errors import ConfigurationError
from ..integrity.checkpoints import DEFAULT_CHECKPOINT_INTERVAL_S, DEFAULT_CHECKPOINT_RECORDS
from ..providers import Routes, parse_routes, provider_names
from ..redact.redactor import Redactor
from ..storage import Storage
from .limits import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_INTERVAL_S,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    Mode,
    WriterKind,
)
from .pipeline import Processor

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "Settings",
    "check_processing",
    "check_setting",
    "check_storage",
    "data_dir",
    "default_spool_dir",
    "default_storage_url",
]

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


class _InvalidError(ValueError):
    """A value that is not what a setting accepts (the message says what it accepts)."""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower() if isinstance(value, str) else None
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise _InvalidError(f"expected True or False (or one of {sorted(_TRUE | _FALSE - {''})} as text)")


def _choice(*allowed: str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if value not in allowed:
            raise _InvalidError(f"expected {' or '.join(repr(a) for a in allowed)}")
        return value

    return parse


def _count(value: Any) -> int:
    """A whole number greater than 0 (an int, or its digits as text)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _InvalidError("expected a whole number greater than 0")
    return value


def _seconds(value: Any) -> float:
    """A finite number of seconds greater than 0 (an int or float, or one as text)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _InvalidError("expected a number of seconds greater than 0") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise _InvalidError("expected a number of seconds greater than 0")
    return float(value)


def _text(what: str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise _InvalidError(f"expected {what}")
        return value

    return parse


def _path(value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise _InvalidError("expected a directory path (a str or an os.PathLike such as pathlib.Path)")
    return value


def _providers(value: Any) -> Routes:
    """``{"llm.internal/openai": "openai"}``, or ``"llm.internal/openai=openai,gw.corp=anthropic"``."""
    try:
        return parse_routes(value, provider_names)
    except ValueError as exc:
        raise _InvalidError(str(exc)) from None


def _signing_key(value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise _InvalidError("expected the path of an Ed25519 private key's PEM file, or the PEM text itself")
    return value


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "storage": _text("a storage URL such as 'sqlite:///audit.db' (or, in Python, a Storage object)"),
    "mode": _choice("background", "sync"),
    "writer": _choice("thread", "process"),
    "strict": _bool,
    "disabled": _bool,
    "handle_sigterm": _bool,
    "batch_size": _count,
    "flush_interval_s": _seconds,
    "queue_size": _count,
    "spool_dir": _path,
    "shutdown_timeout_s": _seconds,
    "chain_key": _text("a non-empty string (the HMAC key of the hash chain)"),
    "providers": _providers,
    "signing_key": _signing_key,
    "checkpoint_every_records": _count,
    "checkpoint_every_s": _seconds,
    "witness": _text("a directory or file path, or 'command:CMD' (where copies of the checkpoints go)"),
}


_UNSET_WHEN_EMPTY = frozenset({"storage", "spool_dir", "chain_key", "signing_key", "witness"})
_SECRET = frozenset({"chain_key", "signing_key"})  # never echoed in an error


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Resolved settings; see `Settings.resolve`."""

    storage: str | None = None
    mode: Mode = "background"
    writer: WriterKind = "thread"  # "process": build and store in a child process (see process_runner)
    strict: bool = False
    disabled: bool = False
    handle_sigterm: bool = (
        True  # SIGTERM becomes a normal exit, so the queue is flushed (see pipeline.signals)
    )
    batch_size: int = DEFAULT_BATCH_SIZE
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S
    queue_size: int = DEFAULT_QUEUE_SIZE
    spool_dir: str | None = None
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S
    chain_key: str | None = field(default=None, repr=False)  # HMAC key of the hash chain: never shown
    #: the user's mapping of hosts / path prefixes to providers (asked first by the transport)
    providers: Routes = field(default_factory=Routes)
    #: the Ed25519 key that signs checkpoints (a PEM file's path or the PEM itself): never shown
    signing_key: str | None = field(default=None, repr=False)
    checkpoint_every_records: int = DEFAULT_CHECKPOINT_RECORDS
    checkpoint_every_s: float = DEFAULT_CHECKPOINT_INTERVAL_S
    #: where copies of the signed checkpoints go (``integrity.witness.open_witness``)
    witness: str | None = None

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Explicit keywords (None means "not given"), then ``LLMAUDIT_<NAME>``, then defaults.

        Raises:
            ConfigurationError: an unknown keyword, or a value that does not parse or is out of range.
        """
        env = os.environ if environ is None else environ
        unknown = set(explicit) - set(_PARSERS)
        if unknown:
            raise ConfigurationError(
                f"unknown llmaudit setting(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(_PARSERS))}"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            if explicit.get(f.name) is not None:
                values[f.name] = _check(f.name, explicit[f.name], f"{f.name}=")
            elif f"LLMAUDIT_{f.name.upper()}" in env:
                name = f"LLMAUDIT_{f.name.upper()}"
                if env[name] == "" and f.name in _UNSET_WHEN_EMPTY:
                    continue  # VAR= in a shell or a compose file means "not set"
                values[f.name] = _check(f.name, env[name], f"{name}=")
        return cls(**values)


def _check(name: str, value: Any, label: str) -> Any:
    try:
        return _PARSERS[name](value)
    except _InvalidError as exc:
        shown = "<hidden>" if name in _SECRET else repr(value)  # a key is never echoed
        raise ConfigurationError(f"invalid llmaudit setting {label}{shown}: {exc}") from None


def check_setting(name: str, value: Any) -> Any:
    """*value* checked as the ``configure()`` keyword *name* (see `Settings`).

    Raises:
        ConfigurationError: naming the keyword and what it accepts.
    """
    return _check(name, value, f"{name}=")


def check_storage(storage: object) -> str | Storage | None:
    """``storage=``: a URL, an open `Storage` (it has ``url``, ``write``, ``read`` and ``close``), or None.

    Raises:
        ConfigurationError: anything else (a path is told to become a URL).
    """
    if storage is None or isinstance(storage, str):
        return storage
    if isinstance(storage, os.PathLike):
        raise ConfigurationError(
            f"invalid llmaudit setting storage={storage!r}: expected a storage URL, "
            f"e.g. 'sqlite:///{os.fspath(storage)}' or 'jsonl://{os.fspath(storage)}', not a path"
        )
    if not isinstance(storage, Storage):  # the protocol is runtime-checkable: url, write, read, close
        raise ConfigurationError(
            f"invalid llmaudit setting storage={storage!r}: expected a storage URL such as "
            "'sqlite:///audit.db' or 'jsonl:///var/log/llm', or a Storage object (write, read, close, url)"
        )
    return storage


def check_processing(
    redactor: object, before_write: object, processors: object
) -> tuple[Redactor | Literal[False] | None, list[Processor]]:
    """``redactor=``, ``before_write=`` and ``processors=``: the redactor (None: the default one;
    True means the same), and the processors after it, in order.

    Raises:
        ConfigurationError: naming the keyword and what it accepts.
    """
    if redactor is True:
        redactor = None
    if not (redactor is None or redactor is False or isinstance(redactor, Redactor)):
        raise ConfigurationError(
            f"invalid llmaudit setting redactor={redactor!r}: expected a llmaudit.Redactor, "
            "None or True (the default Redactor()), or False (no redaction); for a function of "
            "your own, use before_write= or processors="
        )
    steps: list[Processor] = []
    if before_write is not None:
        if not callable(before_write):
            raise ConfigurationError(
                f"invalid llmaudit setting before_write={before_write!r}: expected a callable "
                "record -> record | None, or None"
            )
        steps.append(before_write)
    if callable(processors) or isinstance(processors, (str, bytes)) or not isinstance(processors, Iterable):
        raise ConfigurationError(
            f"invalid llmaudit setting processors={processors!r}: expected a list of callables "
            "record -> record | None (for one, processors=[fn] or before_write=fn)"
        )
    for step in processors:
        if not callable(step):
            raise ConfigurationError(
                f"invalid llmaudit setting processors=: {step!r} is not callable "
                "(each processor is a callable record -> record | None)"
            )
        steps.append(step)
    return redactor, steps
