"""The read-side commands: sessions, show, tail, stats, export, aggregate and db upgrade."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Any

import click

from .. import _reader
from .._codec import record_to_dict
from .._record import AuditRecord
from ._common import parse_age, storage_option, storage_url
from ._text import json_line, plain, shown
from ._views import console, money, render_conversation, render_record_line, sessions_table, stats_table

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
    with _reader.open(storage_url(storage)) as reader:
        rows = reader.sessions(
            user=user, client=client, since=_since(since), limit=limit, on_problem=_problem
        )
    if as_json:
        for row in rows:
            _emit_json(row.to_json())
    else:
        console().print(sessions_table(rows))


@click.command()
@storage_option
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="The records as JSON lines.")
def show(storage: str | None, target: str, as_json: bool) -> None:
    """Render a session (by key) or one record (by id) as a conversation."""
    with _reader.open(storage_url(storage)) as reader:
        records = list(reader.records(session=target, on_problem=_problem))
        if not records:
            one = reader.get(target)
            records = [one] if one is not None else []
    if not records:
        click.echo(f"llmaudit: no session or record {plain(repr(target))}", err=True)
        sys.exit(1)
    if as_json:
        for record in records:
            _emit_json(_record_json(record))
        return
    out = console()
    calls = [r for r in records if not r.is_aggregation]
    costs = [r.cost_usd for r in calls if r.cost_usd is not None]
    cost = money(sum(costs) if costs else None)  # "-" when no call has a cost, not $0.000000
    out.print(shown(target, style="bold").append(f": {len(calls)} records, cost {cost}\n"))
    render_conversation(records, out)


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
            if as_json:
                _emit_json(_record_json(record))
            else:
                click.echo(render_record_line(record))

    with _reader.open(storage_url(storage)) as reader:
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
    default="client,model",
    show_default=True,
    help="Comma-separated: " + ", ".join(_reader.GROUPABLE),
)
@click.option("--since", default=None, help="Only the last AGE (e.g. 7d).")
@click.option("--session", default=None, help="Only this session.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def stats(storage: str | None, by: str, since: str | None, session: str | None, as_json: bool) -> None:
    """Calls, tokens, cost, p50/p95 latency and error rate per group."""
    fields = tuple(name.strip() for name in by.split(",") if name.strip())
    with _reader.open(storage_url(storage)) as reader:
        rows = reader.stats(fields, since=_since(since), session=session, on_problem=_problem)
    if as_json:
        for row in rows:
            _emit_json(row.to_json())
    else:
        console().print(stats_table(rows, fields))


@click.command()
@storage_option
@click.option("--to", "destination", required=True, help="Storage URL, FILE.jsonl, FILE.csv or FILE.parquet.")
@click.option("--since", default=None, help="Only the last AGE (e.g. 30d).")
@click.option("--session", default=None, help="Only this session.")
def export(storage: str | None, destination: str, since: str | None, session: str | None) -> None:
    """Copy records to another storage or a file (idempotent: run it again to resume; a Parquet file
    is written whole)."""
    with _reader.open(storage_url(storage)) as reader, progress_bar("exporting") as advance:
        count = reader.export(destination, progress=advance, since=_since(since), session=session)
    click.echo(f"exported {count} records to {plain(destination)}")


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
    with _reader.open(storage_url(storage)) as reader, progress_bar("aggregating") as advance:
        record = reader.aggregate(session=session, day=when, progress=advance)
    if as_json:
        _emit_json(_record_json(record))
        return
    summary: Any = record.response
    click.echo(
        f"aggregation {record.id}: {summary['calls']} calls, {record.input_tokens} in / "
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
    store = SQLStorage(url)  # opening applies pending migrations
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
    from .. import _reader  # noqa: PLC0415

    with _reader.open(storage_url(storage)) as reader:
        result = reader.seal_legacy(key, by=by)
    click.echo(
        f"sealed {result.sealed} records into {result.writer_id or 'no chain'}; "
        f"{result.left_unchained} unchained records are newer than the chain and stay unchained"
    )


#: Added to the ``llmaudit`` group by ``cli/__init__.py``.
COMMANDS = (sessions, show, tail, stats, export, aggregate, db)
