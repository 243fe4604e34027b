"""The signed-checkpoint commands: ``keys generate``, ``prove``, ``verify-proof``, and what
``verify --public-key`` runs (`verify_signed_command`).

The key handling needs the ``signing`` extra and is imported only when a command runs, so the rest
of the command line works without it. Until the stores keep checkpoints beside the records, the
store's copy of the checkpoints is a file given with ``--checkpoints`` (the format of a file
witness); the witness's copy is ``--witness``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click
import orjson

from .._errors import ConfigurationError, VerificationError
from ..integrity.chain import chain_key
from ..integrity.checkpoints import Checkpoint, Verifier
from ..integrity.proofs import (
    CONSISTENCY_FORMAT,
    prove,
    prove_consistency,
    verify_consistency_proof,
    verify_proof,
)
from ..integrity.signed import SignedReport, verify_signed
from ..integrity.witness import read_checkpoints
from ._common import open_reader, storage_option, wants_json
from ._text import json_line, plain

if TYPE_CHECKING:
    from ..integrity.proofs import ProofResult

__all__ = ["COMMANDS", "verify_signed_command"]

CHECKPOINTS_HELP = "The store's checkpoints file (JSON Lines, as a file witness writes)."
WITNESS_HELP = "The witness's copy of the checkpoints (a file, or a directory holding checkpoints.jsonl)."
PUBLIC_KEY_HELP = "A public key PEM file (repeat it for the keys of earlier rotations)."


def _fail(message: str) -> None:
    click.echo(f"llmaudit: {plain(message)}", err=True)
    sys.exit(1)


def _keys() -> ModuleType:
    """`llmaudit.integrity.keys`, or one line naming the extra to install (exit 1, no traceback)."""
    try:
        return importlib.import_module("llmaudit.integrity.keys")
    except ImportError as exc:
        raise ConfigurationError(str(exc)) from exc


def _public_keys(paths: Sequence[str]) -> Mapping[str, Verifier]:
    found: Mapping[str, Verifier] = _keys().public_keys(paths)
    return found


def _read(path: str) -> list[Checkpoint]:
    """Checkpoints from a file; an unreadable line is an error (a witness's torn last line too)."""
    problems: list[str] = []
    found = read_checkpoints(path, problems.append)
    for problem in problems:
        click.echo(f"llmaudit: warning: {plain(problem)}", err=True)
    return found


@click.group()
def keys() -> None:
    """Ed25519 keys that sign checkpoints (needs `pip install 'llmaudit-sdk[signing]'`)."""


@keys.command("generate")
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="Directory to write into."
)
@click.option("--passphrase-env", default=None, metavar="VAR", help="Encrypt the private key with $VAR.")
@click.option("--encrypt", is_flag=True, help="Encrypt the private key with a passphrase typed at a prompt.")
def keys_generate(out: str, passphrase_env: str | None, encrypt: bool) -> None:
    """Write a new key pair: the private key (mode 0600) and the public key to give auditors."""
    passphrase: str | None = None
    if passphrase_env is not None:
        passphrase = os.environ.get(passphrase_env)
        if not passphrase:
            _fail(f"--passphrase-env: ${passphrase_env} is not set")
    elif encrypt:
        passphrase = click.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    files = _keys().generate_keypair(out, passphrase=passphrase.encode() if passphrase else None)
    click.echo(f"key id {files.key_id}")
    click.echo(f"private key: {plain(files.private)} (keep it secret; LLMAUDIT_SIGNING_KEY names it)")
    click.echo(f"public key:  {plain(files.public)} (give it to whoever verifies)")


def _write(document: dict[str, Any], output: str | None) -> None:
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if output is None or output == "-":
        click.echo(data.decode(), nl=False)
        return
    # a proof holds a record: the data subject's text, unless erased (mode 0600, as the store's files)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    click.echo(f"wrote {plain(output)}", err=True)


def _pick(checkpoints: Iterable[Checkpoint], spec: str) -> Checkpoint:
    """A checkpoint named ``N`` (when one writer has checkpoint N) or ``WRITER_ID:N``."""
    writer, _, number = spec.rpartition(":")
    if not number.isdigit():
        raise click.BadParameter(f"{spec!r}: name a checkpoint as N or WRITER_ID:N")
    found = [c for c in checkpoints if c.n == int(number) and (not writer or c.writer_id == writer)]
    if len({c.writer_id for c in found}) > 1:
        raise click.BadParameter(f"{spec!r}: several writers have checkpoint {number}: use WRITER_ID:N")
    if not found:
        raise click.BadParameter(f"{spec!r}: no such checkpoint")
    return found[0]


@click.command("prove")
@storage_option
@click.argument("names", nargs=-1, required=True, metavar="RECORD_ID | --consistency FROM TO")
@click.option("--consistency", is_flag=True, help="Prove that checkpoint TO's tree extends FROM's.")
@click.option(
    "--checkpoints", "checkpoints_path", default=None, help=CHECKPOINTS_HELP + " (default: the store's own)"
)
@click.option("--checkpoint", "number", type=int, default=None, help="Prove against this checkpoint number.")
@click.option("-o", "--output", default=None, help="Write the proof here (default: standard output).")
def prove_command(
    storage: str | None,
    names: tuple[str, ...],
    consistency: bool,
    checkpoints_path: str | None,
    number: int | None,
    output: str | None,
) -> None:
    """Write a self-contained proof that one record is in a signed checkpoint's tree (or, with
    --consistency, that a later checkpoint extends an earlier one), checkable offline."""
    if len(names) != (2 if consistency else 1):
        raise click.UsageError("prove takes RECORD_ID, or --consistency FROM TO")
    with open_reader(storage) as reader:
        checkpoints = _read(checkpoints_path) if checkpoints_path is not None else reader.checkpoints()
        records = reader.records()
        if consistency:
            document = prove_consistency(_pick(checkpoints, names[0]), _pick(checkpoints, names[1]), records)
        else:
            document = prove(names[0], records, checkpoints, checkpoint=number)
    _write(document, output)


@click.command("verify-proof")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--public-key", "public_key", multiple=True, required=True, help=PUBLIC_KEY_HELP)
@click.option("--key", envvar="LLMAUDIT_CHAIN_KEY", default=None, help="Chain key (a keyed chain's content).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_proof_command(path: str, public_key: tuple[str, ...], key: str | None, as_json: bool) -> None:
    """Check a proof file with the public key alone, with no access to the store; exit 1 if it fails."""
    try:
        document = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise VerificationError(f"{path}: not a readable proof ({exc})") from exc
    keys_ = _public_keys(public_key)
    if isinstance(document, dict) and document.get("format") == CONSISTENCY_FORMAT:
        result = verify_consistency_proof(document, keys_)
    else:
        result = verify_proof(document if isinstance(document, dict) else {}, keys_, chain_key=chain_key(key))
    if wants_json(as_json):
        click.echo(json_line(result.to_json()))
    else:
        _echo_proof(result)
    if not result.ok:
        sys.exit(1)


def _echo_proof(result: ProofResult) -> None:
    if result.record_id is not None:
        what = f"record {result.record_id} (writer {result.writer_id}, seq {result.seq})"
        tail = f" erased fields: {', '.join(result.erased)}" if result.erased else ""
    else:
        what, tail = f"consistency of writer {result.writer_id}'s trees", ""
    verdict = "OK" if result.ok else "FAILED"
    click.echo(
        plain(f"{verdict}: {what} in a tree of {result.tree_size} signed by key {result.key_id}{tail}")
    )
    for problem in result.problems:
        click.echo(plain(f"  {problem}"))
    for note in result.notes:
        click.echo(plain(f"  note: {note}"))


def verify_signed_command(
    storage: str | None,
    public_key: Sequence[str],
    witness_path: str | None,
    checkpoints_path: str | None,
    key: str | None,
    as_json: bool,
) -> None:
    """``llmaudit verify --public-key``: the records against the signed checkpoints; exits."""
    if not public_key:
        raise ConfigurationError("--witness and --checkpoints check signatures: give --public-key")
    keys_ = _public_keys(public_key)
    witness = _read(witness_path) if witness_path is not None else None
    stored = _read(checkpoints_path) if checkpoints_path is not None else None
    unreadable: list[str] = []
    with open_reader(storage) as reader:
        if stored is None:  # the checkpoints stored beside the records
            stored = reader.checkpoints()
        report = verify_signed(
            reader.records(on_problem=unreadable.append),
            stored,
            keys_,
            witness=witness,
            chain_key=chain_key(key),
        )
    if wants_json(as_json):
        click.echo(json_line({**report.to_json(), "unreadable": unreadable}))
    else:
        for problem in unreadable:
            click.echo(f"unreadable: {plain(problem)}", err=True)
        _echo_signed(report, witness is not None)
    if not report.ok or unreadable:
        sys.exit(1)


def _echo_signed(report: SignedReport, witnessed: bool) -> None:
    totals = report.totals()
    click.echo(
        f"{'OK' if report.ok else 'FAILED'}: {totals['records']} records from {totals['writers']} writers; "
        f"{totals['covered']} covered by {totals['checkpoints']} signed checkpoints, "
        f"{totals['uncovered']} after the last checkpoint"
        + ("; checked against the witness" if report.witness_checked else "")
        + ("" if witnessed else "; no witness: checkpoints cut from the store's tail go unseen")
    )
    for writer_id, w in sorted(report.writers.items()):
        content = "content checked" if w.content_checked else "content NOT checked (keyed chain: --key)"
        click.echo(
            plain(
                f"  writer {writer_id}: {w.covered} covered, {w.uncovered} uncovered, tree {w.tree_size}, "
                f"{w.checkpoints} checkpoints, {content}"
            )
        )
        if w.modified:
            click.echo(plain(f"    modified (content does not give the hash): {w.modified[:5]}"))
        for problem in w.problems:
            click.echo(plain(f"    {problem}"))
        for warning in w.warnings:
            click.echo(plain(f"    warning: {warning}"))
    if report.unchained:
        click.echo(plain(f"  records without a chain (covered by no signature): {report.unchained[:5]}"))


COMMANDS = (keys, prove_command, verify_proof_command)
