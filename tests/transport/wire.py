"""Small OpenAI-format responses for the transport suite (the provider suites hold the full formats)."""

from __future__ import annotations

import json

CHAT_URL = "https://api.openai.com/v1/chat/completions"
CHAT_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
CHAT_RESPONSE = {
    "id": "chatcmpl-AbC123",
    "object": "chat.completion",
    "created": 1764000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi there!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    "system_fingerprint": "fp_0ba0d124f1",
}


def _chunk(delta: dict[str, object] | None, finish: str | None = None, usage: object = None) -> bytes:
    body = {
        "id": "chatcmpl-AbC124",
        "object": "chat.completion.chunk",
        "created": 1764000001,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


SSE_CHUNKS = [
    _chunk({"role": "assistant", "content": "", "refusal": None}),
    _chunk({"content": "Hel"}),
    _chunk({"content": "lo"}),
    _chunk({"content": "!"}),
    _chunk({}, finish="stop"),
    b"data: [DONE]\n\n",
]

USAGE_CHUNK = _chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})  # type: ignore[arg-type]
