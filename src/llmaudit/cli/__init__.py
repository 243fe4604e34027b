"""The ``llmaudit`` command line. Imports the public API, storage and settings only; never the writer's
internals. Errors a user can cause print one line and exit 1 (a traceback only with ``--debug``)."""

from __future__ import annotations

import sys
from typing import Any

import click

from .._errors import LLMAuditError
from .._settings import Settings, data_dir, default_storage_url
from .._version import __version__
from ._demo import run_demo

__all__ = ["main"]


def _storage_url(value: str | None) -> str:
    return value or Settings.resolve().storage or default_storage_url()


storage_option = click.option(
    "--storage",
    "-s",
    "storage",
    envvar="LLMAUDIT_STORAGE",
    default=None,
    help="Storage URL (default: LLMAUDIT_STORAGE, else the embedded SQLite store).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmaudit")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Record, read and verify every call your application makes to an LLM API."""
    ctx.obj = {"debug": debug}


@cli.command()
@storage_option
def path(storage: str | None) -> None:
    """Print where the audit log is stored."""
    click.echo(_storage_url(storage))
    click.echo(f"data directory: {data_dir()}", err=True)


@cli.command()
@storage_option
def demo(storage: str | None) -> None:
    """Run a small offline application through llmaudit and show what it recorded."""
    run_demo(_storage_url(storage), echo=click.echo)


@cli.group()
def spool() -> None:
    """Records waiting in the local spool while the storage was unreachable."""


@spool.command("replay")
@storage_option
def spool_replay(storage: str | None) -> None:
    """Write spooled records into the storage now."""
    from .._auditor import Auditor  # noqa: PLC0415 - only this command needs a writer

    with Auditor(_storage_url(storage)) as auditor:
        auditor.replay_spool()  # the writer may have started replaying on its own: count both
        click.echo(f"replayed {auditor.stats().replayed} records into {auditor.storage.url}")


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, prog_name="llmaudit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LLMAuditError as exc:
        if debug:
            raise
        click.echo(f"llmaudit: error: {exc}", err=True)
        sys.exit(1)
