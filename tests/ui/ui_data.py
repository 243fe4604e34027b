"""The data the viewer's tests browse: the offline demo (two users, a tool call, a streamed answer,
a rate-limited call, @audited parents) and a session of hostile text, recorded into any store."""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass

from llmaudit import Auditor, AuditRecord, open

# private: the CLI's and viewer's internals (demo data, rendering, queries) these tests pin
from llmaudit.cli._demo import run_demo

#: Recorded text that would run, fetch or mislead if the viewer ever treated it as HTML.
HOSTILE_PROMPT = (
    "<script>window.__pwned = 'script'</script>"
    "<img src=x onerror=\"window.__pwned = 'img'\">"
    "[click me](javascript:window.__pwned='link') <a href=\"javascript:window.__pwned='a'\">a link</a>"
    " \x1b[31mred ANSI\x1b[0m {{ 7*7 }}"
)
HOSTILE_ANSWER = (
    "<iframe src=\"javascript:window.__pwned='iframe'\"></iframe><style>body{display:none}</style>"
)
HOSTILE_SESSION = "evil-<script>x</script>"


@dataclass(frozen=True)
class Demo:
    alice: str
    bob: str
    evil: str = HOSTILE_SESSION


def hostile_record() -> AuditRecord:
    return AuditRecord(
        session_key=HOSTILE_SESSION,
        user="<b>mallory</b>",
        client="javascript:alert(1)",
        provider="openai",
        operation="chat.completions",
        model="gpt-4o-mini",
        source="transport",
        status_code=200,
        request={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": HOSTILE_PROMPT}]},
        response={
            "choices": [{"index": 0, "message": {"role": "assistant", "content": HOSTILE_ANSWER}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        },
        input_text=f"user: {HOSTILE_PROMPT}",
        output_text=HOSTILE_ANSWER,
        input_tokens=5,
        output_tokens=7,
        total_tokens=12,
        duration_ms=12.5,
    )


def populate(url: str, *, hostile: bool = True) -> Demo:
    """Record the demo (and the hostile session) into *url*; returns the demo's session keys."""
    with contextlib.redirect_stdout(io.StringIO()):
        run_demo(url, echo=lambda _line: None)
    if hostile:
        with Auditor(url, mode="sync") as auditor:
            auditor.submit(hostile_record())
    with open(url) as reader:
        keys = [s.session_key for s in reader.sessions()]
    alice = next(k for k in keys if re.match(r"demo-alice-", k))
    bob = next(k for k in keys if re.match(r"demo-bob-", k))
    return Demo(alice, bob)
