"""``manage.py llmaudit <command> [options]``: the ``llmaudit`` command line over the project's
store (``stats``, ``sessions``, ``show``, ``tail``, ``export``, ``verify``, ``forget``, ``prune``,
``aggregate``, ``db upgrade``, ...), with the same options, output and exit codes. The store is the
one the app writes to; ``-s URL`` still reads another; the chain key of ``LLMAUDIT["CHAIN_KEY"]`` is
used by ``verify`` and ``forget`` unless ``--key`` or ``LLMAUDIT_CHAIN_KEY`` gives one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError

from ...conf import options, storage_url

#: Django's own options that ``manage.py`` has already acted on (they take a value).
_DJANGO_OPTIONS = ("--settings", "--pythonpath")


def _without_django_options(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _DJANGO_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in _DJANGO_OPTIONS)):
            out.append(arg)
    return out


@contextlib.contextmanager
def _chain_key() -> Iterator[None]:
    """``LLMAUDIT_CHAIN_KEY`` from the settings while the command runs, unless already set."""
    key = options().get("chain_key")
    if not key or os.environ.get("LLMAUDIT_CHAIN_KEY"):
        yield
        return
    os.environ["LLMAUDIT_CHAIN_KEY"] = str(key)
    try:
        yield
    finally:
        os.environ.pop("LLMAUDIT_CHAIN_KEY", None)


def run_cli(args: Sequence[str]) -> int:
    """Run ``llmaudit ARGS`` against the configured store; returns its exit status."""
    from .....cli import main  # noqa: PLC0415 - click and rich load only for this command

    try:
        with _chain_key():
            result = main(["--storage", storage_url(), *args])
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return result if isinstance(result, int) else 0


class Command(BaseCommand):  # type: ignore[misc]
    help = "Run the llmaudit command line (stats, sessions, show, tail, verify, ...) on the project's store."
    requires_system_checks: ClassVar[list[str]] = []  # the command line reports a store it cannot open itself

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="an llmaudit command and its options")

    def run_from_argv(self, argv: list[str]) -> None:
        """``manage.py llmaudit ...``: everything after the name goes to the command line as typed,
        and its exit status is ``manage.py``'s."""
        code = run_cli(_without_django_options(argv[2:]))
        if code:
            sys.exit(code)

    def handle(self, *args: str, **options: Any) -> None:
        """``call_command("llmaudit", "stats", "--json", stdout=...)``: a non-zero status raises
        `CommandError` carrying it."""
        out = getattr(self.stdout, "_out", self.stdout)
        err = getattr(self.stderr, "_out", self.stderr)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_cli(list(args))
        if code:
            raise CommandError(f"llmaudit {' '.join(args[:1])} exited with status {code}", returncode=code)
