"""``llmaudit demo``: a small simulated application, fully offline, recorded into the chosen store.

A fake OpenAI-compatible endpoint behind ``httpx.MockTransport`` answers two users through llmaudit's
own ways in: the `AuditTransport` on the HTTP client, a `session` per user, and an `@audited`
function around each answer. One answer is streamed, one asks for a tool, one hits a rate limit. The
records are then read back from the store and printed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from ..capture.decorator import audited
from ..capture.session import session
from ..pipeline.auditor import Auditor
from ..read.reader import open as open_reader
from ..transports.httpx import AuditTransport
from ._text import plain
from ._views import console, sessions_table, stats_table

Echo = Callable[[str], None]
URL = "https://api.openai.com/v1/chat/completions"
MODEL = "gpt-4o-mini-2024-07-18"


def _completion(message: dict[str, Any], finish: str, prompt: int, completion: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": 1764000000,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _stream(text: str) -> Iterator[bytes]:
    base = {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 1764000000, "model": MODEL}
    for word in text.split(" "):
        chunk = {**base, "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
        yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
    yield (
        b"data: "
        + json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).encode()
    )
    yield b"\n\ndata: [DONE]\n\n"


def _fake_llm(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    question = body["messages"][-1]["content"]
    if "cost" in question:
        error = {
            "error": {
                "message": "Rate limit reached for gpt-4o-mini",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        }
        return httpx.Response(429, json=error)
    if body.get("stream"):
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=_stream(f"(offline) {question}")
        )
    if body.get("tools"):
        call = {
            "id": "call_demo1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"order_id": "A-17"}'},
        }
        return httpx.Response(
            200,
            json=_completion(
                {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls", 61, 18
            ),
        )
    answer = f"(offline answer) {question}"
    return httpx.Response(
        200, json=_completion({"role": "assistant", "content": answer}, "stop", 20, len(answer.split()))
    )


_TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]
_SCRIPT: list[tuple[str, str, dict[str, Any]]] = [
    ("alice", "What is an audit log?", {}),
    ("alice", "Why hash-chain it?", {"stream": True}),
    ("bob", "Where is my order A-17?", {"tools": _TOOLS}),
    ("bob", "How much did my last three questions cost?", {}),
]


def run_demo(storage_url: str, *, echo: Echo) -> None:
    """Run the simulated application against *storage_url* and print what was recorded."""
    keys = {user: f"demo-{user}-{uuid.uuid4().hex[:8]}" for user in ("alice", "bob")}
    with Auditor(storage_url) as auditor:
        transport = AuditTransport(httpx.MockTransport(_fake_llm), auditor=auditor, client="demo-support-bot")
        with httpx.Client(transport=transport) as http:

            @audited(auditor=auditor, name="demo.answer", client="demo-support-bot")
            def answer(question: str, **options: Any) -> int:
                payload = {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": question}],
                    **options,
                }
                with http.stream("POST", URL, json=payload) as response:
                    response.read()
                    return response.status_code

            for user, question, options in _SCRIPT:
                with session(keys[user], user=user, tags=["demo"]):
                    answer(question, **options)
        auditor.flush(10)
        stats = auditor.stats()
    echo(f"Recorded {stats.written} records into {storage_url}\n")
    with open_reader(storage_url) as reader:
        for user, key in keys.items():
            _print_session(list(reader.records(session=key)), user, key, echo)
        out = console()
        out.print(sessions_table(reader.sessions(limit=10)))
        out.print(stats_table(reader.stats(("client", "model")), ("client", "model")))
        functions = ("client", "operation")
        out.print(stats_table(reader.stats(functions, kind="function"), functions, functions=True))
    echo(f"\nThe log is in {storage_url} (`llmaudit path` prints it). Next, try:")
    for command in (
        f"llmaudit show {keys['bob']}",
        "llmaudit sessions",
        "llmaudit stats --by user,model",
        "llmaudit tail -n 5",
        "llmaudit verify",
        f"llmaudit export --to {keys['alice']}.jsonl --session {keys['alice']}",
    ):
        echo(f"  {command}")
    echo("\nBrowse it in a web browser (needs the ui extra: pip install 'llmaudit-sdk[ui]'):")
    echo(f"  llmaudit ui -s {storage_url} --open")


def _print_session(records: list[Any], user: str, key: str, echo: Echo) -> None:
    echo(f"session {key}  user={user}")
    echo(f"  {'source':<10} {'model / function':<24} {'status':>6} {'tokens':>6} {'ms':>7}  what")
    for r in records:
        what = _summary(r)
        name = r.model if r.source == "transport" else r.operation
        tokens = "-" if r.total_tokens is None else str(r.total_tokens)
        status = "-" if r.status_code is None else str(r.status_code)
        stream = " (streamed)" if r.is_stream else ""
        timing = f"{r.duration_ms or 0:>7.2f}"
        echo(plain(f"  {r.source:<10} {name or '-':<24} {status:>6} {tokens:>6} {timing}  {what}{stream}"))
    echo("")


def _summary(record: Any) -> str:
    if record.source == "decorator":
        return f"question={record.request['arguments']['question']!r}"
    if record.error or (record.status_code or 0) >= 400:
        body = record.response if isinstance(record.response, dict) else {}
        return f"error: {body.get('error', {}).get('message') or record.error}"
    message = record.response["choices"][0]["message"] if isinstance(record.response, dict) else {}
    if message.get("tool_calls"):
        call = message["tool_calls"][0]["function"]
        return f"tool call {call['name']}({call['arguments']})"
    return f"answer={str(message.get('content', '')).strip()!r}"
