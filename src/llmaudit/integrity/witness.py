"""Witnesses: copies of the signed checkpoints kept where the database's owner cannot rewrite them.

A `Witness` takes each checkpoint a writer makes (`Witness.publish`). `FileWitness` appends it as one
JSON line to a file (or to ``checkpoints.jsonl`` in a directory): created 0600, opened for appending
only, fsynced after each line, so a crash leaves at worst a torn last line, which reading reports and
skips. `CommandWitness` runs a command of the user's with the checkpoint's JSON on its standard
input (to push it to a transparency log, or to object storage with a retention lock); a command
that fails or times out is an error the writer counts. The read side reads a file witness back with
`read_checkpoints` (the same format serves as a plain checkpoints file).

This module does the integrity stage's only I/O, and only on paths and commands it is given; it never
runs on the caller's hot path (the writer calls it when it makes a checkpoint).
"""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import orjson

from .._errors import ConfigurationError
from ..record.codec import dumps
from .checkpoints import Checkpoint

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT_S",
    "WITNESS_FILE",
    "CommandWitness",
    "FileWitness",
    "Witness",
    "open_witness",
    "read_checkpoints",
]

#: The file a directory witness appends to.
WITNESS_FILE = "checkpoints.jsonl"
#: How long a witness command may take.
DEFAULT_COMMAND_TIMEOUT_S = 30.0


@runtime_checkable
class Witness(Protocol):
    """Somewhere checkpoints are copied to."""

    def publish(self, checkpoint: Checkpoint) -> None:
        """Keep *checkpoint* (raises `OSError` or `subprocess.SubprocessError` when it cannot)."""


class FileWitness:
    """Appends checkpoints to a JSON Lines file (a directory: its `WITNESS_FILE`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        self.path = target / WITNESS_FILE if target.is_dir() or os.fspath(path).endswith("/") else target

    def publish(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = dumps(checkpoint.to_json()) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # several writers (processes) append to one witness
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def checkpoints(self, on_problem: Callable[[str], None] | None = None) -> list[Checkpoint]:
        return read_checkpoints(self.path, on_problem)

    def __repr__(self) -> str:
        return f"FileWitness({os.fspath(self.path)!r})"


class CommandWitness:
    """Runs *command* (a string split like a shell's, or an argument list; no shell) once per
    checkpoint, the checkpoint's JSON line on its standard input."""

    def __init__(self, command: str | Sequence[str], *, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            raise ConfigurationError("a witness command cannot be empty")
        self.timeout_s = timeout_s

    def publish(self, checkpoint: Checkpoint) -> None:
        subprocess.run(  # noqa: S603 - the user's own command, run without a shell
            self.argv,
            input=dumps(checkpoint.to_json()) + b"\n",
            check=True,
            timeout=self.timeout_s,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def __repr__(self) -> str:
        return f"CommandWitness({self.argv[0]!r})"


def open_witness(spec: str) -> FileWitness | CommandWitness:
    """The witness *spec* names: ``command:CMD`` runs CMD, anything else is a file or directory
    (``file://`` allowed in front)."""
    if spec.startswith("command:"):
        return CommandWitness(spec[len("command:") :])
    return FileWitness(spec.removeprefix("file://"))


def read_checkpoints(
    path: str | os.PathLike[str], on_problem: Callable[[str], None] | None = None
) -> list[Checkpoint]:
    """The checkpoints of a witness or checkpoints file (a directory: its `WITNESS_FILE`), in file
    order. A line that is not a checkpoint is skipped and reported to *on_problem*.

    Raises:
        ConfigurationError: the file cannot be read.
    """
    target = Path(path)
    if target.is_dir():
        target = target / WITNESS_FILE
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read checkpoints from {os.fspath(target)!r}: {exc.strerror}"
        ) from exc
    found = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(Checkpoint.from_json(orjson.loads(line)))
        except (orjson.JSONDecodeError, ValueError) as exc:
            if on_problem is not None:
                on_problem(f"{os.fspath(target)} line {number}: {exc}")
    return found
