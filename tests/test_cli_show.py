"""`llmaudit show` renders every API it records from the provider-independent conversation: the
Responses API's list input and output items (text, function calls, reasoning summaries), Anthropic
content blocks (text, tool_use, tool_result, thinking), Gemini parts (text, functionCall,
functionResponse), embeddings (count and dimensions, never the vectors); a session without any cost
says ``cost -``; and every recorded string in those views stays inert."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.test_cli_output_safety import HOSTILE, _forbidden

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def responses(s: str = "") -> AuditRecord:
    return AuditRecord(
        provider="openai",
        operation="responses",
        model="o4-mini",
        request={
            "model": "o4-mini",
            "instructions": "Answer briefly." + s,
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "What is 2+2?" + s}]},
                {"type": "function_call", "call_id": "call_a", "name": "add" + s, "arguments": '{"a":2}'},
                {"type": "function_call_output", "call_id": "call_a", "output": "4" + s},
            ],
        },
        response={
            "object": "response",
            "output": [
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "The tool said 4." + s}]},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "2+2 is 4." + s, "annotations": []}],
                },
                {"type": "function_call", "call_id": "call_b", "name": "log" + s, "arguments": '{"n":4}' + s},
            ],
        },
        status_code=200,
    )


def anthropic(s: str = "") -> AuditRecord:
    return AuditRecord(
        provider="anthropic",
        operation="messages",
        model="claude-sonnet-4-20250514",
        request={
            "system": [{"type": "text", "text": "You are terse." + s}],
            "messages": [
                {"role": "user", "content": "Weather in Paris?" + s},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"c": s}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C sunny" + s}
                    ],
                },
            ],
        },
        response={
            "type": "message",
            "content": [
                {"type": "thinking", "thinking": "Warm enough." + s, "signature": "EqQB"},
                {"type": "text", "text": "18C and sunny." + s},
                {"type": "tool_use", "id": "toolu_2", "name": "remember" + s, "input": {"city": "Paris"}},
            ],
        },
        status_code=200,
    )


def gemini(s: str = "") -> AuditRecord:
    return AuditRecord(
        provider="gemini",
        operation="generate_content",
        model="gemini-2.5-flash",
        request={
            "contents": [
                {"role": "user", "parts": [{"text": "Forecast?" + s}]},
                {"role": "model", "parts": [{"functionCall": {"name": "forecast" + s, "args": {"d": 3}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "forecast", "response": {"t": s}}}]},
            ]
        },
        response={
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "Rain tomorrow." + s},
                            {"functionCall": {"name": "alert", "args": {}}},
                        ],
                    }
                }
            ]
        },
        status_code=200,
    )


def embeddings(s: str = "") -> AuditRecord:
    return AuditRecord(
        provider="openai",
        operation="embeddings",
        model="text-embedding-3-small",
        request={"model": "text-embedding-3-small", "input": ["first text" + s, "second text"]},
        response={
            "object": "list",
            "data": [{"embedding": [0.123456789] * 12, "index": i} for i in range(2)],
        },
        status_code=200,
    )


def _show(records: list[AuditRecord], tmp_path: Path, session: str = "s1") -> str:
    url = f"sqlite:///{tmp_path / 'show.db'}"
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        for i, record in enumerate(records):
            auditor.submit(
                AuditRecord(
                    **{
                        **{
                            f: getattr(record, f)
                            for f in ("provider", "operation", "model", "request", "response")
                        },
                        "status_code": record.status_code,
                        "cost_usd": record.cost_usd,
                        "session_key": session,
                        "created_at": NOW - timedelta(seconds=10 - i),
                    }
                )
            )
    result = CliRunner().invoke(cli, ["show", "-s", url, session], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()]


def test_show_renders_the_responses_api_input_items_and_output_items(tmp_path: Path) -> None:
    lines = _lines(_show([responses()], tmp_path))
    expected = [
        "system: Answer briefly.",
        "user: What is 2+2?",
        'assistant tool call: add({"a":2})',
        "tool result: [call_a] 4",
        "assistant reasoning: The tool said 4.",
        "assistant: 2+2 is 4.",
        'assistant tool call: log({"n":4})',
    ]
    start = lines.index(expected[0])
    assert lines[start : start + len(expected)] == expected


def test_show_renders_anthropic_content_blocks(tmp_path: Path) -> None:
    lines = _lines(_show([anthropic()], tmp_path))
    expected = [
        "system: You are terse.",
        "user: Weather in Paris?",
        'assistant tool call: get_weather({"c":""})',
        "tool result: [toolu_1] 18C sunny",
        "assistant reasoning: Warm enough.",
        "assistant: 18C and sunny.",
        'assistant tool call: remember({"city":"Paris"})',
    ]
    start = lines.index(expected[0])
    assert lines[start : start + len(expected)] == expected


def test_show_renders_gemini_parts(tmp_path: Path) -> None:
    lines = _lines(_show([gemini()], tmp_path))
    expected = [
        "user: Forecast?",
        'assistant tool call: forecast({"d":3})',
        'tool result: [forecast] {"t":""}',
        "assistant: Rain tomorrow.",
        "assistant tool call: alert({})",
    ]
    start = lines.index(expected[0])
    assert lines[start : start + len(expected)] == expected


def test_show_counts_embedding_vectors_and_never_prints_them(tmp_path: Path) -> None:
    output = _show([embeddings()], tmp_path)
    assert "user: first text" in output and "user: second text" in output
    assert "embeddings: 2 vectors of 12 dimensions" in output
    assert "0.123" not in output


def test_a_session_without_any_cost_says_so_instead_of_zero_dollars(tmp_path: Path) -> None:
    unpriced = _show([gemini(), embeddings()], tmp_path, "no-cost")
    header = unpriced.splitlines()[0]
    assert header.endswith("cost -") and "$0.000000" not in unpriced
    priced = AuditRecord(**{**{f: getattr(gemini(), f) for f in ("provider", "operation")}, "cost_usd": 0.0})
    free = _show([priced], tmp_path / "free", "free")
    assert free.splitlines()[0].endswith("cost $0.000000")  # a known cost of zero is still shown


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        (responses, "assistant reasoning: The tool said 4."),
        (anthropic, "assistant reasoning: Warm enough."),
        (gemini, "assistant: Rain tomorrow."),
        (embeddings, "embeddings: 2 vectors"),
    ],
)
def test_every_api_view_keeps_recorded_strings_inert(make: Any, shown: str, tmp_path: Path) -> None:
    """Escape sequences, bidi overrides, C1 controls and rich markup in every string of each API's
    JSON come out as visible escapes, never as themselves (and the view still shows the part)."""
    output = _show([make(HOSTILE)], tmp_path)
    assert shown in output
    assert not [c for c in output if _forbidden(c)]
    assert "[link=https://evil.example/]x[/link]" in output  # markup printed, not interpreted
