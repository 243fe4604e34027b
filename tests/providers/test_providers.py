"""Provider parsers over each API's real wire format: model, usage, and streams reassembled into the
provider's own non-streaming shape. Fixtures follow the providers' API references."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests import wire

from llmaudit.providers import Exchange, match, parse


def sse(*events: tuple[str | None, dict[str, Any]]) -> bytes:
    return wire.sse(*events, compact=False)


def exchange(
    host: str,
    path: str,
    body: bytes,
    *,
    request: Any = None,
    stream: bool = False,
    status: int = 200,
    query: dict[str, str] | None = None,
) -> Exchange:
    ctype = "text/event-stream" if stream else "application/json"
    return Exchange(
        "POST", host, path, query or {}, {}, request, status, {"content-type": ctype}, body, stream
    )


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("api.openai.com", "/v1/chat/completions", ("openai", "chat.completions")),
        ("api.openai.com", "/v1/responses", ("openai", "responses")),
        ("api.openai.com", "/v1/embeddings", ("openai", "embeddings")),
        ("api.openai.com", "/v1/audio/transcriptions", ("openai", "audio.transcriptions")),
        ("api.openai.com", "/v1/models", None),
        (
            "myres.openai.azure.com",
            "/openai/deployments/gpt4o/chat/completions",
            ("azure_openai", "chat.completions"),
        ),
        ("myres.openai.azure.com", "/openai/v1/responses", ("azure_openai", "responses")),
        ("api.anthropic.com", "/v1/messages", ("anthropic", "messages")),
        ("api.anthropic.com", "/v1/messages/count_tokens", ("anthropic", "messages.count_tokens")),
        (
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-flash:generateContent",
            ("gemini", "generate_content"),
        ),
        (
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            ("gemini", "generate_content"),
        ),
        (
            "us-central1-aiplatform.googleapis.com",
            "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:generateContent",
            ("gemini", "generate_content"),
        ),
        ("api.cohere.com", "/v2/chat", ("cohere", "chat")),
        ("api.mistral.ai", "/v1/chat/completions", ("mistral", "chat.completions")),
        ("api.mistral.ai", "/v1/fim/completions", ("mistral", "fim.completions")),
        ("api.groq.com", "/openai/v1/chat/completions", ("groq", "chat.completions")),
        ("openrouter.ai", "/api/v1/chat/completions", ("openrouter", "chat.completions")),
        ("api.deepseek.com", "/chat/completions", ("deepseek", "chat.completions")),
        ("localhost", "/api/chat", ("ollama", "chat")),
        ("127.0.0.1", "/v1/chat/completions", ("openai_compatible", "chat.completions")),
        ("example.com", "/v1/chat", None),
        ("example.com", "/index.html", None),
    ],
)
def test_match_table(host: str, path: str, expected: tuple[str, str] | None) -> None:
    """Each provider claims its own hosts and paths; everything else passes through."""
    found = match(host, path)
    assert (None if found is None else (found[0].name, found[1])) == expected


def test_openai_chat_stream_with_tool_calls_and_usage_is_reassembled() -> None:
    """Tool-call arguments arrive in pieces by index; the usage-only chunk closes the stream."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06"}
    chunks = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_abc",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": ""},
                            }
                        ],
                    },
                    "finish_reason": None,
                }
            ],
        },
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
                    "finish_reason": None,
                }
            ],
        },
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]},
                    "finish_reason": None,
                }
            ],
        },
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 80, "completion_tokens": 17, "total_tokens": 97}},
    ]
    body = sse(*[(None, c) for c in chunks]) + b"data: [DONE]\n\n"
    parsed = parse(exchange("api.openai.com", "/v1/chat/completions", body, stream=True))
    message = parsed.response["choices"][0]["message"]
    assert message["tool_calls"] == [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert parsed.response["choices"][0]["finish_reason"] == "tool_calls"
    assert (parsed.model, parsed.input_tokens, parsed.output_tokens, parsed.total_tokens) == (
        "gpt-4o-2024-08-06",
        80,
        17,
        97,
    )


def test_openai_responses_stream_takes_the_completed_response() -> None:
    """Responses API streams end with response.completed, whose response holds output and usage."""
    final = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi!"}]}
        ],
        "usage": {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
    }
    body = sse(
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**final, "status": "in_progress", "output": [], "usage": None},
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hi!",
            },
        ),
        ("response.completed", {"type": "response.completed", "sequence_number": 2, "response": final}),
    )
    parsed = parse(exchange("api.openai.com", "/v1/responses", body, stream=True))
    assert parsed.response == final
    assert (parsed.model, parsed.total_tokens) == ("gpt-4.1-2025-04-14", 15)


def test_openai_responses_stream_cut_short_keeps_the_text_so_far() -> None:
    """Without response.completed, the deltas that arrived are joined."""
    body = sse(
        (
            "response.created",
            {"type": "response.created", "response": {"id": "resp_2", "model": "gpt-4.1", "output": []}},
        ),
        (
            "response.output_text.delta",
            {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hel"},
        ),
        (
            "response.output_text.delta",
            {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "lo"},
        ),
    )
    parsed = parse(exchange("api.openai.com", "/v1/responses", body, stream=True))
    assert parsed.response["output_text"] == "Hello"
    assert parsed.model == "gpt-4.1"


def test_azure_model_falls_back_to_the_deployment_name() -> None:
    """Azure error bodies carry no model: the deployment in the path names it."""
    body = json.dumps({"error": {"code": "429", "message": "Rate limit"}}).encode()
    parsed = parse(
        exchange("r.openai.azure.com", "/openai/deployments/prod-gpt4o/chat/completions", body, status=429)
    )
    assert (parsed.provider, parsed.model) == ("azure_openai", "prod-gpt4o")


def test_anthropic_stream_with_text_and_tool_use_is_reassembled() -> None:
    """message_start … message_stop: text deltas joined, tool input parsed from partial JSON, usage summed."""
    body = sse(
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-20250514",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 472, "output_tokens": 2},
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"location": "San'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ' Francisco"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 89},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    )
    parsed = parse(exchange("api.anthropic.com", "/v1/messages", body, stream=True))
    assert parsed.response["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "San Francisco"}},
    ]
    assert parsed.response["stop_reason"] == "tool_use"
    assert (parsed.model, parsed.input_tokens, parsed.output_tokens, parsed.total_tokens) == (
        "claude-sonnet-4-20250514",
        472,
        89,
        561,
    )


def test_gemini_sse_stream_is_reassembled_with_usage_from_the_last_chunk() -> None:
    """streamGenerateContent?alt=sse: text joined across chunks, functionCall kept, last usage wins."""
    chunk = {
        "candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": "gemini-2.5-flash",
    }
    last = {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": " world"}, {"functionCall": {"name": "f", "args": {"x": 1}}}],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-flash",
    }
    body = sse((None, chunk), (None, last))
    parsed = parse(
        exchange(
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            body,
            stream=True,
            query={"alt": "sse"},
        )
    )
    candidate = parsed.response["candidates"][0]
    assert candidate["content"]["parts"] == [
        {"text": "Hello world"},
        {"functionCall": {"name": "f", "args": {"x": 1}}},
    ]
    assert candidate["finishReason"] == "STOP"
    assert (parsed.model, parsed.input_tokens, parsed.output_tokens, parsed.total_tokens) == (
        "gemini-2.5-flash",
        8,
        4,
        12,
    )


def test_cohere_v2_stream_is_reassembled() -> None:
    """message-start, content-delta, tool calls and message-end (finish reason and usage)."""
    body = sse(
        (
            "message-start",
            {"type": "message-start", "id": "c1", "delta": {"message": {"role": "assistant", "content": []}}},
        ),
        (
            "content-start",
            {
                "type": "content-start",
                "index": 0,
                "delta": {"message": {"content": {"type": "text", "text": ""}}},
            },
        ),
        (
            "content-delta",
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Bonjour"}}}},
        ),
        (
            "content-delta",
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " !"}}}},
        ),
        ("content-end", {"type": "content-end", "index": 0}),
        (
            "message-end",
            {
                "type": "message-end",
                "delta": {
                    "finish_reason": "COMPLETE",
                    "usage": {
                        "billed_units": {"input_tokens": 5, "output_tokens": 3},
                        "tokens": {"input_tokens": 71, "output_tokens": 3},
                    },
                },
            },
        ),
    )
    parsed = parse(
        exchange("api.cohere.com", "/v2/chat", body, stream=True, request={"model": "command-a-03-2025"})
    )
    assert parsed.response["message"]["content"] == [{"type": "text", "text": "Bonjour !"}]
    assert parsed.response["finish_reason"] == "COMPLETE"
    assert (parsed.model, parsed.input_tokens, parsed.output_tokens) == ("command-a-03-2025", 71, 3)


def test_ollama_ndjson_chat_stream_is_reassembled() -> None:
    """Each line carries a piece of the message; the last (done=true) carries the counts."""
    lines = [
        {
            "model": "llama3.2",
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "Hi"},
            "done": False,
        },
        {
            "model": "llama3.2",
            "created_at": "2026-01-01T00:00:01Z",
            "message": {"role": "assistant", "content": " there"},
            "done": False,
        },
        {
            "model": "llama3.2",
            "created_at": "2026-01-01T00:00:02Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 26,
            "eval_count": 9,
            "total_duration": 123,
        },
    ]
    body = b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"
    ex = Exchange(
        "POST",
        "localhost",
        "/api/chat",
        {},
        {},
        {"model": "llama3.2"},
        200,
        {"content-type": "application/x-ndjson"},
        body,
        True,
    )
    parsed = parse(ex)
    assert parsed.response["message"]["content"] == "Hi there"
    assert parsed.response["done_reason"] == "stop"
    assert (parsed.input_tokens, parsed.output_tokens, parsed.total_tokens) == (26, 9, 35)


def test_a_malformed_sse_line_is_noted_and_the_rest_kept() -> None:
    """A data line that is not JSON becomes a note; the good chunks still assemble."""
    base = {
        "id": "x",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}],
    }
    body = sse((None, base)) + b"data: {broken\n\n"
    parsed = parse(exchange("api.openai.com", "/v1/chat/completions", body, stream=True))
    assert parsed.response["choices"][0]["message"]["content"] == "ok"
    assert any("not a JSON object" in n for n in parsed.notes)


_HOSTS = st.sampled_from(
    [
        "api.openai.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "api.cohere.com",
        "api.mistral.ai",
        "localhost",
        "myres.openai.azure.com",
    ]
)
_PATHS = st.sampled_from(
    [
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/messages",
        "/v2/chat",
        "/api/chat",
        "/api/generate",
        "/v1beta/models/g:streamGenerateContent",
        "/openai/deployments/d/chat/completions",
    ]
)


@settings(max_examples=300)
@given(
    host=_HOSTS,
    path=_PATHS,
    body=st.binary(max_size=500) | st.text(max_size=300).map(str.encode),
    stream=st.booleans(),
    request=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)),
)
def test_parse_never_raises_on_garbage(host: str, path: str, body: bytes, stream: bool, request: Any) -> None:
    """Fuzz: whatever a server sends, parse returns a Parsed (with notes), never an exception."""
    parsed = parse(exchange(host, path, body, stream=stream, request=request))
    assert parsed.provider
