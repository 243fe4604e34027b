"""The conversation's flat text (``input_text``, ``output_text``, ``tool_calls``) from the real openai
(chat and Responses API), anthropic and google-genai SDKs on httpx2, stored and read back with the
same values on every backend; a fake key planted in a prompt never reaches them; the chain verifies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from anthropic import Anthropic
from google import genai
from google.genai import types
from openai import OpenAI
from tests.conftest import backends, mariadb_url, pg_url, store_url_for

import llmaudit
from integrations.sdks.conftest import FAKE_KEY
from llmaudit import Auditor, AuditRecord

pytestmark = pytest.mark.integration

__all__ = ["mariadb_url", "pg_url"]  # fixtures, imported to be found

#: A credential a user pasted into a prompt: the redactor must take it out of the flat text too.
PLANTED = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "It is 18C in Paris.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_forecast", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
}
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1741569952,
    "status": "completed",
    "model": "o4-mini-2025-04-16",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Adding."}]},
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "2+2 is 4.", "annotations": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "call_id": "call_b",
            "name": "log_answer",
            "arguments": '{"answer":4}',
            "status": "completed",
        },
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42},
}
MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-20250514",
    "content": [
        {"type": "thinking", "thinking": "Warm.", "signature": "EqQBCgIYAhIM"},
        {"type": "text", "text": "18C."},
        {"type": "tool_use", "id": "toolu_2", "name": "remember", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 100, "output_tokens": 30},
}
GEMINI = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"text": "18C."}, {"functionCall": {"name": "save", "args": {"temp": 18}}}],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 4, "totalTokenCount": 9},
    "modelVersion": "gemini-2.5-flash",
}


def respond(request: httpx2.Request) -> httpx2.Response:
    path = request.url.path
    body = CHAT if path.endswith("/chat/completions") else RESPONSE if path.endswith("/responses") else None
    if body is None:
        body = MESSAGE if path.endswith("/messages") else GEMINI
    return httpx2.Response(200, json=body)


def _transport(auditor: Auditor) -> httpx2.Client:
    return httpx2.Client(
        transport=llmaudit.transports.httpx2.AuditTransport(httpx2.MockTransport(respond), auditor=auditor)
    )


def openai_chat(auditor: Auditor) -> None:
    OpenAI(api_key=FAKE_KEY, http_client=_transport(auditor)).chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": f"Weather in Paris? my key is {PLANTED}"},
        ],
        tools=[{"type": "function", "function": {"name": "get_forecast", "parameters": {}}}],
    )


def openai_responses(auditor: Auditor) -> None:
    result = OpenAI(api_key=FAKE_KEY, http_client=_transport(auditor)).responses.create(
        model="o4-mini",
        instructions="Answer briefly.",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": f"2+2? key {PLANTED}"}]},
            {"type": "function_call", "call_id": "call_a", "name": "add", "arguments": '{"a":2}'},
            {"type": "function_call_output", "call_id": "call_a", "output": "4"},
        ],
    )
    assert result.output_text == "2+2 is 4."  # the caller gets the SDK's answer, untouched


def anthropic_messages(auditor: Auditor) -> None:
    Anthropic(api_key=FAKE_KEY, http_client=_transport(auditor)).messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        system="You are terse.",
        messages=[
            {"role": "user", "content": f"Weather? {PLANTED}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"c": "P"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}],
            },
        ],
    )


def gemini_generate(auditor: Auditor) -> None:
    client = genai.Client(api_key=FAKE_KEY, http_options=types.HttpOptions(httpx_client=_transport(auditor)))
    result = client.models.generate_content(
        model="gemini-2.5-flash",
        contents=f"Weather? {PLANTED}",
        config=types.GenerateContentConfig(system_instruction="Be brief."),
    )
    assert result.text == "18C."


MARK = "[REDACTED:openai_key]"
CASES: dict[str, tuple[Callable[[Auditor], None], tuple[Any, ...]]] = {
    "openai-chat": (
        openai_chat,
        (
            f"system: You are a weather bot.\nuser: Weather in Paris? my key is {MARK}",
            "It is 18C in Paris.",
            ({"name": "get_forecast", "arguments": '{"city":"Paris"}', "id": "call_2"},),
        ),
    ),
    "openai-responses": (
        openai_responses,
        (
            f'system: Answer briefly.\nuser: 2+2? key {MARK}\nassistant: [tool call] add({{"a":2}})\ntool: 4',
            "2+2 is 4.",
            ({"name": "log_answer", "arguments": '{"answer":4}', "id": "call_b"},),
        ),
    ),
    "anthropic": (
        anthropic_messages,
        (
            f"system: You are terse.\nuser: Weather? {MARK}\n"
            'assistant: [tool call] get_weather({"c":"P"})\ntool: 18C',
            "18C.",
            ({"name": "remember", "arguments": '{"city":"Paris"}', "id": "toolu_2"},),
        ),
    ),
    "gemini": (
        gemini_generate,
        (
            f"system: Be brief.\nuser: Weather? {MARK}",
            "18C.",
            ({"name": "save", "arguments": '{"temp":18}', "id": None},),
        ),
    ),
}


@pytest.fixture(params=backends())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url_for(request.param, request, tmp_path)


def _fields(record: AuditRecord) -> tuple[Any, ...]:
    return (record.input_text, record.output_text, record.tool_calls)


def test_every_sdk_records_its_conversation_as_flat_text_on_every_backend(
    store_url: str, tmp_path: Path
) -> None:
    auditor = Auditor(store_url, spool_dir=str(tmp_path / "spool"))
    try:
        for name, (call, _) in CASES.items():
            with llmaudit.session(name):
                call(auditor)
        assert auditor.flush(10)
        with llmaudit.open(store_url) as reader:
            got = {r.session_key: r for r in reader.records()}
            assert reader.verify().ok
    finally:
        auditor.close()
    for name, (_, expected) in CASES.items():
        record = got[name]
        assert _fields(record) == expected, name
        assert PLANTED not in json.dumps(_fields(record)), name  # nor anywhere else in the record
        assert PLANTED not in json.dumps([record.request, record.response], default=str), name


def test_streamed_calls_record_the_flat_text_of_the_reassembled_answer(tmp_path: Path) -> None:
    """openai and anthropic streams with tool calls, consumed through the SDKs as an application
    does: the flat text is the answer the caller saw, the tool calls those the SDK assembled."""
    from integrations.sdks.anthropic.test_anthropic import STREAM as ANTHROPIC_STREAM
    from integrations.sdks.openai.test_openai import TOOL_STREAM

    def streaming(request: httpx2.Request) -> httpx2.Response:
        body = TOOL_STREAM if request.url.path.endswith("/chat/completions") else ANTHROPIC_STREAM
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=iter([body]))

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        client = httpx2.Client(
            transport=llmaudit.transports.httpx2.AuditTransport(
                httpx2.MockTransport(streaming), auditor=auditor
            )
        )
        with llmaudit.session("openai"):
            calls: dict[int, list[str]] = {}
            for chunk in OpenAI(api_key=FAKE_KEY, http_client=client).chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Weather in Paris?"}],
                tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
                stream=True,
            ):
                for delta in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
                    calls.setdefault(delta.index, []).append(
                        (delta.function and delta.function.arguments) or ""
                    )
        with llmaudit.session("anthropic"):
            with Anthropic(api_key=FAKE_KEY, http_client=client).messages.stream(
                model="claude-sonnet-4-20250514",
                max_tokens=100,
                messages=[{"role": "user", "content": "Weather?"}],
            ) as stream:
                final = stream.get_final_message()
    with llmaudit.open(url) as reader:
        got = {r.session_key: r for r in reader.records()}
    openai_record, anthropic_record = got["openai"], got["anthropic"]
    assert openai_record.input_text == "user: Weather in Paris?"
    assert calls and openai_record.tool_calls is not None
    assert [c["arguments"] for c in openai_record.tool_calls] == ["".join(calls[i]) for i in sorted(calls)]
    texts = [b.text for b in final.content if b.type == "text"]
    uses = [b for b in final.content if b.type == "tool_use"]
    assert texts and uses
    assert anthropic_record.output_text == "\n".join(texts)
    assert anthropic_record.tool_calls == tuple(
        {"name": u.name, "arguments": json.dumps(u.input, separators=(",", ":"), sort_keys=True), "id": u.id}
        for u in uses
    )
