"""FastAPI: the ASGI middleware binds each request's session key (X-Session-Key header) so every LLM
call made while handling it carries it. Run with the app's test client, offline.

    python examples/fastapi_app.py
"""

from __future__ import annotations

import os
import tempfile

import httpx2
from _fake_openai import handler
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai import AsyncOpenAI

import llmaudit
from llmaudit.web.asgi import SessionMiddleware

store = os.environ.get("LLMAUDIT_STORAGE") or f"sqlite:///{tempfile.mkdtemp()}/fastapi.db"
llmaudit.configure(storage=store)
llm = AsyncOpenAI(
    api_key="sk-example-FAKE",
    http_client=httpx2.AsyncClient(transport=llmaudit.AsyncAuditTransport(httpx2.MockTransport(handler))),
)

app = FastAPI()
app.add_middleware(SessionMiddleware)


@app.get("/ask")
async def ask(q: str) -> dict[str, str]:
    reply = await llm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": q}])
    return {"answer": reply.choices[0].message.content or ""}


with TestClient(app) as http:
    for key, question in [("web-session-1", "hello"), ("web-session-2", "bonjour")]:
        print(http.get("/ask", params={"q": question}, headers={"X-Session-Key": key}).json())

llmaudit.flush()
with llmaudit.open(store) as log:
    for summary in log.sessions():
        print(f"session {summary.session_key}: {summary.calls} call(s), {summary.input_tokens} input tokens")
llmaudit.shutdown()
