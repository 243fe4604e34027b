"""The ``llmaudit`` command line. Imports the public API, storage and settings only; never the writer's
internals. Errors a user can cause print one line and exit 1 (a traceback only with ``--debug``)."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from .._errors import LLMAuditError
from .._version import __version__
from ..integrity.verify import VerifyReport
from ..pipeline.settings import data_dir
from ._common import (
    JSON_HELP,
    STORAGE_HELP,
    STORAGE_OPTION_ARGS,
    open_reader,
    parse_age,
    storage_option,
    storage_url,
    wants_json,
)
from ._demo import run_demo
from ._integrity import CHECKPOINTS_HELP, PUBLIC_KEY_HELP, WITNESS_HELP, verify_signed_command
from ._integrity import COMMANDS as INTEGRITY_COMMANDS
from ._read import COMMANDS, progress_bar
from ._text import EscapedLogHandler, json_line, plain
from ._ui import ui

if TYPE_CHECKING:
    from ..integrity.verify import VerifyReport

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmaudit")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.option(*STORAGE_OPTION_ARGS, default=None, help=STORAGE_HELP + " Also after the subcommand.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP + " Also after the subcommand.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, storage: str | None, as_json: bool) -> None:
    """Record, read and verify every call your application makes to an LLM API.

    The shared options (-s/--storage, --json) go before or after the subcommand:
    `llmaudit -s URL tail` and `llmaudit tail -s URL` are the same (after it wins when both are given).
    """
    ctx.obj = {"debug": debug, "storage": storage, "as_json": as_json}
    handler = EscapedLogHandler()
    logging.getLogger("llmaudit").addHandler(handler)
    ctx.call_on_close(lambda: logging.getLogger("llmaudit").removeHandler(handler))


@cli.command()
@storage_option
def path(storage: str | None) -> None:
    """Print where the audit log is stored."""
    click.echo(storage_url(storage))
    click.echo(f"data directory: {data_dir()}", err=True)


@cli.command()
@storage_option
def demo(storage: str | None) -> None:
    """Run a small offline application through llmaudit and show what it recorded."""
    run_demo(storage_url(storage), echo=click.echo)


#: ``llmaudit forget`` erased what it found, but some copy of the text may remain (it says which).
EXIT_UNGUARANTEED = 3


def _fail(message: str) -> None:
    click.echo(f"llmaudit: {message}", err=True)
    sys.exit(1)


@cli.command()
@storage_option
@click.option("--key", envvar="LLMAUDIT_CHAIN_KEY", default=None, help="HMAC key of the chain.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--require-macs", is_flag=True, help="Fail on heads and checkpoints without a MAC (not just warn)."
)
@click.option("--public-key", multiple=True, help="Verify against the signed checkpoints: " + PUBLIC_KEY_HELP)
@click.option("--witness", default=None, help=WITNESS_HELP)
@click.option("--checkpoints", default=None, help=CHECKPOINTS_HELP)
def verify(
    storage: str | None,
    key: str | None,
    as_json: bool,
    require_macs: bool,
    public_key: tuple[str, ...],
    witness: str | None,
    checkpoints: str | None,
) -> None:
    """Prove that no record was modified, deleted, inserted or reordered; exit 1 if one was.

    With --public-key, check the records against the signed checkpoints instead, with no chain key
    (--key, when given, lets the content of a keyed chain's records be checked too)."""
    if public_key or witness or checkpoints:
        verify_signed_command(storage, public_key, witness, checkpoints, key, as_json)
        return
    problems: list[str] = []
    with open_reader(storage) as reader, progress_bar("verifying") as advance:
        report = reader.verify(key, on_problem=problems.append, progress=advance, require_macs=require_macs)
    if wants_json(as_json):
        click.echo(json_line({**report.to_json(), "unreadable": problems}))
    else:
        for problem in problems:
            click.echo(f"unreadable: {plain(problem)}", err=True)
        totals = report.totals()
        click.echo(
            f"{'OK' if report.ok else 'FAILED'}: {totals['verified']} verified "
            f"({totals['erased']} erased) from {totals['writers']} writers; "
            f"{totals['modified']} modified, {totals['missing']} missing, "
            f"{totals['reordered']} reordered, {totals['inserted']} inserted"
            + (f", {totals['forged_erasures']} forged erasures" if totals["forged_erasures"] else "")
        )
        for writer_id, w in sorted(report.writers.items()):
            if not w.ok:
                click.echo(
                    plain(
                        f"  writer {writer_id}: modified {w.modified[:5]} reordered {w.reordered[:5]} "
                        f"inserted {w.inserted[:5]} missing seq {w.missing[:5]}"
                    )
                )
        if report.unchained:
            click.echo(plain(f"  records without a chain: {report.unchained[:5]}"))
        _echo_heads(report)
        _echo_erasures(report)
    if not report.ok or problems:
        sys.exit(1)


def _echo_heads(report: VerifyReport) -> None:
    """What verify found about heads, checkpoints, writers and the registry (one line each)."""
    for writer_id, w in sorted(report.writers.items()):
        for problem in w.problems:
            click.echo(plain(f"  writer {writer_id}: {problem}"))
        for warning in w.warnings:
            click.echo(plain(f"  warning: writer {writer_id}: {warning}"))
    if report.vanished:
        click.echo(plain(f"  writers the registry lists that vanished: {report.vanished[:5]}"))
    for error in report.registry_errors[:5]:
        click.echo(plain(f"  registry: {error}"))
    for seal in report.seals:
        # the registry's strings are stored data: shown escaped, never as terminal control sequences
        click.echo(
            plain(
                f"  legacy records sealed: {seal.get('records')!r} into {seal.get('writer_id')!r} "
                f"at {seal.get('at')!r} by {seal.get('by')!r} (key {seal.get('key')!r})"
            )
        )


#: How many erased records the text report lists (``--json`` lists them all).
ERASURES_SHOWN = 50
_ERASURE_NOTES = {
    "authenticated": "erasure authenticated by the chain key",
    "unchecked": "not authenticated: no chain key",
    "forged": "FORGED: its erasure MAC does not match (payload replaced or time changed by hand)",
    "unauthenticated": "NOT AUTHENTICATED: no erasure MAC (erased by hand, or without the key)",
    "legacy": "not authenticated: erased before erasure MACs",
}


def _echo_erasures(report: VerifyReport) -> None:
    erasures = report.erasures
    if not erasures:
        return
    click.echo(f"erased records ({len(erasures)}):")
    for e in erasures[:ERASURES_SHOWN]:
        click.echo(
            f"  {plain(e.id)}  erased {plain(e.at) if e.at else 'at an unknown time'}  "
            f"fields: {', '.join(e.fields)}  "
            f"[{_ERASURE_NOTES.get(e.status, e.status)}]"
        )
    if len(erasures) > ERASURES_SHOWN:
        click.echo(f"  ... and {len(erasures) - ERASURES_SHOWN} more (--json lists them all)")
    if not report.keyed:
        click.echo(
            "note: without the chain key (--key or LLMAUDIT_CHAIN_KEY), verify can tell that an erased "
            "field's digest still fits the chain, not who erased it or when: anyone able to write the "
            "store can replace a payload by a tombstone or change its time."
        )


@cli.command()
@storage_option
@click.option("--session", default=None, help="Erase every record of this session key.")
@click.option("--user", default=None, help="Erase every record of this user.")
@click.option("--id", "ids", multiple=True, help="Erase this record (repeatable).")
@click.option("--key", envvar="LLMAUDIT_CHAIN_KEY", default=None, help="HMAC key of the chain.")
@click.option("--force", is_flag=True, help="Erase records that do not verify with the key, too.")
def forget(
    storage: str | None,
    session: str | None,
    user: str | None,
    ids: tuple[str, ...],
    key: str | None,
    force: bool,
) -> None:
    """Erase a data subject's records (right to be forgotten): payloads, headers, user, session keys,
    URL, error, tags and notes, keeping digests so the log still verifies."""
    if session is None and user is None and not ids:
        _fail("forget needs --session, --user or --id")
    with open_reader(storage, create_for_spool=True) as reader:
        result = reader.forget(session=session, user=user, ids=list(ids) or None, key=key, force=force)
    if not result.erased and not result.already_erased and not result.unguaranteed:
        _fail("no matching record")
    already = (
        f" ({result.already_erased} matching records were already erased)" if result.already_erased else ""
    )
    click.echo(f"erased {result.erased} records{already}")
    if result.legacy:
        click.echo(
            f"warning: {len(result.legacy)} records were sealed before every field was digested: only "
            "their request, response and metadata could be erased; their user, session key, URL, "
            "error, tags, headers and notes are kept (erasing them would break the chain)",
            err=True,
        )
    if result.unverified:
        click.echo(
            f"warning: {len(result.unverified)} records did not verify before erasure (--force): "
            "verify will report them as modified",
            err=True,
        )
    for note in result.residual_copies:
        click.echo(f"note: {note}", err=True)
    for caveat in result.unguaranteed:
        click.echo(f"not guaranteed: {caveat}", err=True)
    if result.unguaranteed:
        sys.exit(EXIT_UNGUARANTEED)


@cli.command()
@storage_option
@click.option("--older-than", "older_than", required=True, help="Age, e.g. 30d, 12h, 2w.")
def prune(storage: str | None, older_than: str) -> None:
    """Delete old records, leaving a checkpoint so that what remains still verifies."""
    cutoff = datetime.now(timezone.utc) - parse_age(older_than)
    with open_reader(storage) as reader, progress_bar("pruning") as advance:
        result = reader.prune(cutoff, progress=advance)
    click.echo(
        f"deleted {result.deleted} records older than {cutoff:%Y-%m-%d %H:%M:%S} UTC; "
        f"{result.checkpoints} checkpoints written"
    )


@cli.group()
def spool() -> None:
    """Records waiting in the local spool while the storage was unreachable."""


@spool.command("replay")
@storage_option
def spool_replay(storage: str | None) -> None:
    """Write spooled records into the storage now."""
    from ..pipeline.auditor import Auditor  # noqa: PLC0415 - only this command needs a writer

    with Auditor(storage_url(storage)) as auditor:
        auditor.replay_spool()  # the writer may have started replaying on its own: count both
        click.echo(f"replayed {auditor.stats().replayed} records into {plain(auditor.storage.url)}")


for _command in (*COMMANDS, *INTEGRITY_COMMANDS, ui):
    cli.add_command(_command)


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
        click.echo(f"llmaudit: error: {plain(exc)}", err=True)
        sys.exit(1)
