"""``llmaudit demo``: a small simulated application, fully offline, recorded into the chosen store.

A fake LLM endpoint behind ``httpx.MockTransport`` answers two users' questions; each call is recorded
with its session, user, client, tokens and latency, and the records are read back and printed. (The
drop-in transport that records such calls automatically arrives with the capture stage; until then the
demo builds the records the way that stage will.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from .._auditor import Auditor
from .._codec import dumps, loads
from .._record import AuditRecord, new_id
from ..storage import Query, open_storage

Echo = Callable[[str], None]

_QUESTIONS = [
    ("alice", "What is an audit log?"),
    ("alice", "Why hash-chain it?"),
    ("bob", "How much did my last three questions cost?"),
    ("bob", "Summarise this session."),
]


def _fake_llm(request: httpx.Request) -> httpx.Response:
    body = loads(request.content)
    question = body["messages"][-1]["content"]
    if "cost" in question:
        return httpx.Response(429, json={"error": {"message": "Rate limit reached", "type": "rate_limit"}})
    answer = f"(offline demo answer to: {question})"
    return httpx.Response(
        200,
        json={
            "id": f"chatcmpl-{new_id()[:8]}",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": len(question.split()) + 9,
                "completion_tokens": len(answer.split()),
                "total_tokens": len(question.split()) + 9 + len(answer.split()),
            },
        },
    )


def _call(http: httpx.Client, session_key: str, user: str, question: str) -> AuditRecord:
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
    started = time.perf_counter()
    response = http.post("https://api.openai.com/v1/chat/completions", content=dumps(payload))
    body: Any = response.json()
    usage = body.get("usage", {})
    return AuditRecord(
        session_key=session_key,
        user=user,
        client="demo-support-bot",
        provider="openai",
        operation="chat.completions",
        model="gpt-4o-mini",
        method="POST",
        url=str(response.url),
        request=payload,
        response=body,
        status_code=response.status_code,
        duration_ms=(time.perf_counter() - started) * 1000,
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        total_tokens=usage.get("total_tokens"),
        source="manual",
        tags=("demo",),
    )


def run_demo(storage_url: str, *, echo: Echo) -> None:
    """Record the simulated application's calls into *storage_url* and print them back."""
    sessions = {"alice": f"demo-{new_id()[-12:]}", "bob": f"demo-{new_id()[-12:]}"}
    with Auditor(storage_url) as auditor, httpx.Client(transport=httpx.MockTransport(_fake_llm)) as http:
        for user, question in _QUESTIONS:
            auditor.submit(_call(http, sessions[user], user, question))
        auditor.flush(10)
        stats = auditor.stats()
    echo(f"Recorded {stats.written} calls into {storage_url}\n")
    store = open_storage(storage_url)
    try:
        for user, key in sessions.items():
            _print_session(store.read(Query(session_key=key)), user, key, echo)
    finally:
        store.close()
    echo("Next: `llmaudit path` shows where the log lives; run the demo again to add more sessions.")


def _print_session(records: Any, user: str, key: str, echo: Echo) -> None:
    echo(f"session {key}  user={user}")
    echo(f"  {'time (UTC)':<26} {'model':<12} {'status':>6} {'tokens':>7} {'ms':>7}  question")
    for r in records:
        question = r.request["messages"][-1]["content"] if isinstance(r.request, dict) else ""
        echo(
            f"  {r.created_at:%Y-%m-%d %H:%M:%S.%f} {r.model or '-':<12} {r.status_code or '-':>6} "
            f"{'-' if r.total_tokens is None else r.total_tokens:>7} {r.duration_ms or 0:>7.2f}  {question}"
        )
    echo("")
