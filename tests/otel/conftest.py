"""Fixtures of the OTLP suite: receivers on 127.0.0.1, and calls recorded through the real capture path."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.otel.receiver import GrpcReceiver, HttpReceiver

import llmaudit
from llmaudit import Auditor, AuditRecord, Query

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _latest_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite asserts the latest GenAI conventions unless a test says otherwise."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def grpc_receiver() -> Iterator[GrpcReceiver]:
    with GrpcReceiver() as receiver:
        yield receiver


def json_response(body: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def sse_response(chunks: list[bytes]) -> Handler:
    """A streamed answer: the chunks arrive one by one, as from a server."""
    return lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
    )


class Calls:
    """Calls made through `AuditTransport` into a private memory store (sync mode: stored on return)."""

    def __init__(self, tmp_path: Path) -> None:
        self.url = f"memory://{uuid.uuid4().hex}"
        self.auditor = Auditor(self.url, mode="sync", spool_dir=str(tmp_path / "spool"))

    def post(self, url: str, body: Any, respond: Handler, **headers: str) -> None:
        transport = llmaudit.AuditTransport(httpx.MockTransport(respond), auditor=self.auditor)
        with httpx.Client(transport=transport) as client:
            client.post(
                url, content=json.dumps(body), headers={"content-type": "application/json", **headers}
            )

    def records(self) -> list[AuditRecord]:
        return list(self.auditor.storage.read(Query()))

    def reader(self) -> llmaudit.Reader:
        return llmaudit.open(self.url)


@pytest.fixture
def calls(tmp_path: Path) -> Iterator[Calls]:
    made = Calls(tmp_path)
    yield made
    made.auditor.close()
