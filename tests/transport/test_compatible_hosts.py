"""What the transport records on hosts other than the providers' own, over both httpx branches: the
request's shape, the user's provider mapping (keyword and environment), prices by that mapping, and
the requests an explicitly attached transport passes through unrecorded (counted, warned once per
host), while instrument() stays silent about the process's other traffic."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.transport.conftest import Recorder
from tests.transport.server import LocalServer
from tests.wire import CHAT_REQUEST, CHAT_RESPONSE

import llmaudit

# private: the capture layer, driven directly below the public transports
from llmaudit.capture import coverage
from llmaudit.record.cost import cost_usd

MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 10, "output_tokens": 2},
}


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    """Each test sees the first warning for a host again (the memory is process-wide)."""
    # private: the warn-once set, cleared so each test sees its warning
    coverage._warned_hosts.clear()
    yield
    coverage._warned_hosts.clear()


def _respond(hx: ModuleType) -> Any:
    def handler(request: Any) -> Any:
        if request.url.path.endswith("/messages"):
            return hx.Response(200, json=MESSAGE)
        if request.url.path.endswith("/chat/completions"):
            return hx.Response(200, json=CHAT_RESPONSE)
        return hx.Response(200, json={"ok": True})

    return handler


def _client(hx: ModuleType, auditor: Any, **options: Any) -> Any:
    transport = llmaudit.AuditTransport(hx.MockTransport(_respond(hx)), auditor=auditor, **options)
    return hx.Client(transport=transport)


def _auditor(tmp_path: Path, **options: Any) -> llmaudit.Auditor:
    return llmaudit.Auditor(f"memory://{uuid.uuid4().hex}", spool_dir=str(tmp_path / "spool"), **options)


def _records(auditor: llmaudit.Auditor) -> list[llmaudit.AuditRecord]:
    assert auditor.flush(10)
    return list(auditor.storage.read(llmaudit.Query()))


@pytest.mark.parametrize(
    ("url", "headers", "expected"),
    [
        ("http://127.0.0.1:8765/chat/completions", {}, ("openai_compatible", "gpt-4o-mini-2024-07-18")),
        (
            "https://llm.corp.example/openai/chat/completions",
            {},
            ("openai_compatible", "gpt-4o-mini-2024-07-18"),
        ),
        (
            "https://llm.corp.example/v1/messages",
            {"anthropic-version": "2023-06-01"},
            ("anthropic_compatible", "claude-3-5-haiku-20241022"),
        ),
    ],
)
def test_the_three_url_shapes_that_were_dropped_are_recorded(
    hx: ModuleType, recorder: Recorder, url: str, headers: dict[str, str], expected: tuple[str, str]
) -> None:
    """No /v1, a base ending in /openai, Anthropic on another host: each is a record with its tokens,
    and nothing counts as unmatched."""
    with _client(hx, recorder.auditor) as client:
        client.post(url, json=CHAT_REQUEST, headers=headers)
    record = recorder.one()
    assert (record.provider, record.model) == expected
    assert record.operation in ("chat.completions", "messages")
    assert record.total_tokens == 12
    assert record.cost_usd is None  # the host is not known: no price without a mapping
    assert recorder.auditor.stats().unmatched == 0


def test_a_mapped_host_is_recorded_and_priced_as_its_provider(hx: ModuleType, tmp_path: Path) -> None:
    """``providers={"llm.internal/openai": "openai"}``: gpt-4o-mini on that gateway costs what it
    costs on OpenAI; a request under the prefix that names no operation is still recorded."""
    with _auditor(tmp_path, providers={"llm.internal/openai": "openai"}) as auditor:
        with _client(hx, auditor) as client:
            client.post("https://llm.internal/openai/chat/completions", json=CHAT_REQUEST)
            client.post("https://llm.internal/openai/v1/vector_stores", json={"name": "x"})
        chat, other = sorted(_records(auditor), key=lambda r: r.operation or "~")
    assert (chat.provider, chat.operation, chat.model) == (
        "openai",
        "chat.completions",
        "gpt-4o-mini-2024-07-18",
    )
    expected = cost_usd("openai", "gpt-4o-mini-2024-07-18", 9, 3, chat.created_at)
    assert expected is not None and chat.cost_usd == pytest.approx(expected)
    assert (other.provider, other.operation, other.response) == ("openai", None, {"ok": True})


def test_an_unknown_model_on_a_mapped_host_has_no_cost(hx: ModuleType, tmp_path: Path) -> None:
    """The mapping says whose prices apply, never that a model it does not list has one."""

    def handler(request: Any) -> Any:
        return hx.Response(200, json={**CHAT_RESPONSE, "model": "llama-3.1-8b-corp-finetune"})

    with _auditor(tmp_path, providers={"llm.internal": "openai"}) as auditor:
        transport = llmaudit.AuditTransport(hx.MockTransport(handler), auditor=auditor)
        with hx.Client(transport=transport) as client:
            client.post("https://llm.internal/v1/chat/completions", json=CHAT_REQUEST)
        (record,) = _records(auditor)
    assert (record.provider, record.total_tokens, record.cost_usd) == ("openai", 12, None)


def test_the_mapping_is_read_from_llmaudit_providers(
    hx: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment twin maps hosts for auditors created without the keyword."""
    monkeypatch.setenv("LLMAUDIT_PROVIDERS", "gw.corp=anthropic,llm.internal/openai=openai")
    with _auditor(tmp_path) as auditor:
        with _client(hx, auditor) as client:
            client.post("https://gw.corp/v1/messages", json={"model": "claude-3-5-haiku-20241022"})
        (record,) = _records(auditor)
    assert (record.provider, record.operation) == ("anthropic", "messages")  # no header needed: mapped
    assert record.cost_usd is not None and record.cost_usd > 0


def test_the_default_auditor_maps_before_it_exists(
    hx: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transport with no auditor of its own, before anything created the default one: the
    environment's mapping applies to its very first request."""
    monkeypatch.setenv("LLMAUDIT_PROVIDERS", "gw.corp=anthropic")
    monkeypatch.setenv("LLMAUDIT_STORAGE", f"sqlite:///{tmp_path / 'audit.db'}")
    llmaudit.shutdown()
    transport = llmaudit.AuditTransport(hx.MockTransport(_respond(hx)))
    with hx.Client(transport=transport) as client:
        client.post("https://gw.corp/v1/messages", json={"model": "claude-3-5-haiku-20241022"})
    llmaudit.flush(10)
    with llmaudit.open(f"sqlite:///{tmp_path / 'audit.db'}") as reader:
        (record,) = list(reader.records())
    assert record.provider == "anthropic"


@pytest.mark.parametrize(
    ("value", "label"),
    [({"gw.corp": "opnai"}, "providers="), ("gw.corp=claude", "LLMAUDIT_PROVIDERS=")],
)
def test_a_bad_mapping_fails_at_configure_naming_the_setting_and_the_names(
    value: Any, label: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    storage = f"memory://{uuid.uuid4().hex}"
    if label.startswith("LLMAUDIT"):
        monkeypatch.setenv("LLMAUDIT_PROVIDERS", value)
        options = {}
    else:
        options = {"providers": value}
    with pytest.raises(llmaudit.ConfigurationError) as caught:
        llmaudit.configure(storage, spool_dir=str(tmp_path), **options)
    message = str(caught.value)
    assert label in message
    assert "accepted provider names: anthropic, anthropic_compatible, azure_openai" in message
    assert "openai_compatible" in message


# -- requests an explicit transport does not record ------------------------------------------------


def test_unrecorded_requests_are_counted_and_warned_about_once_per_host(
    hx: ModuleType, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Three requests to two hosts: three counted, two warnings, each naming the fix."""
    with caplog.at_level(logging.WARNING, logger="llmaudit"), _client(hx, recorder.auditor) as client:
        client.post("https://gw.corp/v1/llm/generate", json={})
        client.post("https://gw.corp/v1/llm/generate", json={})
        client.get("http://127.0.0.1:9999/health")
    assert recorder.records() == []
    assert recorder.auditor.stats().unmatched == 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "llmaudit"]
    assert len(warnings) == 2
    assert "gw.corp" in warnings[0] and "127.0.0.1:9999" in warnings[1]
    for text in warnings:
        assert "providers=" in text and "LLMAUDIT_PROVIDERS" in text and "capture='all'" in text


@pytest.mark.asyncio
async def test_the_async_transport_counts_and_warns_too(
    hx: ModuleType, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    transport = llmaudit.AsyncAuditTransport(hx.MockTransport(_respond(hx)), auditor=recorder.auditor)
    with caplog.at_level(logging.WARNING, logger="llmaudit"):
        async with hx.AsyncClient(transport=transport) as client:
            await client.post("https://gw.corp/v1/messages", json={})  # no anthropic-version header
    assert recorder.auditor.stats().unmatched == 1
    assert [r.name for r in caplog.records] == ["llmaudit"]


def test_capture_all_records_what_llm_mode_would_count(hx: ModuleType, recorder: Recorder) -> None:
    with _client(hx, recorder.auditor, capture="all") as client:
        client.post("https://gw.corp/v1/llm/generate", json={})
    assert (recorder.one().provider, recorder.auditor.stats().unmatched) == ("unknown", 0)


def test_the_memory_of_warned_hosts_is_bounded(
    hx: ModuleType, recorder: Recorder, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the limit, new hosts are counted but neither remembered nor named (the last one named
    says so)."""
    monkeypatch.setattr(coverage, "_WARNED_HOSTS_LIMIT", 2)
    with caplog.at_level(logging.WARNING, logger="llmaudit"), _client(hx, recorder.auditor) as client:
        for n in range(6):
            client.post(f"https://host{n}.example/rpc", json={})
    warnings = [r.getMessage() for r in caplog.records if r.name == "llmaudit"]
    assert len(warnings) == 3 and "no more hosts will be named" in warnings[-1]
    # private: the warn-once set, cleared so each test sees its warning
    assert len(coverage._warned_hosts) == 3
    assert recorder.auditor.stats().unmatched == 6


def test_the_process_writer_counts_unmatched_and_keeps_the_mapping(hx: ModuleType, tmp_path: Path) -> None:
    """With writer="process" the count is kept on the caller's side and reaches stats(); the child,
    which builds the records, parses a mapped call as the caller's transport decided."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    options: dict[str, Any] = {"writer": "process", "providers": {"gw.corp": "openai"}}
    auditor = llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool"), **options)
    try:
        with _client(hx, auditor) as client:
            client.post("https://other.corp/rpc", json={})
            client.post("https://gw.corp/v1/chat/completions", json=CHAT_REQUEST)
        assert auditor.flush(60)
        assert auditor.stats().unmatched == 1
    finally:
        auditor.close()
    with llmaudit.open(url) as reader:
        (record,) = list(reader.records())
    assert (record.provider, record.operation) == ("openai", "chat.completions")
    assert record.cost_usd is not None


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as s:
        yield s


def test_instrument_neither_counts_nor_warns_about_other_traffic(
    hx: ModuleType, recorder: Recorder, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """instrument() sees every request of the process: non-LLM traffic is none of its business."""
    llmaudit.instrument(auditor=recorder.auditor)
    try:
        with caplog.at_level(logging.WARNING, logger="llmaudit"), hx.Client(base_url=server.url) as client:
            assert client.post("/api/users", json={"name": "x"}).json() == {"ok": True}
            client.post("/chat/completions", json=CHAT_REQUEST)  # and a no-/v1 LLM call is recorded
    finally:
        llmaudit.uninstrument()
    assert [r for r in caplog.records if r.name == "llmaudit"] == []
    (record,) = recorder.records()
    assert (record.provider, record.operation) == ("openai_compatible", "chat.completions")
    assert recorder.auditor.stats().unmatched == 0
