"""What every command shares: the ``--storage`` option, the default store, and ages like ``30d``."""

from __future__ import annotations

from datetime import timedelta

import click

from .._settings import Settings, default_storage_url

__all__ = ["parse_age", "storage_option", "storage_url"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def storage_url(value: str | None) -> str:
    """The ``--storage`` value, else ``LLMAUDIT_STORAGE``, else the embedded SQLite store."""
    return value or Settings.resolve().storage or default_storage_url()


storage_option = click.option(
    "--storage",
    "-s",
    "storage",
    envvar="LLMAUDIT_STORAGE",
    default=None,
    help="Storage URL (default: LLMAUDIT_STORAGE, else the embedded SQLite store).",
)


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``… as a timedelta.

    Raises:
        click.BadParameter: not a number followed by s, m, h, d or w.
    """
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit():
        raise click.BadParameter(f"{text!r}: use a number and one of s, m, h, d, w (e.g. 30d)")
    return timedelta(seconds=int(number) * _UNITS[unit])
