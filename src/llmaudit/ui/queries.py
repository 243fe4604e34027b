"""Every read the web viewer makes, in one place, through the public read API (`llmaudit.open`).

The pages never touch a backend: they call the functions here, which call `Reader.records`,
`Reader.sessions`, `Reader.stats`, `Reader.get` and `Reader.verify`, the code behind the command
line's ``sessions``, ``show``, ``stats``, ``export`` and ``verify``, so the viewer's numbers are the
command line's. What each costs on a large log, and what a backend must answer natively for it to
stay fast, is noted on each function (``pushdown:``).

The store is opened read-only and never created: SQLite through a ``mode=ro`` URI, PostgreSQL in a
read-only transaction mode, MariaDB/MySQL with a read-only session (`read_only_url`), JSON Lines and
memory stores by calling nothing but their readers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .._errors import ConfigurationError, StorageNotFoundError
from ..integrity.chain import chain_key, compute_hash
from ..integrity.verify import VerifyReport
from ..read.export import encode
from ..read.reader import Reader, open
from ..read.summary import SessionSummary, StatsRow
from ..record.model import AuditRecord, Kind
from ..storage import redact_url

__all__ = [
    "PAGE_SIZE",
    "RANGES",
    "SPLITS",
    "Dashboard",
    "Filters",
    "SessionsPage",
    "Store",
    "read_only_url",
]

#: Sessions per page of the sessions list.
PAGE_SIZE = 50
#: Records shown on one conversation page (a longer session says how many it left out).
CONVERSATION_LIMIT = 1000
#: The time ranges offered, as ``(name, length)`` (None: everything).
RANGES: tuple[tuple[str, timedelta | None], ...] = (
    ("1h", timedelta(hours=1)),
    ("24h", timedelta(days=1)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
    ("all", None),
)
#: What the dashboard splits its numbers by (each one a `Reader.stats` grouping).
SPLITS = ("model", "client", "user", "provider")
#: The widths a dashboard bucket can have; the narrowest that keeps the chart under `MAX_BUCKETS`.
_WIDTHS = tuple(
    timedelta(seconds=s)
    for s in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400)
)
MAX_BUCKETS = 48
#: How long the filter suggestions (users, clients, models, providers) are kept.
SUGGESTIONS_TTL_S = 60.0
_TEXT_FILTERS = ("user", "client", "model", "provider")


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters of a page, as its URL carries them (so a view can be bookmarked and shared)."""

    range: str = "all"
    since: datetime | None = None
    until: datetime | None = None
    user: str | None = None
    client: str | None = None
    model: str | None = None
    provider: str | None = None
    errors: bool = False
    aggregations: bool = False
    q: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        """Filters from query parameters; anything malformed is ignored rather than refused."""
        values: dict[str, Any] = {name: (params.get(name) or "").strip() or None for name in _TEXT_FILTERS}
        chosen = params.get("range") or "all"
        values["range"] = chosen if chosen in dict(RANGES) or chosen == "custom" else "all"
        values["since"] = _datetime(params.get("since"))
        values["until"] = _datetime(params.get("until"))
        if values["since"] or values["until"]:
            values["range"] = "custom"
        values["errors"] = params.get("errors") in ("1", "on", "true")
        values["aggregations"] = params.get("aggregations") in ("1", "on", "true")
        values["q"] = (params.get("q") or "").strip()[:500] or None
        return cls(**values)

    def window(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """``(since, until)`` of the chosen range at *now*."""
        if self.range == "custom":
            return self.since, self.until
        length = dict(RANGES).get(self.range)
        return (None if length is None else now - length), None

    def reader_filters(self, now: datetime) -> dict[str, Any]:
        """The filters as `Reader.records`/`sessions`/`stats` keywords (errors and search apart)."""
        since, until = self.window(now)
        named: dict[str, Any] = {name: getattr(self, name) for name in _TEXT_FILTERS}
        return {k: v for k, v in {**named, "since": since, "until": until}.items() if v is not None}

    def kinds(self) -> tuple[Kind, ...] | None:
        """The kinds of record the lists count: aggregation records only when asked for."""
        return None if self.aggregations else ("call", "function")

    def params(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (only those set), with *changes* applied."""
        chosen = replace(self, **changes)
        out: dict[str, str] = {}
        for name in (*_TEXT_FILTERS, "q"):
            value = getattr(chosen, name)
            if value:
                out[name] = value
        if chosen.range != "all":
            out["range"] = chosen.range
        if chosen.range == "custom":
            for name in ("since", "until"):
                value = getattr(chosen, name)
                if value is not None:
                    out[name] = value.strftime("%Y-%m-%dT%H:%M")
        if chosen.errors:
            out["errors"] = "1"
        if chosen.aggregations:
            out["aggregations"] = "1"
        return out


def _datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def read_only_url(url: str) -> str:
    """*url* opened so that the database itself refuses writes (defence in depth: the viewer calls
    no writing method anyway). SQLite: a ``file:`` URI with ``mode=ro`` (the file must exist);
    PostgreSQL: ``default_transaction_read_only``; MariaDB/MySQL: a read-only session. Other
    schemes are returned as they are.

    Raises:
        StorageNotFoundError: a SQLite file that does not exist.
    """
    scheme = url.split("://", 1)[0].lower()
    backend = scheme.split("+", 1)[0]
    if backend == "sqlite":
        return _sqlite_read_only(url)
    parts = urlsplit(url)
    query = parts.query
    if backend in ("postgresql", "postgres") and "options=" not in query:
        extra = "options=" + quote("-c default_transaction_read_only=on")
    elif backend in ("mysql", "mariadb") and "init_command=" not in query:
        extra = "init_command=" + quote("SET SESSION TRANSACTION READ ONLY")
    else:
        return url
    return parts._replace(query=f"{query}&{extra}" if query else extra).geturl()


def _sqlite_read_only(url: str) -> str:
    head, _, rest = url.partition(":///")
    database, _, query = rest.partition("?")
    if not database or database.startswith("file:") or database == ":memory:":
        return url
    path = Path(database).expanduser()
    if not path.is_file():
        raise StorageNotFoundError(
            f"no llmaudit store at {redact_url(url)}: {path} does not exist", url=redact_url(url)
        )
    extra = "mode=ro&uri=true"
    return f"{head}:///file:{quote(str(path.resolve()))}?{query + '&' if query else ''}{extra}"


@dataclass(frozen=True, slots=True)
class SessionsPage:
    """One page of the sessions list, with what the rows need beyond `SessionSummary`."""

    rows: list[SessionSummary]
    clients: dict[str, list[str]]
    models: dict[str, list[str]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Series:
    """One bucket of the dashboard: its start, the totals, and the calls per split value."""

    start: datetime
    total: StatsRow | None
    by: dict[str, int]


@dataclass(slots=True)
class Dashboard:
    """What the dashboard shows (every number from `Reader.stats` or `Reader.sessions`)."""

    totals: StatsRow | None
    split: str
    rows: list[StatsRow]
    width: timedelta
    buckets: list[Series]
    top_sessions: list[SessionSummary]
    top_users: list[StatsRow]
    functions: int = 0
    aggregations: int = 0
    series_names: list[str] = field(default_factory=list)


def encode_cursor(summary: SessionSummary) -> str:
    """The keyset cursor after *summary*: its last activity and key."""
    return f"{summary.last.isoformat()}|{summary.session_key}"


def decode_cursor(text: str | None) -> tuple[datetime, str] | None:
    if not text or "|" not in text:
        return None
    when, _, key = text.partition("|")
    at = _datetime(when)
    return None if at is None else (at, key)


class Store:
    """The viewer's one store: opened read-only on first use (and again after a failed open, so a
    database that was down is picked up when it is back), shared by every request."""

    def __init__(self, url: str, *, chain_key_text: str | None = None) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self._reader: Reader | None = None
        self._lock = threading.Lock()
        self._chain_key = chain_key(chain_key_text or os.environ.get("LLMAUDIT_CHAIN_KEY"))
        self._suggestions: tuple[float, dict[str, list[str]]] | None = None

    def reader(self) -> Reader:
        """The open reader.

        Raises:
            StorageNotFoundError, StorageError, ConfigurationError: as `llmaudit.open` does.
        """
        with self._lock:
            if self._reader is None:
                self._reader = open(read_only_url(self.url))
            return self._reader

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # -- the sessions list ---------------------------------------------------------------------

    def sessions_page(self, filters: Filters, cursor: str | None, now: datetime) -> SessionsPage:
        """A page of sessions, newest activity first, after *cursor*.

        pushdown: `Reader.sessions` is one GROUP BY on SQL, but with a cursor, a search (``q``) or
        errors-only it summarises every matching session (or reads every record, for ``q``) and
        keeps a page: at 1M records the backend needs a native keyset (``HAVING (last, key) <
        cursor``), ``errors > 0`` and text match (the full-text indexes of ``storage/sql.py``)."""
        reader = self.reader()
        named = filters.reader_filters(now)
        kinds = filters.kinds()
        if kinds is not None:
            named["kind"] = kinds
        limit = None if filters.errors else PAGE_SIZE + 1
        found = reader.sessions(
            limit=limit, before=decode_cursor(cursor), text=filters.q, on_problem=_ignore, **named
        )
        if filters.errors:
            found = [s for s in found if s.errors][: PAGE_SIZE + 1]
        rows, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
        clients, models = self._labels(reader, rows, named)
        return SessionsPage(rows, clients, models, encode_cursor(rows[-1]) if more and rows else None)

    def _labels(
        self, reader: Reader, rows: list[SessionSummary], named: dict[str, Any]
    ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """The clients and models of the page's sessions: one grouped `Reader.stats` over the
        page's time span (pushdown: a native ``session_key IN (...)`` filter would bound it better)."""
        clients: dict[str, set[str]] = {}
        models: dict[str, set[str]] = {}
        if not rows:
            return {}, {}
        keys = {s.session_key for s in rows}
        span = {
            **{k: v for k, v in named.items() if k != "kind"},
            "since": min(s.first for s in rows),
            "until": max(s.last for s in rows) + timedelta(microseconds=1),
        }
        for kind in ("call", "function"):
            for row in reader.stats(
                ("session_key", "client", "model"), kind=kind, on_problem=_ignore, **span
            ):
                key = row.group["session_key"]
                if key not in keys:
                    continue
                if row.group["client"]:
                    clients.setdefault(key, set()).add(row.group["client"])
                if row.group["model"] and kind == "call":
                    models.setdefault(key, set()).add(row.group["model"])
        return {k: sorted(v) for k, v in clients.items()}, {k: sorted(v) for k, v in models.items()}

    def latest_marker(self, filters: Filters, now: datetime) -> str:
        """What changes when a record arrives that the sessions list would show (live mode): the
        newest record's id (pushdown: one indexed ``ORDER BY created_at DESC LIMIT 1``)."""
        reader = self.reader()
        named = filters.reader_filters(now)
        newest = list(reader.records(order="desc", limit=1, on_problem=_ignore, **named))
        return newest[0].id if newest else ""

    def suggestions(self) -> dict[str, list[str]]:
        """The users, clients, models and providers seen, for the filter fields' suggestions (one
        grouped `Reader.stats`, kept `SUGGESTIONS_TTL_S`)."""
        cached = self._suggestions
        if cached is not None and time.monotonic() - cached[0] < SUGGESTIONS_TTL_S:
            return cached[1]
        found: dict[str, set[str]] = {name: set() for name in _TEXT_FILTERS}
        for row in self.reader().stats(_TEXT_FILTERS, kind="call", on_problem=_ignore):
            for name in _TEXT_FILTERS:
                if row.group[name]:
                    found[name].add(str(row.group[name]))
        result = {name: sorted(values)[:200] for name, values in found.items()}
        self._suggestions = (time.monotonic(), result)
        return result

    # -- one session, one record ----------------------------------------------------------------

    def conversation(self, key: str) -> tuple[list[AuditRecord], bool]:
        """The session's records in order, at most `CONVERSATION_LIMIT` (and whether some were left
        out). pushdown: indexed on ``session_key`` in SQL; a JSONL store reads every day file."""
        found = list(self.reader().records(session=key, limit=CONVERSATION_LIMIT + 1, on_problem=_ignore))
        return found[:CONVERSATION_LIMIT], len(found) > CONVERSATION_LIMIT

    def record(self, record_id: str) -> AuditRecord | None:
        """One record by id (the primary key in SQL; a JSONL store reads until it finds it)."""
        return self.reader().get(record_id)

    def records_by_id(self, ids: list[str]) -> dict[str, AuditRecord]:
        """Records by id (for an aggregation record's list and a tree's parents)."""
        if not ids:
            return {}
        return {r.id: r for r in self.reader().records(ids=ids, on_problem=_ignore)}

    def chain_status(self, record: AuditRecord) -> str:
        """``"verified"`` when the record's hash is the hash of its content (with the chain key of
        ``LLMAUDIT_CHAIN_KEY``), ``"mismatch"`` when not, ``"unchained"`` when it has no chain. Its
        place in its writer's chain is checked by the integrity page (`verify`)."""
        if record.hash is None or record.writer_id is None:
            return "unchained"
        try:
            return "verified" if compute_hash(record, self._chain_key) == record.hash else "mismatch"
        except (ValueError, TypeError):
            return "mismatch"

    # -- the dashboard ---------------------------------------------------------------------------

    def dashboard(self, filters: Filters, split: str, now: datetime) -> Dashboard:
        """Totals, one row per *split* value and buckets over time, all from `Reader.stats` with the
        filters `llmaudit stats` takes (so the numbers are what ``stats --json`` prints), and the
        top sessions (`Reader.sessions`) and users by cost.

        pushdown: each bucket is one `Reader.stats` (at most `MAX_BUCKETS`); the top sessions
        summarise every session of the range: SQL needs ``ORDER BY cost DESC LIMIT 10`` natively."""
        reader = self.reader()
        split = split if split in SPLITS else SPLITS[0]
        named = filters.reader_filters(now)
        totals = next(iter(reader.stats((), on_problem=_ignore, **named)), None)
        rows = reader.stats((split,), on_problem=_ignore, **named)
        start, end = self._span(reader, named, now)
        width = _width(end - start)
        buckets: list[Series] = []
        names = [str(r.group[split]) for r in rows[:6]]
        at = _floor(start, width)
        while at < end and len(buckets) <= MAX_BUCKETS + 1:
            window = {**named, "since": max(at, named.get("since") or at), "until": at + width}
            if named.get("until") is not None:
                window["until"] = min(window["until"], named["until"])
            parts = reader.stats((split,), on_problem=_ignore, **window)
            total = next(iter(reader.stats((), on_problem=_ignore, **window)), None) if parts else None
            by = {str(p.group[split]): p.calls for p in parts}
            buckets.append(Series(at, total, by))
            at += width
        sessions = reader.sessions(on_problem=_ignore, **named)
        top_sessions = sorted(
            (s for s in sessions if s.cost_usd), key=lambda s: (-(s.cost_usd or 0), s.session_key)
        )[:10]
        users = reader.stats(("user",), on_problem=_ignore, **named)
        top_users = sorted(users, key=lambda r: (-(r.cost_usd or 0), -r.calls, str(r.group["user"])))[:10]
        functions = sum(r.functions for r in reader.stats((), kind="function", on_problem=_ignore, **named))
        aggregations = sum(
            r.aggregations for r in reader.stats((), kind="aggregation", on_problem=_ignore, **named)
        )
        return Dashboard(
            totals, split, rows, width, buckets, top_sessions, top_users, functions, aggregations, names
        )

    def _span(self, reader: Reader, named: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
        """The time the dashboard's buckets cover: the chosen range, or from the first matching
        record to the last when the range is open (two indexed ``LIMIT 1`` reads)."""
        since, until = named.get("since"), named.get("until")
        if since is not None and until is not None:
            return since, until
        bounds = {k: v for k, v in named.items() if k not in ("since", "until")}
        first = list(reader.records(order="asc", limit=1, on_problem=_ignore, since=since, **bounds))
        last = list(reader.records(order="desc", limit=1, on_problem=_ignore, until=until, **bounds))
        start = since or (first[0].created_at if first else now - timedelta(hours=1))
        end = until or ((last[0].created_at + timedelta(microseconds=1)) if since is None and last else now)
        if since is not None and until is None:
            end = now
        return start, max(end, start + timedelta(minutes=1))

    # -- integrity and export --------------------------------------------------------------------

    def verify(self) -> tuple[VerifyReport, list[str]]:
        """`Reader.verify` with the chain key of ``LLMAUDIT_CHAIN_KEY``, and the unreadable data it
        met (reads every record: the cost of ``llmaudit verify``)."""
        problems: list[str] = []
        report = self.reader().verify(self._chain_key, on_problem=problems.append)
        return report, problems

    def export(self, filters: Filters, fmt: str, now: datetime) -> Iterator[bytes]:
        """The records of *filters* as `llmaudit export` writes them to FILE.jsonl or FILE.csv."""
        if fmt not in ("jsonl", "csv"):
            raise ConfigurationError(f"export format {fmt!r}: use jsonl or csv")
        named = filters.reader_filters(now)
        kinds = filters.kinds()
        if kinds is not None:
            named["kind"] = kinds
        records = self.reader().records(
            text=filters.q, errors_only=filters.errors, on_problem=_ignore, **named
        )
        return encode(records, fmt)


def _ignore(_message: str) -> None:
    """Unreadable lines are skipped by the pages (the integrity page lists them)."""


def _width(span: timedelta) -> timedelta:
    for width in _WIDTHS:
        if span / width <= MAX_BUCKETS:
            return width
    return _WIDTHS[-1]


def _floor(at: datetime, width: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((at - epoch) // width) * width
