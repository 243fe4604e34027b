"""How the command line shows records to people: rich tables and a conversation view.

Every recorded value goes through `_text.shown` / `_text.plain`: rich `Text` (never markup) with
control characters made visible. Programs use ``--json`` instead (one JSON object per line, through
`_text.json_line`), which never goes through this module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import providers
from ..providers import Conversation, Part
from ..read.summary import SessionSummary, StatsRow
from ..record.model import AuditRecord
from ._text import plain, shown

__all__ = [
    "console",
    "last_errors_lines",
    "money",
    "render_conversation",
    "render_record_line",
    "sessions_table",
    "stats_table",
    "uncounted_note",
]


def console(err: bool = False) -> Console:
    """A console on the current stdout or stderr (looked up at call time, so CliRunner captures it)."""
    stream = sys.stderr if err else sys.stdout
    return Console(file=stream, soft_wrap=True, highlight=False, width=None if stream.isatty() else 160)


def money(value: float | None) -> str:
    """A cost in dollars, ``-`` when there is none (never ``$0.000000`` for an unknown cost)."""
    return "-" if value is None else f"${value:,.6f}"


_money = money


def _int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2g}" if value < 1 else f"{value:.1f}"


#: How much of a record's error a one-line view shows.
_SHORT_ERROR_CHARS = 160


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= _SHORT_ERROR_CHARS:
        return text
    return text[: _SHORT_ERROR_CHARS - 1] + "…"


def sessions_table(rows: Sequence[SessionSummary]) -> Table:
    """Sessions: their LLM calls and what those cost, their ``@audited`` function records apart
    (and their aggregation records, when any has one)."""
    table = Table(title=f"{len(rows)} sessions", title_justify="left")
    aggregations = any(s.aggregations for s in rows)
    for name, justify in [
        ("session", "left"),
        ("user", "left"),
        ("first (UTC)", "left"),
        ("last (UTC)", "left"),
        ("calls", "right"),
        ("functions", "right"),
        *([("aggregations", "right")] if aggregations else []),
        ("in tokens", "right"),
        ("out tokens", "right"),
        ("cost", "right"),
        ("errors", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in rows:
        table.add_row(
            shown(s.session_key),
            shown(s.user),
            f"{s.first:%Y-%m-%d %H:%M:%S}",
            f"{s.last:%Y-%m-%d %H:%M:%S}",
            _int(s.calls),
            _int(s.functions),
            *([_int(s.aggregations)] if aggregations else []),
            _int(s.input_tokens),
            _int(s.output_tokens),
            _money(s.cost_usd),
            Text(str(s.errors), style="red" if s.errors else ""),
        )
    return table


def last_errors_lines(last_errors: Mapping[str, str]) -> list[Text]:
    """Under the sessions table, one line per session with a failed call: why its latest one failed."""
    return [
        Text.assemble("last error of ", shown(key), ": ", shown(_short(error), style="red"))
        for key, error in last_errors.items()
    ]


def stats_table(rows: Sequence[StatsRow], by: Sequence[str], *, functions: bool = False) -> Table:
    """`Reader.stats` rows: of LLM calls, or (*functions*) of ``@audited`` function records, which
    have no tokens or cost of their own."""
    what = "@audited functions" if functions else "stats"
    table = Table(title=f"{what} by {', '.join(by) or 'everything'}", title_justify="left")
    for name in by:
        table.add_column(name)
    money = () if functions else ("in tokens", "out tokens", "cost")
    for name in ("functions" if functions else "calls", *money, "p50 ms", "p95 ms", "error rate"):
        table.add_column(name, justify="right")
    for r in rows:
        usage = () if functions else (_int(r.input_tokens), _int(r.output_tokens), _money(r.cost_usd))
        table.add_row(
            *[shown(r.group[name]) for name in by],
            _int(r.functions if functions else r.calls),
            *usage,
            _ms(r.p50_ms),
            _ms(r.p95_ms),
            f"{r.error_rate:.1%}",
        )
    return table


def uncounted_note(functions: int, aggregations: int) -> str | None:
    """The line under a table of calls that says which records it did not count, or None."""
    parts = []
    if functions:
        parts.append(
            f"{functions:,} @audited function record{'s' if functions != 1 else ''} (stats --functions)"
        )
    if aggregations:
        parts.append(f"{aggregations:,} aggregation record{'s' if aggregations != 1 else ''}")
    return f"not counted as calls: {' and '.join(parts)}" if parts else None


def render_record_line(r: AuditRecord) -> str:
    """One line per record, for ``tail``."""
    status = "-" if r.status_code is None else str(r.status_code)
    what = plain(r.model or r.operation or r.url)
    flags = "".join(
        [
            " stream" if r.is_stream else "",
            " INCOMPLETE" if r.incomplete else "",
            f" ERROR {plain(_short(r.error))}" if r.error else "",
        ]
    )
    return (
        f"{r.created_at:%Y-%m-%d %H:%M:%S} {plain(r.source):<10} {plain(r.client):<18} {what:<28} "
        f"{status:>4} {_int(r.total_tokens):>7} tok {_money(r.cost_usd):>11} {_ms(r.duration_ms):>6} ms  "
        f"{plain(r.session_key)}{flags}"
    )


#: How each kind of part is labelled and styled; "{role}" is the part's role.
_LABELS = {
    "text": ("{role}: ", "cyan"),
    "tool_call": ("{role} tool call: ", "magenta"),
    "tool_result": ("tool result: ", "magenta"),
    "reasoning": ("{role} reasoning: ", "dim"),
    "media": ("{role}: ", "cyan"),
}


def _part_line(part: Part, answer: bool) -> Text:
    label, style = _LABELS.get(part.kind, ("{role}: ", "cyan"))
    if answer and part.kind == "text":
        style = "green"
    line = Text("  ").append_text(shown(label.format(role=part.role), style=style))
    if part.kind == "tool_call":
        return line.append_text(shown(f"{part.name or '?'}({part.text})", multiline=True))
    if part.kind == "tool_result" and (part.name or part.call_id):
        line.append_text(shown(f"[{part.name or part.call_id}] ", style="dim"))
    if part.kind == "media":
        return line.append_text(shown(f"[{part.text}]", style="dim"))
    return line.append_text(
        shown(part.text, multiline=True, style="italic" if part.kind == "reasoning" else "")
    )


def _read(r: AuditRecord) -> Conversation:
    return providers.record_conversation(r.provider, r.operation, r.request, r.response)


def _conversation_lines(r: AuditRecord) -> list[Text]:
    """The record's conversation as its provider reads it (`providers.conversation`): the input,
    the answer, tool calls and results, reasoning, vectors counted; a record no provider reads (or
    whose payloads were erased) shows its stored flat text instead."""
    found = _read(r)
    lines = [_part_line(p, False) for p in found.input] + [_part_line(p, True) for p in found.output]
    if found.vectors is not None:
        count, dimensions = found.vectors
        size = "?" if dimensions is None else f"{dimensions:,}"
        lines.append(Text(f"  embeddings: {count:,} vectors of {size} dimensions", style="green"))
    if lines:
        return lines
    for label, value, style in (("input", r.input_text, "cyan"), ("output", r.output_text, "green")):
        if value is not None:
            lines.append(
                Text("  ")
                .append_text(shown(f"{label}: ", style=style))
                .append_text(shown(value, multiline=True))
            )
    for call in r.tool_calls or ():
        text = f"{call.get('name') or '?'}({call.get('arguments', '')})" if isinstance(call, dict) else call
        lines.append(Text("  tool call: ", style="magenta").append_text(shown(text, multiline=True)))
    return lines


def render_conversation(records: Iterable[AuditRecord], out: Console) -> int:
    """Print each record as a turn: who asked what, the answer, tool calls, usage and cost."""
    count = 0
    for r in records:
        count += 1
        head = Text(f"{r.created_at:%Y-%m-%d %H:%M:%S.%f}"[:-3] + "  ", style="bold")
        head.append_text(shown(r.source)).append("  ")
        head.append_text(shown(r.client)).append(" · ").append_text(shown(r.model or r.operation))
        head.append(f"  status {r.status_code if r.status_code is not None else '-'}")
        head.append(f"  {_ms(r.duration_ms)} ms")
        out.print(head)
        ids = Text.assemble(
            "  id ", shown(r.id), "  session ", shown(r.session_key), "  user ", shown(r.user)
        )
        out.print(ids, style="dim")
        if r.source == "decorator":
            out.print(Text("  call ").append_text(shown(json.dumps(r.request, ensure_ascii=False))))
            out.print(Text("  returned ").append_text(shown(json.dumps(r.response, ensure_ascii=False))))
        else:
            for line in _conversation_lines(r):
                out.print(line)
        if r.error:
            out.print(Text("  error: ", style="red").append_text(shown(r.error, multiline=True, style="red")))
        elif (r.status_code or 0) >= 400:
            body = json.dumps(r.response, ensure_ascii=False)[:300]
            out.print(Text(f"  HTTP {r.status_code}: ", style="red").append_text(shown(body, style="red")))
        usage = f"  tokens in {_int(r.input_tokens)} out {_int(r.output_tokens)}  cost {_money(r.cost_usd)}"
        if r.is_stream:
            usage += f"  streamed (first token {_ms(r.ttft_ms)} ms){' INCOMPLETE' if r.incomplete else ''}"
        out.print(Text(usage, style="dim"))
        out.print()
    return count
