"""How the command line shows records to people: rich tables and a conversation view.

Every recorded value goes through `_text.shown` / `_text.plain`: rich `Text` (never markup) with
control characters made visible. Programs use ``--json`` instead (one JSON object per line, through
`_text.json_line`), which never goes through this module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._record import AuditRecord
from .._summary import SessionSummary, StatsRow
from ._text import plain, shown

__all__ = [
    "console",
    "last_errors_lines",
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


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.6f}"


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


def _content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list of content blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                text = block.get("text")
                parts.append(text if isinstance(text, str) else f"[{block.get('type', 'part')}]")
            else:
                parts.append(str(block))
        return "\n".join(parts)
    return json.dumps(content, ensure_ascii=False)


def _request_messages(request: Any) -> list[tuple[str, str]]:
    if not isinstance(request, dict):
        return []
    out: list[tuple[str, str]] = []
    if isinstance(request.get("system"), (str, list)):
        out.append(("system", _content_text(request["system"])))
    for message in request.get("messages") or request.get("contents") or ():
        if isinstance(message, dict):
            role = str(message.get("role", "user"))
            content = message.get("content", message.get("parts"))
            out.append((role, _content_text(content)))
    if isinstance(request.get("input"), str):
        out.append(("user", request["input"]))
    if isinstance(request.get("prompt"), str):
        out.append(("user", request["prompt"]))
    return out


def _response_parts(response: Any) -> tuple[list[str], list[str]]:
    """(answer texts, tool calls) from an OpenAI, Anthropic, Gemini, Cohere or Ollama response."""
    texts: list[str] = []
    calls: list[str] = []
    if not isinstance(response, dict):
        return ([str(response)] if response else []), calls
    for choice in response.get("choices") or ():
        message = choice.get("message") or {} if isinstance(choice, dict) else {}
        if message.get("content"):
            texts.append(_content_text(message["content"]))
        if isinstance(choice, dict) and isinstance(choice.get("text"), str):
            texts.append(choice["text"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            calls.append(f"{function.get('name')}({function.get('arguments', '')})")
    for block in response.get("content") or () if isinstance(response.get("content"), list) else ():
        if isinstance(block, dict) and block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") == "tool_use":
            calls.append(f"{block.get('name')}({json.dumps(block.get('input'), ensure_ascii=False)})")
    if isinstance(response.get("output_text"), str):
        texts.append(response["output_text"])
    message = response.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), (str, list)):
        texts.append(_content_text(message["content"]))
    return texts, calls


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
            for role, text in _request_messages(r.request):
                out.print(Text.assemble(shown(f"  {role}: ", style="cyan"), shown(text, multiline=True)))
            texts, calls = _response_parts(r.response)
            for text in texts:
                out.print(Text("  assistant: ", style="green").append_text(shown(text, multiline=True)))
            for call in calls:
                out.print(Text("  tool call: ", style="magenta").append_text(shown(call, multiline=True)))
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
