"""The @audited decorator on an async function and on a generator: one record per call, with its
arguments, result (or the items yielded), duration and session.

    python examples/decorator.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator

import llmaudit

store = os.environ.get("LLMAUDIT_STORAGE") or f"sqlite:///{tempfile.mkdtemp()}/decorator.db"
llmaudit.configure(storage=store)


@llmaudit.audited(client="support-bot")
async def answer(question: str) -> str:
    await asyncio.sleep(0.01)  # an LLM call would go here; its HTTP record would point to this one
    return f"An answer to {question!r}"


@llmaudit.audited(client="support-bot", name="tokens")
def tokens(text: str) -> Iterator[str]:
    yield from text.split()


async def main() -> None:
    with llmaudit.session("decorator-demo", user="bob"):
        print(await answer("How are records chained?"))
        print(list(tokens("one record per generator run")))


asyncio.run(main())
llmaudit.flush()
with llmaudit.open(store) as log:
    for record in log.records(session="decorator-demo"):
        print(f"recorded {record.operation}: args={record.request} result={record.response}")
llmaudit.shutdown()
