"""Honest counts, on every backend: ``calls``, tokens, cost and errors count LLM calls, each once;
``@audited`` function records and aggregation records are counted as what they are, never as calls.
The same numbers from the Python API (`Reader.sessions`, `Reader.stats`, `Reader.aggregate`) and
from the command line (``sessions``, ``stats``, ``show``, ``aggregate``, ``demo``, ``--json``)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import event

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli

# private: the backend classes, built directly to inspect or tamper with their tables and files
from llmaudit.storage.sql import SQLStorage

URL = "https://api.openai.com/v1/chat/completions"


def _openai(request: httpx.Request) -> httpx.Response:
    question = json.loads(request.content)["messages"][-1]["content"]
    if "fail" in question:
        error = {
            "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
        }
        return httpx.Response(429, json=error)
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
    }
    return httpx.Response(200, json=body)


def _record_app(url: str) -> None:
    """Session "a": two questions through an ``@audited`` function (two calls, two function records)
    and one LLM call submitted by hand (``source="manual"``); session "b": one question whose call
    fails with a 429 (one call, one function record)."""
    with llmaudit.Auditor(url, mode="sync") as auditor:
        transport = llmaudit.AuditTransport(httpx.MockTransport(_openai), auditor=auditor, client="bot")
        with httpx.Client(transport=transport) as http:

            @llmaudit.audited(auditor=auditor, name="answer", client="bot")
            def answer(question: str) -> int:
                body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
                return http.post(URL, json=body).status_code

            with llmaudit.session("a", user="alice"):
                answer("one?")
                answer("two?")
            with llmaudit.session("b", user="bob"):
                answer("fail?")
        auditor.submit(
            AuditRecord(
                session_key="a",
                user="alice",
                client="bot",
                source="manual",
                model="claude-sonnet-4-5",
                input_tokens=7,
                output_tokens=3,
                cost_usd=0.5,
                duration_ms=12.0,
            )
        )


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _json_lines(*args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _cli(*args, "--json").splitlines()]


def _by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["session_key"]: row for row in rows}


def test_sessions_and_stats_count_each_llm_call_once(storage_url: str) -> None:
    """Three calls in session "a" (two through the transport, one submitted by hand), each counted
    once; the two ``@audited`` records and the session's aggregation record counted apart, their
    tokens never added to the calls'."""
    _record_app(storage_url)
    with llmaudit.open(storage_url) as reader:
        reader.aggregate(session="a")
        sessions = {s.key: s for s in reader.sessions()}
        a, b = sessions["a"], sessions["b"]
        assert (a.calls, b.calls, a.input_tokens) == (3, 1, 207)  # before: 5 and 2
        assert (a.calls, a.functions, a.aggregations) == (3, 2, 1)
        assert (a.input_tokens, a.output_tokens, a.errors) == (207, 23, 0)
        assert (b.calls, b.functions, b.aggregations, b.errors) == (1, 1, 0, 1)
        transport = list(reader.records(session="a", source="transport"))
        assert a.cost_usd == pytest.approx(0.5 + sum(r.cost_usd or 0 for r in transport))

        rows = reader.stats(("client", "model"))
        assert {(r.group["model"], r.calls) for r in rows} == {
            ("gpt-4o-mini-2024-07-18", 2),
            ("gpt-4o-mini", 1),  # the failed call: its model from the request
            ("claude-sonnet-4-5", 1),
        }  # no "model -" row of function records
        assert all(r.functions == 0 and r.aggregations == 0 for r in rows)
        (total,) = reader.stats(())
        assert (total.calls, total.input_tokens, total.errors, total.error_rate) == (4, 207, 1, 0.25)
        (functions,) = reader.stats(("operation",), kind="function")
        assert functions.group == {"operation": "answer"}
        assert (functions.functions, functions.calls, functions.input_tokens) == (3, 0, 0)
        (everything,) = reader.stats((), include_aggregations=True)
        assert (everything.calls, everything.aggregations, everything.input_tokens) == (4, 1, 414)

        today = datetime.now(timezone.utc).date()
        day = reader.aggregate(day=today)
        assert isinstance(day.response, dict)
        assert (day.response["calls"], day.response["functions"]) == (4, 3)
        assert day.input_tokens == 207  # the session's aggregation record is not aggregated again
        assert [r.id for r in reader.records(kind="aggregation")] == [
            r.id for r in reader.records(is_aggregation=True)
        ]
        assert len(list(reader.records(kind=("call", "function")))) == 7


def test_the_command_line_gives_the_same_counts(storage_url: str) -> None:
    """``sessions``, ``stats``, ``show`` and ``aggregate``, as tables and as JSON, count what the
    Python API counts."""
    _record_app(storage_url)
    with llmaudit.open(storage_url) as reader:
        reader.aggregate(session="a")
        api = {s.key: s.to_json() for s in reader.sessions()}
        api_stats = [r.to_json() for r in reader.stats(("client", "model"))]
    cli_sessions = _by_key(_json_lines("sessions", "-s", storage_url))
    assert cli_sessions["a"]["calls"] == 3  # before: 5
    assert cli_sessions == api
    assert (cli_sessions["a"]["calls"], cli_sessions["a"]["functions"]) == (3, 2)
    assert cli_sessions["a"]["aggregations"] == 1
    assert _json_lines("stats", "-s", storage_url) == api_stats
    (functions,) = _json_lines("stats", "-s", storage_url, "--functions")
    assert (functions["group"]["operation"], functions["functions"], functions["calls"]) == ("answer", 3, 0)

    table = _cli("sessions", "-s", storage_url)
    assert "functions" in table and "aggregations" in table
    stats = _cli("stats", "-s", storage_url)
    assert "claude-sonnet-4-5" in stats and "│ -" not in stats  # no row without a model
    assert "not counted as calls: 3 @audited function records" in stats
    assert "1 aggregation record" in stats
    shown = _cli("show", "-s", storage_url, "a")
    assert shown.startswith("a: 3 calls, 2 functions, 1 aggregation, cost $")
    assert shown.count("  id ") == 6  # every record listed, each said to be what it is
    today = datetime.now(timezone.utc).date().isoformat()
    assert "4 calls, 3 function records" in _cli("aggregate", "-s", storage_url, "--day", today)


def test_the_demo_reports_its_two_calls_per_session(storage_url: str) -> None:
    """After ``llmaudit demo``: each session has 2 LLM calls (and 2 function records), ``stats``
    has no "model -" row, ``aggregate --day`` counts the 4 calls once, ``show`` counts what it lists."""
    output = _cli("demo", "-s", storage_url)
    sessions = _json_lines("sessions", "-s", storage_url)
    assert [s["calls"] for s in sessions] == [2, 2]  # before: 4 and 4
    assert "@audited functions by client, operation" in output
    assert [(s["calls"], s["functions"], s["aggregations"]) for s in sessions] == [(2, 2, 0)] * 2
    assert sum(s["input_tokens"] for s in sessions) == 81
    rows = _json_lines("stats", "-s", storage_url)
    assert sum(r["calls"] for r in rows) == 4 and all(r["group"]["model"] for r in rows)
    today = datetime.now(timezone.utc).date().isoformat()
    day = json.loads(_cli("aggregate", "-s", storage_url, "--day", today, "--json"))
    assert (day["response"]["calls"], day["response"]["functions"]) == (4, 4)
    bob = next(s["session_key"] for s in sessions if s["user"] == "bob")
    shown = _cli("show", "-s", storage_url, bob)
    assert shown.startswith(f"{bob}: 2 calls, 2 functions, cost $")
    assert shown.count("  id ") == 4


def _plans(url: str) -> list[str]:
    """SQLite's query plans of `Reader.sessions` and `Reader.stats`."""
    store = SQLStorage(url)
    statements: list[tuple[str, Any]] = []
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    event.listen(store._engine, "before_cursor_execute", lambda *a: statements.append((a[2], a[3])))
    with llmaudit.open(store) as reader:
        reader.sessions(limit=5)
        reader.stats(("client", "model"))
    summaries = [(sql, params) for sql, params in statements if "GROUP BY" in sql]
    with store._engine.connect() as conn:
        plans = [
            " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in summaries
        ]
    store.close()
    return plans


def test_sqlite_summaries_read_covering_indexes_also_in_an_older_database(tmp_path: Path) -> None:
    """The summaries tell calls from function records by ``source``: SQLite's covering indexes hold
    it (else every summary reads whole rows, payloads included), and a database made before gets
    them when it is opened, its older indexes dropped."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _record_app(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the indexes an earlier llmaudit made, without source
        for name in ("stats", "sessions"):
            conn.exec_driver_sql(f"DROP INDEX ix_llmaudit_records_{name}_by_kind")
        conn.exec_driver_sql(
            "CREATE INDEX ix_llmaudit_records_stats ON llmaudit_records (client, model, is_aggregation)"
        )
        conn.exec_driver_sql("CREATE INDEX ix_llmaudit_records_sessions ON llmaudit_records (session_key)")
    plans = _plans(url)
    with engine.connect() as conn:
        names = {ix["name"] for ix in sa.inspect(conn).get_indexes("llmaudit_records")}
    engine.dispose()
    assert {"ix_llmaudit_records_stats_by_kind", "ix_llmaudit_records_sessions_by_kind"} <= names
    assert not {"ix_llmaudit_records_stats", "ix_llmaudit_records_sessions"} & names
    assert len(plans) == 2 and all("COVERING INDEX" in plan for plan in plans), plans
