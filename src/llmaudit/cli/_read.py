"""The read-side commands: sessions, show, tail, stats, export, aggregate and db upgrade."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Any

import click

from ..read.reader import GROUPABLE, Reader
from ..record.codec import record_to_dict
from ..record.model import AuditRecord, record_kind
from ._common import open_reader, parse_age, storage_option, storage_url, wants_json
from ._text import json_line, plain, shown
from ._views import (
    console,
    last_errors_lines,
    money,
    render_conversation,
    render_record_line,
    sessions_table,
    stats_table,
    uncounted_note,
)

__all__ = ["COMMANDS", "progress_bar"]


_TAIL_LOOKBACK = timedelta(minutes=10)


def _since(value: str | None) -> datetime | None:
    return None if value is None else datetime.now(timezone.utc) - parse_age(value)


def _problem(message: str) -> None:
    click.echo(f"warning: {plain(message)}", err=True)


def _emit_json(value: Any) -> None:
    click.echo(json_line(value))


def _record_json(record: AuditRecord) -> dict[str, Any]:
    return record_to_dict(record)


@contextmanager
def progress_bar(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for people (hidden when stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn  # noqa: PLC0415

    err = console(err=True)
    columns = [SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@click.command()
@storage_option
@click.option("--user", default=None, help="Only this user's sessions.")
@click.option("--client", default=None, help="Only records of this client.")
@click.option("--since", default=None, help="Only activity in the last AGE (e.g. 7d).")
@click.option("--limit", "-n", default=20, show_default=True, help="How many sessions.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def sessions(
    storage: str | None,
    user: str | None,
    client: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The most recently active sessions, with calls, tokens, cost and errors."""
    with open_reader(storage, listing=True) as reader:
        rows = reader.sessions(
            user=user, client=client, since=_since(since), limit=limit, on_problem=_problem
        )
        as_json = wants_json(as_json)
        failed = [row.session_key for row in rows if row.errors] if not as_json else []
        last_errors = {key: error for key in failed if (error := _last_error(reader, key))}
    if as_json:
        for row in rows:
            _emit_json(row.to_json())
    else:
        out = console()
        out.print(sessions_table(rows))
        for line in last_errors_lines(last_errors):
            out.print(line)


def _last_error(reader: Reader, session: str) -> str | None:
    """The error of the session's latest failed LLM call (read to its end: one record)."""
    found = list(reader.records(session=session, errors_only=True, kind="call", order="desc", limit=1))
    return found[0].error if found else None


@click.command()
@storage_option
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="The records as JSON lines.")
def show(storage: str | None, target: str, as_json: bool) -> None:
    """Render a session (by key) or one record (by id) as a conversation."""
    with open_reader(storage) as reader:
        records = list(reader.records(session=target, on_problem=_problem))
        if not records:
            one = reader.get(target)
            records = [one] if one is not None else []
    if not records:
        click.echo(f"llmaudit: no session or record {plain(repr(target))}", err=True)
        sys.exit(1)
    if wants_json(as_json):
        for record in records:
            _emit_json(_record_json(record))
        return
    out = console()
    out.print(shown(target, style="bold").append(f": {_show_counts(records)}\n"))
    render_conversation(records, out)


def _show_counts(records: list[AuditRecord]) -> str:
    """``2 calls, 2 functions, 1 aggregation, cost $…``: every record listed, each counted as what
    it is, and the cost of the calls alone."""
    kinds: Counter[str] = Counter(record_kind(r) for r in records)
    costs = [r.cost_usd for r in records if record_kind(r) == "call" and r.cost_usd is not None]
    parts = [f"{kinds['call']} call{'s' if kinds['call'] != 1 else ''}"]
    parts.extend(
        f"{kinds[kind]} {kind}{'s' if kinds[kind] != 1 else ''}"
        for kind in ("function", "aggregation")
        if kinds[kind]
    )
    # "-" when no call has a cost, never "$0.000000"
    return f"{', '.join(parts)}, cost {money(sum(costs) if costs else None)}"


@click.command()
@storage_option
@click.option("--lines", "-n", default=10, show_default=True, help="How many recent records.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records as they arrive.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls with -f.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def tail(storage: str | None, lines: int, follow: bool, interval: float, as_json: bool) -> None:
    """The latest records; with -f, follow the log until interrupted."""

    def show_all(records: list[AuditRecord]) -> None:
        for record in records:
            if wants_json(as_json):
                _emit_json(_record_json(record))
            else:
                click.echo(render_record_line(record))

    with open_reader(storage, listing=True) as reader:
        newest = list(reader.records(order="desc", limit=max(lines, 1), on_problem=_problem))
        latest = newest[:lines][::-1]
        show_all(latest)
        since = newest[0].created_at if newest else datetime.now(timezone.utc)
        seen = {r.id for r in newest}
        if follow:  # what is already there is not "new", however far back its call started
            seen.update(r.id for r in reader.records(since=since - _TAIL_LOOKBACK, on_problem=_problem))
        while follow:
            time.sleep(interval)
            # a record's time is when its call started: a long call lands after newer ones
            window = since - _TAIL_LOOKBACK
            fresh = [r for r in reader.records(since=window, on_problem=_problem) if r.id not in seen]
            show_all(fresh)
            if fresh:
                seen.update(r.id for r in fresh)
                since = max(r.created_at for r in fresh)


@click.command()
@storage_option
@click.option(
    "--by",
    default=None,
    help="Comma-separated: "
    + ", ".join(GROUPABLE)
    + " (default client,model; client,operation with --functions)",
)
@click.option("--since", default=None, help="Only the last AGE (e.g. 7d).")
@click.option("--session", default=None, help="Only this session.")
@click.option("--functions", is_flag=True, help="The @audited function records instead of the LLM calls.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def stats(
    storage: str | None,
    by: str | None,
    since: str | None,
    session: str | None,
    functions: bool,
    as_json: bool,
) -> None:
    """LLM calls, tokens, cost, p50/p95 latency and error rate per group (--functions: @audited records)."""
    default = "client,operation" if functions else "client,model"
    fields = tuple(name.strip() for name in (by or default).split(",") if name.strip())
    filters: dict[str, Any] = {"since": _since(since), "session": session, "on_problem": _problem}
    as_json = wants_json(as_json)
    with open_reader(storage, listing=True) as reader:
        rows = reader.stats(fields, kind="function" if functions else "call", **filters)
        if not as_json and not functions:
            others = [reader.stats((), kind=kind, **filters) for kind in ("function", "aggregation")]
    if as_json:
        for row in rows:
            _emit_json(row.to_json())
        return
    console().print(stats_table(rows, fields, functions=functions))
    if not functions:
        note = uncounted_note(sum(r.functions for r in others[0]), sum(r.aggregations for r in others[1]))
        if note:
            click.echo(note)


@click.command()
@storage_option
@click.option(
    "--to",
    "destination",
    required=True,
    help="Storage URL, FILE.jsonl, FILE.csv, FILE.parquet, or otlp://HOST:4318 / otlp+grpc://HOST:4317.",
)
@click.option("--since", default=None, help="Only the last AGE (e.g. 30d).")
@click.option("--session", default=None, help="Only this session.")
@click.option(
    "--after",
    default=None,
    metavar="ID",
    help="otlp:// only: start after this record (the id an interrupted export printed).",
)
def export(
    storage: str | None, destination: str, since: str | None, session: str | None, after: str | None
) -> None:
    """Copy records to another storage or a file (idempotent: run it again to resume; a Parquet file
    is written whole), or send them to an OpenTelemetry collector as GenAI spans."""
    if destination.lower().startswith("otlp"):
        _export_otlp(storage, destination, since, session, after)
        return
    if after is not None:
        raise click.UsageError("--after applies to otlp:// destinations (the others resume by id themselves)")
    with open_reader(storage) as reader, progress_bar("exporting") as advance:
        count = reader.export(destination, progress=advance, since=_since(since), session=session)
    click.echo(f"exported {count} records to {plain(destination)}")


def _export_otlp(
    storage: str | None, destination: str, since: str | None, session: str | None, after: str | None
) -> None:
    from .. import otel  # noqa: PLC0415 - the otel extra is loaded only for an OTLP export
    from .._errors import StorageError  # noqa: PLC0415

    last = [after]

    with open_reader(storage) as reader, progress_bar("exporting") as advance:

        def progress(count: int, last_id: str) -> None:
            last[0] = last_id
            advance(count)

        try:
            result = otel.export(
                reader, destination, after=after, progress=progress, since=_since(since), session=session
            )
        except StorageError as exc:
            resume = f"; resume with --after {last[0]}" if last[0] else "; run it again to resume"
            raise StorageError(f"{exc}{resume}") from exc
    cursor = f" (last: {result.last_id})" if result.last_id else ""
    click.echo(f"exported {result.count} records to {plain(destination)}{cursor}")


@click.command()
@storage_option
@click.option("--session", default=None, help="Summarise this session.")
@click.option("--day", default=None, help="Summarise this UTC day (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print the aggregation record as JSON.")
def aggregate(storage: str | None, session: str | None, day: str | None, as_json: bool) -> None:
    """Write one aggregation record summarising a session or a day."""
    try:
        when = None if day is None else date.fromisoformat(day)
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--day") from None
    with open_reader(storage) as reader, progress_bar("aggregating") as advance:
        record = reader.aggregate(session=session, day=when, progress=advance)
    if wants_json(as_json):
        _emit_json(_record_json(record))
        return
    summary: Any = record.response
    click.echo(
        f"aggregation {record.id}: {summary['calls']} calls, {summary['functions']} function records, "
        f"{record.input_tokens} in / "
        f"{record.output_tokens} out tokens, cost {summary['cost_usd']}, "
        f"models {plain(', '.join(map(str, summary['models'])))}"
    )


@click.group()
def db() -> None:
    """The SQL schema."""


@db.command("upgrade")
@storage_option
def db_upgrade(storage: str | None) -> None:
    """Apply pending schema migrations."""
    from ..storage.sql import SQLStorage  # noqa: PLC0415

    url = storage_url(storage)
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
        click.echo(f"{plain(url)} is not a SQL storage: nothing to upgrade")
        return
    store = SQLStorage(url, create=False)  # opening applies pending migrations; never creates
    try:
        click.echo(f"{store.url}: schema version {store.upgrade()}")
    finally:
        store.close()


@db.command("seal-legacy")
@storage_option
@click.option("--key", envvar="LLMAUDIT_CHAIN_KEY", default=None, help="HMAC key of the chain.")
@click.option("--by", default=None, help="Who seals, for the record (default: the OS user).")
def db_seal_legacy(storage: str | None, key: str | None, by: str | None) -> None:
    """Seal records written before the store had a hash chain into a chain of their own.

    Only records older than the store's first chained record are sealed; the sealing is recorded
    in the chain registry (count, ids, time, who, key fingerprint) and `llmaudit verify` lists it.
    Migrations never do this: run it once, knowing what the unchained records are.
    """
    with open_reader(storage) as reader:
        result = reader.seal_legacy(key, by=by)
    click.echo(
        f"sealed {result.sealed} records into {result.writer_id or 'no chain'}; "
        f"{result.left_unchained} unchained records are newer than the chain and stay unchained"
    )


#: Added to the ``llmaudit`` group by ``cli/__init__.py``.
COMMANDS = (sessions, show, tail, stats, export, aggregate, db)
