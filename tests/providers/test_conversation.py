"""Each provider's conversation (and the record's flat text made from it) from its API's real wire
format: request JSON as the SDKs send it, response JSON and reassembled streams as the APIs answer
(shapes from the providers' API references)."""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.providers.test_providers import exchange, sse

from llmaudit.providers import Conversation, Part, conversation, flat_text, parse

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.providers._conversation import TEXT_LIMIT_CHARS


def _flat(host: str, path: str, request: Any, body: bytes, *, stream: bool = False) -> tuple[Any, ...]:
    parsed = parse(exchange(host, path, body, request=request, stream=stream))
    return flat_text(parsed.provider, parsed.operation, request, parsed.response)


def _conversation(host: str, path: str, request: Any, body: bytes, *, stream: bool = False) -> Conversation:
    parsed = parse(exchange(host, path, body, request=request, stream=stream))
    return conversation(parsed.provider, parsed.operation, request, parsed.response)


CHAT_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
}


def test_openai_chat_messages_parts_tool_history_and_answer_become_flat_text() -> None:
    """System, multi-part user content (the image named, never its bytes), an earlier tool call and
    its result; the answer's text and its new tool call."""
    response = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "It is 18C and sunny.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_forecast", "arguments": '{"city":"Paris","days":3}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
    }
    inp, out, calls, notes = _flat(
        "api.openai.com", "/v1/chat/completions", CHAT_REQUEST, json.dumps(response).encode()
    )
    assert inp == (
        "system: You are a weather bot.\n"
        "user: Weather in Paris?\n"
        "user: [image]\n"
        'assistant: [tool call] get_weather({"city":"Paris"})\n'
        "tool: 18C, sunny"
    )
    assert out == "It is 18C and sunny."
    assert calls == ({"name": "get_forecast", "arguments": '{"city":"Paris","days":3}', "id": "call_2"},)
    assert notes == ()


def test_openai_chat_stream_tool_call_comes_from_the_reassembled_message() -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    first_call = {
        "index": 0,
        "id": "call_9",
        "type": "function",
        "function": {"name": "lookup", "arguments": ""},
    }
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Let me "}}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "look."}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [first_call]}}]},
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}}
            ],
        },
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}}
            ],
        },
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    body = sse(*[(None, c) for c in chunks]) + b"data: [DONE]\n\n"
    request = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "find x"}]}
    inp, out, calls, _ = _flat("api.openai.com", "/v1/chat/completions", request, body, stream=True)
    assert (inp, out) == ("user: find x", "Let me look.")
    assert calls == ({"name": "lookup", "arguments": '{"q":"x"}', "id": "call_9"},)


RESPONSES_REQUEST = {
    "model": "o4-mini",
    "instructions": "Answer briefly.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "What's 2+2? Check with the tool."}]},
        {"type": "function_call", "call_id": "call_a", "name": "add", "arguments": '{"a":2,"b":2}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "4"},
    ],
    "reasoning": {"summary": "auto"},
}
RESPONSES_RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "model": "o4-mini-2025-04-16",
    "output": [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "The tool said 4."}],
        },
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
    "usage": {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42},
}


def test_responses_api_list_input_and_output_items_become_flat_text() -> None:
    """Instructions and list-form input (a message, a function call and its output); output items:
    a reasoning summary (kept out of the flat text), the message text and a function call."""
    inp, out, calls, _ = _flat(
        "api.openai.com", "/v1/responses", RESPONSES_REQUEST, json.dumps(RESPONSES_RESPONSE).encode()
    )
    assert inp == (
        "system: Answer briefly.\n"
        "user: What's 2+2? Check with the tool.\n"
        'assistant: [tool call] add({"a":2,"b":2})\n'
        "tool: 4"
    )
    assert out == "2+2 is 4."
    assert calls == ({"name": "log_answer", "arguments": '{"answer":4}', "id": "call_b"},)
    found = _conversation(
        "api.openai.com", "/v1/responses", RESPONSES_REQUEST, json.dumps(RESPONSES_RESPONSE).encode()
    )
    assert found.output[0] == Part("assistant", "reasoning", "The tool said 4.")


def test_responses_api_stream_reads_the_completed_response_and_a_string_input() -> None:
    body = sse(
        ("response.created", {"type": "response.created", "response": {**RESPONSES_RESPONSE, "output": []}}),
        (
            "response.output_text.delta",
            {"type": "response.output_text.delta", "delta": "2+2 ", "output_index": 1},
        ),
        ("response.completed", {"type": "response.completed", "response": RESPONSES_RESPONSE}),
    )
    request = {"model": "o4-mini", "input": "What's 2+2?", "stream": True}
    inp, out, calls, _ = _flat("api.openai.com", "/v1/responses", request, body, stream=True)
    assert (inp, out) == ("user: What's 2+2?", "2+2 is 4.")
    assert calls is not None and calls[0]["name"] == "log_answer"


def test_a_cut_responses_stream_keeps_its_text_and_call_arguments_so_far() -> None:
    body = sse(
        ("response.created", {"type": "response.created", "response": {"id": "r", "output": []}}),
        (
            "response.output_text.delta",
            {"type": "response.output_text.delta", "delta": "Half", "output_index": 0},
        ),
        (
            "response.function_call_arguments.delta",
            {"type": "response.function_call_arguments.delta", "item_id": "fc_9", "delta": '{"x":'},
        ),
    )
    _, out, calls, _ = _flat("api.openai.com", "/v1/responses", {"input": "go"}, body, stream=True)
    assert out == "Half"
    assert calls == ({"name": None, "arguments": '{"x":', "id": "fc_9"},)


ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-20250514",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "18C"}],
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
    ],
}


def test_anthropic_content_blocks_become_flat_text() -> None:
    """System blocks, text, tool_use (input object as JSON text), tool_result, an image (named);
    the answer's thinking is kept out of the flat text, its text and tool_use are in."""
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [
            {"type": "thinking", "thinking": "It is warm.", "signature": "EqQBCgIYAhIM"},
            {"type": "text", "text": "18C in Paris."},
            {
                "type": "tool_use",
                "id": "toolu_2",
                "name": "remember",
                "input": {"fact": "18C", "city": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 100, "output_tokens": 30},
    }
    inp, out, calls, _ = _flat(
        "api.anthropic.com", "/v1/messages", ANTHROPIC_REQUEST, json.dumps(response).encode()
    )
    assert inp == (
        "system: You are terse.\n"
        "user: Weather in Paris?\n"
        "assistant: Checking.\n"
        'assistant: [tool call] get_weather({"city":"Paris"})\n'
        "tool: 18C\n"
        "user: [image]"
    )
    assert out == "18C in Paris."
    assert calls == ({"name": "remember", "arguments": '{"city":"Paris","fact":"18C"}', "id": "toolu_2"},)
    found = _conversation(
        "api.anthropic.com", "/v1/messages", ANTHROPIC_REQUEST, json.dumps(response).encode()
    )
    assert found.output[0] == Part("assistant", "reasoning", "It is warm.")


def test_anthropic_stream_tool_input_from_partial_json_is_a_tool_call() -> None:
    body = sse(
        (
            "message_start",
            {"type": "message_start", "message": {"id": "m", "role": "assistant", "content": []}},
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "On it."}},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_9", "name": "search", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"q": "pa'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": 'ris"}'},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    )
    request = {"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "search paris"}]}
    inp, out, calls, _ = _flat("api.anthropic.com", "/v1/messages", request, body, stream=True)
    assert (inp, out) == ("user: search paris", "On it.")
    assert calls == ({"name": "search", "arguments": '{"q":"paris"}', "id": "toolu_9"},)


GEMINI_REQUEST = {
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "contents": [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": "18C"}}}],
        },
    ],
}


def test_gemini_parts_text_function_call_and_response_become_flat_text() -> None:
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Thinking about it.", "thought": True},
                        {"text": "18C."},
                        {"functionCall": {"name": "save", "args": {"temp": 18}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 5, "totalTokenCount": 25},
        "modelVersion": "gemini-2.5-flash",
    }
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    inp, out, calls, _ = _flat(
        "generativelanguage.googleapis.com", path, GEMINI_REQUEST, json.dumps(response).encode()
    )
    assert inp == (
        "system: Be brief.\n"
        "user: Weather in Paris?\n"
        'assistant: [tool call] get_weather({"city":"Paris"})\n'
        'tool: {"temp":"18C"}'
    )
    assert out == "18C."
    assert calls == ({"name": "save", "arguments": '{"temp":18}', "id": None},)


def test_gemini_sse_stream_joins_the_text_of_its_chunks() -> None:
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]}
    last = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "lo"}]}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2, "totalTokenCount": 4},
    }
    body = sse((None, chunk), (None, last))
    request = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert _flat("generativelanguage.googleapis.com", path, request, body, stream=True)[:2] == (
        "user: Hi",
        "Hello",
    )


def test_embeddings_have_their_inputs_as_text_and_vectors_counted_not_kept() -> None:
    """OpenAI's base64 vectors (the SDK's default encoding) and float lists, Gemini's batch: count
    and dimensions, no output text."""
    vector = base64.b64encode(struct.pack("<8f", *range(8))).decode()
    b64 = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(2)],
    }
    request = {"model": "text-embedding-3-small", "input": ["first", "second"], "encoding_format": "base64"}
    found = _conversation("api.openai.com", "/v1/embeddings", request, json.dumps(b64).encode())
    assert found.vectors == (2, 8)
    assert _flat("api.openai.com", "/v1/embeddings", request, json.dumps(b64).encode())[:3] == (
        "user: first\nuser: second",
        None,
        None,
    )
    floats = {"data": [{"embedding": [0.1, 0.2, 0.3]}]}
    found = _conversation("api.openai.com", "/v1/embeddings", {"input": "x"}, json.dumps(floats).encode())
    assert found.vectors == (1, 3)
    gemini = {"embeddings": [{"values": [0.1] * 5}, {"values": [0.2] * 5}, {"values": [0.3] * 5}]}
    batch = {"requests": [{"content": {"parts": [{"text": t}]}} for t in ("a", "b", "c")]}
    path = "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    found = _conversation("generativelanguage.googleapis.com", path, batch, json.dumps(gemini).encode())
    assert (found.vectors, [p.text for p in found.input]) == ((3, 5), ["a", "b", "c"])


def test_cohere_v2_chat_and_ollama_chat_stream() -> None:
    cohere = {
        "id": "c1",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_plan": "I will look it up.",
            "content": [{"type": "text", "text": "Looking."}],
            "tool_calls": [
                {"id": "tc_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"x"}'}}
            ],
        },
        "usage": {"tokens": {"input_tokens": 5, "output_tokens": 3}},
    }
    request = {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "x?"}]}
    assert _flat("api.cohere.com", "/v2/chat", request, json.dumps(cohere).encode())[:3] == (
        "user: x?",
        "Looking.",
        ({"name": "lookup", "arguments": '{"q":"x"}', "id": "tc_1"},),
    )
    lines = [
        {"model": "llama3.2", "message": {"role": "assistant", "content": "Hi "}, "done": False},
        {
            "model": "llama3.2",
            "message": {
                "role": "assistant",
                "content": "there",
                "tool_calls": [{"function": {"name": "wave", "arguments": {"times": 2}}}],
            },
            "done": False,
        },
        {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 3},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    ollama = exchange(
        "localhost", "/api/chat", body, request={"messages": [{"role": "user", "content": "hello"}]}
    )
    ollama = dataclasses.replace(ollama, is_stream=True)  # NDJSON: a stream whatever its content type
    parsed = parse(ollama)
    assert flat_text(parsed.provider, parsed.operation, ollama.request, parsed.response)[:3] == (
        "user: hello",
        "Hi there",
        ({"name": "wave", "arguments": '{"times":2}', "id": None},),
    )


def test_flat_text_is_cut_at_its_limit_with_a_note() -> None:
    """A huge prompt costs no more than the limit: the text is cut there, and the record says so."""
    request = {"messages": [{"role": "user", "content": "x" * (TEXT_LIMIT_CHARS * 3)}]}
    response = {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}
    inp, out, _, notes = _flat(
        "api.openai.com", "/v1/chat/completions", request, json.dumps(response).encode()
    )
    assert inp is not None and len(inp) == TEXT_LIMIT_CHARS and inp.startswith("user: xxx")
    assert out == "ok"
    assert notes == (f"input_text cut to {TEXT_LIMIT_CHARS} characters",)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "messages",
                    "content",
                    "role",
                    "type",
                    "text",
                    "parts",
                    "input",
                    "output",
                    "choices",
                    "message",
                    "tool_calls",
                    "function",
                    "arguments",
                    "candidates",
                    "data",
                    "embedding",
                    "contents",
                    "system",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(
    where=st.sampled_from(
        [
            ("openai", "chat.completions"),
            ("openai", "responses"),
            ("openai", "embeddings"),
            ("openai", "completions"),
            ("anthropic", "messages"),
            ("gemini", "generate_content"),
            ("gemini", "embed_content"),
            ("cohere", "chat"),
            ("cohere", "embed"),
            ("ollama", "chat"),
            ("ollama", "generate"),
            ("ollama", "embed"),
            ("mistral", "chat.completions"),
        ]
    ),
    request=json_values,
    response=json_values,
)
def test_every_reader_takes_any_json_without_raising(
    where: tuple[str, str], request: Any, response: Any
) -> None:
    """Provider JSON is never trusted: any shape gives a conversation, never an exception."""
    found = conversation(*where, request, response)
    assert isinstance(found, Conversation)
    inp, out, calls, notes = flat_text(*where, request, response)
    assert not any("not read" in note for note in notes)
    assert inp is None or isinstance(inp, str)
    assert out is None or isinstance(out, str)
    assert calls is None or all(isinstance(c["arguments"], str) for c in calls)
