"""What every command shares: the ``--storage`` option, the default store, opening it for reading,
and ages like ``30d``."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import click

from .._errors import StorageNotFoundError
from ..pipeline.settings import Settings, data_dir, default_spool_dir, default_storage_url
from ..pipeline.spool import Spool
from ..read import reader

__all__ = [
    "JSON_HELP",
    "STORAGE_HELP",
    "STORAGE_OPTION_ARGS",
    "open_reader",
    "parse_age",
    "storage_option",
    "storage_url",
    "wants_json",
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _global(name: str) -> object:
    """An option given to the ``llmaudit`` group itself (``llmaudit -s URL tail``), if any."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj.get(name) if isinstance(obj, dict) else None


def storage_url(value: str | None) -> str:
    """The subcommand's ``--storage``, else the one before the subcommand, else ``LLMAUDIT_STORAGE``,
    else the embedded SQLite store."""
    given = value or _global("storage")
    return given if isinstance(given, str) and given else Settings.resolve().storage or default_storage_url()


def wants_json(as_json: bool) -> bool:
    """``--json`` after the subcommand, or before it (``llmaudit --json sessions``)."""
    return as_json or _global("as_json") is True


# No envvar here: LLMAUDIT_STORAGE is read by `storage_url`, after both command-line places, so that
# an explicit -s always beats the environment wherever it is typed.
STORAGE_OPTION_ARGS: tuple[str, ...] = ("--storage", "-s", "storage")
STORAGE_HELP = "Storage URL (default: LLMAUDIT_STORAGE, else the embedded SQLite store)."
storage_option = click.option(*STORAGE_OPTION_ARGS, default=None, help=STORAGE_HELP)
JSON_HELP = "Print JSON (one object per line) instead of a table, where the command has one."


def open_reader(value: str | None, *, listing: bool = False, create_for_spool: bool = False) -> reader.Reader:
    """Open the store for a read command; reading never creates one.

    A store named by ``--storage`` or ``LLMAUDIT_STORAGE`` that does not exist is an error (the
    caller's `main` prints it, exit 1: most likely a typo). The default store not existing yet just
    means nothing was recorded: a friendly note on stderr, and exit 0 for the listing commands
    (*listing*: sessions, tail, stats, whose honest answer is "nothing"), 1 for the others.
    *create_for_spool* (forget): when the store was never reachable but its spool holds records,
    the store is created so that they can be replayed into it and erased.
    """
    url = storage_url(value)
    try:
        return reader.open(url)
    except StorageNotFoundError:
        if create_for_spool and _spool_pending(url):
            return reader.open(url, create=True)
        if url != default_storage_url():
            raise
        click.echo(
            f"llmaudit: nothing recorded yet: there is no audit log at {data_dir() / 'audit.db'}. "
            "Record a call first (see `llmaudit demo` or the README), or read another store with "
            "--storage URL or LLMAUDIT_STORAGE.",
            err=True,
        )
        sys.exit(0 if listing else 1)


def _spool_pending(url: str) -> bool:
    """Whether the writers' spool for *url* (where `Reader.forget` looks) holds records."""
    directory = os.environ.get("LLMAUDIT_SPOOL_DIR") or default_spool_dir(url)
    return Spool(directory).pending()


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``… as a timedelta.

    Raises:
        click.BadParameter: not a number followed by s, m, h, d or w.
    """
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit():
        raise click.BadParameter(f"{text!r}: use a number and one of s, m, h, d, w (e.g. 30d)")
    return timedelta(seconds=int(number) * _UNITS[unit])
