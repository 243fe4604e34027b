"""Records reach a real OTLP receiver as GenAI spans per the conventions, for every provider.

Calls go through the real capture path (`AuditTransport` over a mocked HTTP exchange in each
provider's wire format) into a local store, then `llmaudit.otel.export` sends them to a receiver on
127.0.0.1 that decodes the OTLP protobuf with the official classes.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.otel.conftest import Calls, json_response, sse_response
from tests.otel.receiver import HttpReceiver, attributes
from tests.wire import SSE_CHUNKS

import llmaudit
from llmaudit import otel

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.otel._mapping import span_id_of, trace_id_of

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "served-model-1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}
CHAT_REQUEST = {
    "model": "asked-model",
    "messages": [{"role": "user", "content": "Hi"}],
    "temperature": 0.2,
    "max_tokens": 64,
    "top_p": 0.9,
    "stop": ["END"],
    "seed": 7,
}

#: provider, URL, request, response, expected attributes
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "openai",
        "https://api.openai.com/v1/chat/completions",
        CHAT_REQUEST,
        CHAT,
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "asked-model",
            "gen_ai.response.model": "served-model-1",
            "gen_ai.response.id": "chatcmpl-1",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 64,
            "gen_ai.request.top_p": 0.9,
            "gen_ai.request.stop_sequences": ["END"],
            "gen_ai.request.seed": 7,
            "server.address": "api.openai.com",
            "server.port": 443,
        },
    ),
    (
        "openai-responses",
        "https://api.openai.com/v1/responses",
        {"model": "gpt-4.1", "input": "Hi", "instructions": "Be brief.", "max_output_tokens": 50},
        {
            "id": "resp_1",
            "object": "response",
            "status": "completed",
            "model": "gpt-4.1-2025-04-14",
            "output": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello"}],
                }
            ],
            "usage": {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6},
        },
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4.1",
            "gen_ai.response.id": "resp_1",
            "gen_ai.response.finish_reasons": ["completed"],
            "gen_ai.request.max_tokens": 50,
        },
    ),
    (
        "openai-embeddings",
        "https://api.openai.com/v1/embeddings",
        {"model": "text-embedding-3-small", "input": "Hi", "encoding_format": "float", "dimensions": 2},
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        },
        {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.encoding_formats": ["float"],
            "gen_ai.embeddings.dimension.count": 2,
        },
    ),
    (
        "azure_openai",
        "https://contoso.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
        {"messages": [{"role": "user", "content": "Hi"}]},
        CHAT,
        {
            "gen_ai.provider.name": "azure.ai.openai",
            "gen_ai.request.model": "prod-4o",
            "server.address": "contoso.openai.azure.com",
        },
    ),
    (
        "anthropic",
        "https://api.anthropic.com/v1/messages",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "temperature": 0.5,
            "top_k": 5,
            "stop_sequences": ["\n\nHuman:"],
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hi"}],
        },
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "Hello"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 3},
        },
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.response.id": "msg_01",
            "gen_ai.response.finish_reasons": ["end_turn"],
            "gen_ai.request.max_tokens": 100,
            "gen_ai.request.top_k": 5.0,
            "gen_ai.request.stop_sequences": ["\n\nHuman:"],
        },
    ),
    (
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
        {
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "generationConfig": {"temperature": 0.4, "maxOutputTokens": 32, "topP": 0.8, "candidateCount": 2},
        },
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "Hello"}]}, "finishReason": "STOP"},
                {"content": {"role": "model", "parts": [{"text": "Hey"}]}, "finishReason": "MAX_TOKENS"},
            ],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6},
            "modelVersion": "gemini-2.5-flash-001",
            "responseId": "gem-1",
        },
        {
            "gen_ai.provider.name": "gcp.gemini",
            "gen_ai.operation.name": "generate_content",
            "gen_ai.request.model": "gemini-2.5-flash",
            "gen_ai.response.model": "gemini-2.5-flash-001",
            "gen_ai.response.id": "gem-1",
            "gen_ai.response.finish_reasons": ["STOP", "MAX_TOKENS"],
            "gen_ai.request.temperature": 0.4,
            "gen_ai.request.max_tokens": 32,
            "gen_ai.request.choice.count": 2,
        },
    ),
    (
        "vertex",
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]},
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "Hello"}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6},
        },
        {"gen_ai.provider.name": "gcp.vertex_ai", "gen_ai.request.model": "gemini-2.5-pro"},
    ),
    (
        "cohere",
        "https://api.cohere.com/v2/chat",
        {"model": "command-a", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.3, "p": 0.7},
        {
            "id": "co-1",
            "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            "usage": {
                "billed_units": {"input_tokens": 3, "output_tokens": 2},
                "tokens": {"input_tokens": 3, "output_tokens": 2},
            },
        },
        {
            "gen_ai.provider.name": "cohere",
            "gen_ai.operation.name": "chat",
            "gen_ai.response.id": "co-1",
            "gen_ai.response.finish_reasons": ["COMPLETE"],
            "gen_ai.request.top_p": 0.7,
        },
    ),
    (
        "mistral",
        "https://api.mistral.ai/v1/chat/completions",
        CHAT_REQUEST,
        CHAT,
        {"gen_ai.provider.name": "mistral_ai", "gen_ai.operation.name": "chat"},
    ),
    (
        "groq",
        "https://api.groq.com/openai/v1/chat/completions",
        CHAT_REQUEST,
        CHAT,
        {"gen_ai.provider.name": "groq"},
    ),
    (
        "deepseek",
        "https://api.deepseek.com/chat/completions",
        CHAT_REQUEST,
        CHAT,
        {"gen_ai.provider.name": "deepseek"},
    ),
    ("xai", "https://api.x.ai/v1/chat/completions", CHAT_REQUEST, CHAT, {"gen_ai.provider.name": "x_ai"}),
    (
        "together",
        "https://api.together.xyz/v1/chat/completions",
        CHAT_REQUEST,
        CHAT,
        {"gen_ai.provider.name": "together"},
    ),
    (
        "openrouter",
        "https://openrouter.ai/api/v1/chat/completions",
        CHAT_REQUEST,
        CHAT,
        {"gen_ai.provider.name": "openrouter"},
    ),
    (
        "fireworks",
        "https://api.fireworks.ai/inference/v1/chat/completions",
        CHAT_REQUEST,
        CHAT,
        {"gen_ai.provider.name": "fireworks"},
    ),
    (
        "ollama",
        "http://127.0.0.1:11434/api/chat",
        {
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": False,
            "options": {"temperature": 0.1, "num_predict": 20},
        },
        {
            "model": "llama3.2",
            "created_at": "2026-12-08T00:00:00Z",
            "message": {"role": "assistant", "content": "Hello"},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 5,
            "eval_count": 2,
        },
        {
            "gen_ai.provider.name": "ollama",
            "gen_ai.request.max_tokens": 20,
            "gen_ai.request.temperature": 0.1,
            "server.address": "127.0.0.1",
            "server.port": 11434,
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "url", "request_body", "response", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_each_provider_call_is_a_client_span_with_the_conventions_attributes(
    name: str,
    url: str,
    request_body: dict[str, Any],
    response: dict[str, Any],
    expected: dict[str, Any],
    calls: Calls,
    http_receiver: HttpReceiver,
) -> None:
    """Every provider's call: CLIENT span named "{operation} {request model}", the GenAI attributes
    read from its own wire format, usage from the record, the session as the conversation id."""
    with llmaudit.session("conv-1", user="alice"):
        calls.post(url, request_body, json_response(response))
    (record,) = calls.records()
    assert record.input_tokens is not None
    with calls.reader() as reader:
        result = otel.export(reader, http_receiver.url)
    assert result.count == 1
    assert result.last_id == record.id
    (span,) = http_receiver.spans()
    got = attributes(span)
    for key, value in expected.items():
        assert got[key] == value, key
    assert span.name == f"{got['gen_ai.operation.name']} {got['gen_ai.request.model']}"
    assert span.kind == span.SPAN_KIND_CLIENT
    assert got["gen_ai.usage.input_tokens"] == record.input_tokens
    if record.output_tokens is not None:
        assert got["gen_ai.usage.output_tokens"] == record.output_tokens
    assert got["gen_ai.conversation.id"] == "conv-1"
    assert got["llmaudit.record.id"] == record.id
    assert got["llmaudit.user"] == "alice"
    assert got["llmaudit.writer_id"] == record.writer_id
    assert got["llmaudit.seq"] == record.seq
    assert got["llmaudit.hash"] == record.hash
    assert "error.type" not in got
    assert span.status.code == span.status.STATUS_CODE_UNSET
    start = int(record.created_at.timestamp() * 1e6)
    assert abs(span.start_time_unix_nano // 1000 - start) <= 1
    assert span.end_time_unix_nano - span.start_time_unix_nano == int(record.duration_ms * 1_000_000)
    assert span.span_id == span_id_of(record.id).to_bytes(8, "big")
    assert span.trace_id == trace_id_of(record.id).to_bytes(16, "big")
    assert not span.parent_span_id
    assert "gen_ai.input.messages" not in got  # content is opt-in


def test_the_span_carries_the_resource_scope_and_schema_of_the_conventions_followed(
    calls: Calls, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """service.name from OTEL_SERVICE_NAME, llmaudit as the scope, the 1.41.0 schema URL."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "support-api")
    calls.post("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, json_response(CHAT))
    with calls.reader() as reader:
        otel.export(reader, http_receiver.url)
    ((resource, scope, schema_url),) = list(http_receiver.scopes())
    assert attributes(resource)["service.name"] == "support-api"
    assert scope.name == "llmaudit"
    assert schema_url == f"https://opentelemetry.io/schemas/{otel.LATEST_SEMCONV}"


def test_without_the_opt_in_the_1_36_conventions_are_followed(
    calls: Calls, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transition plan: without gen_ai_latest_experimental, gen_ai.system (1.36.0), no content."""
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN")
    calls.post("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, json_response(CHAT))
    with calls.reader() as reader:
        otel.export(reader, http_receiver.url, content=True)
    (span,) = http_receiver.spans()
    got = attributes(span)
    assert got["gen_ai.system"] == "openai"
    assert "gen_ai.provider.name" not in got
    assert "gen_ai.input.messages" not in got
    ((_, _, schema_url),) = list(http_receiver.scopes())
    assert schema_url.endswith("/1.36.0")


def test_a_streamed_call_has_stream_and_time_to_first_chunk(
    calls: Calls, http_receiver: HttpReceiver
) -> None:
    """A reassembled stream: gen_ai.request.stream, the time to first chunk in seconds, its finish."""
    body = {**CHAT_REQUEST, "stream": True}
    calls.post("https://api.openai.com/v1/chat/completions", body, sse_response(SSE_CHUNKS))
    (record,) = calls.records()
    assert record.is_stream and record.ttft_ms is not None
    with calls.reader() as reader:
        otel.export(reader, http_receiver.url)
    got = attributes(http_receiver.spans()[0])
    assert got["gen_ai.request.stream"] is True
    assert got["gen_ai.response.time_to_first_chunk"] == pytest.approx(record.ttft_ms / 1000)
    assert got["gen_ai.response.finish_reasons"] == ["stop"]
    assert got["gen_ai.response.id"] == "chatcmpl-AbC124"
    assert got["llmaudit.is_stream"] is True


def test_a_failed_call_has_error_type_and_an_error_status(calls: Calls, http_receiver: HttpReceiver) -> None:
    """HTTP 429: error.type "429"; an exception: its class name; both with span status ERROR."""
    calls.post(
        "https://api.openai.com/v1/chat/completions",
        CHAT_REQUEST,
        json_response({"error": {"message": "Rate limit reached", "type": "requests"}}, status=429),
    )

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(httpx.ConnectError):
        calls.post("https://api.anthropic.com/v1/messages", {"model": "claude-x", "messages": []}, refuse)
    with calls.reader() as reader:
        otel.export(reader, http_receiver.url)
    spans = sorted(http_receiver.spans(), key=lambda s: s.start_time_unix_nano)
    limited, refused = (attributes(s) for s in spans)
    assert limited["error.type"] == "429"
    assert limited["http.response.status_code"] == 429
    assert refused["error.type"] == "ConnectError"
    for span in spans:
        assert span.status.code == span.status.STATUS_CODE_ERROR
        assert span.status.message


def test_audited_functions_are_internal_spans_parenting_the_calls_made_inside(
    calls: Calls, http_receiver: HttpReceiver
) -> None:
    """An @audited function: INTERNAL span; its HTTP calls are its children, in its trace."""

    @llmaudit.audited(auditor=calls.auditor)
    def answer(question: str) -> str:
        calls.post("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, json_response(CHAT))
        calls.post("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, json_response(CHAT))
        return "done"

    assert answer("why?") == "done"
    records = calls.records()
    (function,) = [r for r in records if r.source == "decorator"]
    with calls.reader() as reader:
        otel.export(reader, http_receiver.url)
    spans = http_receiver.by_record()
    parent = spans[function.id]
    assert parent.kind == parent.SPAN_KIND_INTERNAL
    assert parent.name.endswith("answer")
    children = [spans[r.id] for r in records if r.parent_id == function.id]
    assert len(children) == 2
    for child in children:
        assert child.kind == child.SPAN_KIND_CLIENT
        assert child.parent_span_id == parent.span_id
        assert child.trace_id == parent.trace_id
        assert parent.start_time_unix_nano <= child.start_time_unix_nano
        assert child.end_time_unix_nano <= parent.end_time_unix_nano


def _essence(receiver: HttpReceiver) -> list[tuple[Any, ...]]:
    return sorted(
        (
            s.trace_id,
            s.span_id,
            s.parent_span_id,
            s.name,
            s.kind,
            s.start_time_unix_nano,
            s.end_time_unix_nano,
            json.dumps(attributes(s), sort_keys=True),
        )
        for s in receiver.spans()
    )


def test_exporting_twice_sends_identical_spans(calls: Calls) -> None:
    """Ids and everything else derive from the records: a replay is the same spans (idempotent)."""

    @llmaudit.audited(auditor=calls.auditor)
    def work() -> None:
        calls.post("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, json_response(CHAT))

    work()
    calls.post("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, json_response(CHAT))
    sent = []
    for _ in range(2):
        with HttpReceiver() as receiver, calls.reader() as reader:
            otel.export(reader, receiver.url)
            sent.append(_essence(receiver))
    assert len(sent[0]) == 3
    assert sent[0] == sent[1]


FAKE_KEY = "sk-proj-" + "Q7xK2mN9pL4vR8tY1wE6uI3oA5sD0fG" + "hJkZcXbVn"


@pytest.mark.parametrize("content", [False, True])
def test_content_only_when_opted_in_and_always_redacted(
    content: bool, calls: Calls, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages travel only with the opt-in, in the conventions' structure, built from the redacted
    record: a key pasted in a prompt never reaches the collector, in any byte it receives."""
    assert len(FAKE_KEY) == 48
    if content:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": f"my key is {FAKE_KEY}, keep it"}],
    }
    answer = {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Noted."},
            {"type": "tool_use", "id": "tu_1", "name": "store", "input": {"what": "key"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 12, "output_tokens": 4},
    }
    calls.post("https://api.anthropic.com/v1/messages", body, json_response(answer))
    with calls.reader() as reader:
        otel.export(reader, http_receiver.url)
    got = attributes(http_receiver.spans()[0])
    assert all(FAKE_KEY.encode() not in raw and b"Q7xK2mN9pL4vR8tY" not in raw for raw in http_receiver.raw)
    if not content:
        assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"} & set(
            got
        )
        return
    assert json.loads(got["gen_ai.system_instructions"]) == [{"type": "text", "content": "You are terse."}]
    (message,) = json.loads(got["gen_ai.input.messages"])
    assert message["role"] == "user"
    (part,) = message["parts"]
    assert part["type"] == "text"
    assert part["content"].startswith("my key is ")
    assert "REDACTED" in part["content"]
    (output,) = json.loads(got["gen_ai.output.messages"])
    assert output["role"] == "assistant"
    assert output["finish_reason"] == "tool_call"
    assert output["parts"] == [
        {"type": "text", "content": "Noted."},
        {"type": "tool_call", "id": "tu_1", "name": "store", "arguments": {"what": "key"}},
    ]


def test_a_record_carrying_the_applications_span_becomes_its_child(
    calls: Calls, http_receiver: HttpReceiver
) -> None:
    """The correlation seam: trace and span ids carried by the record (here in its metadata)
    make the exported span a child of the application's span, in the application's trace."""
    trace, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with llmaudit.session("s", metadata={"otel.trace_id": trace, "otel.span_id": span_id}):
        calls.post("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, json_response(CHAT))
    with calls.reader() as reader:
        otel.export(reader, http_receiver.url)
    (span,) = http_receiver.spans()
    assert span.trace_id.hex() == trace
    assert span.parent_span_id.hex() == span_id


def test_long_message_text_is_cut_keeping_the_json_whole(
    calls: Calls, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A very long prompt: its part's text is cut at the flat-text limit; the attribute stays JSON."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    body = {
        **CHAT_REQUEST,
        "messages": [{"role": "user", "content": "word " * 7_000}],
    }  # under the size limit
    calls.post("https://api.openai.com/v1/chat/completions", body, json_response(CHAT))
    with calls.reader() as reader:
        otel.export(reader, http_receiver.url)
    (message,) = json.loads(attributes(http_receiver.spans()[0])["gen_ai.input.messages"])
    assert len(message["parts"][0]["content"]) == 32_000
