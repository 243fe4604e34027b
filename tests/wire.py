"""Provider wire formats shared by the unit tests, the integration suites and the benchmarks: one source
of truth for the OpenAI-format chat completion, its server-sent-event stream, and the framing helpers
(SSE events, TCP-like chunking, gzip) every suite builds its provider bodies with.

Provider-specific bodies that pin one provider's quirks (Groq's ``x_groq``, Gemini's candidates, ...)
stay next to the suite of that provider; what several suites need lives here.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

CHAT_URL = "https://api.openai.com/v1/chat/completions"
CHAT_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}


def chat_completion(
    content: str = "Hi there!",
    *,
    id: str = "chatcmpl-AbC123",
    prompt_tokens: int = 9,
    completion_tokens: int = 3,
    full: bool = True,
) -> dict[str, Any]:
    """An OpenAI chat completion as api.openai.com sends it; ``full=False`` leaves out the optional
    fields (refusal, logprobs, system fingerprint)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    choice: dict[str, Any] = {"index": 0, "message": message}
    if full:
        message["refusal"] = None
        choice["logprobs"] = None
    choice["finish_reason"] = "stop"
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": 1764000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    if full:
        body["system_fingerprint"] = "fp_0ba0d124f1"
    return body


CHAT_RESPONSE = chat_completion()


def sse(*events: tuple[str | None, Any], done: bool = False, compact: bool = True) -> bytes:
    """Server-sent events exactly as the providers frame them (``compact``: JSON without spaces, as
    OpenAI sends it); ``done`` ends the stream with OpenAI's ``data: [DONE]``."""
    separators = (",", ":") if compact else (", ", ": ")
    out = b""
    for name, data in events:
        if name:
            out += f"event: {name}\n".encode()
        out += b"data: " + json.dumps(data, separators=separators).encode() + b"\n\n"
    return out + (b"data: [DONE]\n\n" if done else b"")


def chunks(data: bytes, size: int = 37) -> list[bytes]:
    """Split a body at arbitrary points, as TCP would, so framing is really exercised."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def gzipped(value: Any) -> bytes:
    return gzip.compress(json.dumps(value).encode())


def chat_chunk(delta: dict[str, object] | None, finish: str | None = None, usage: object = None) -> bytes:
    """One event of an OpenAI chat-completion stream (``delta=None``: the closing usage event)."""
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
    return sse((None, body))


SSE_CHUNKS = [
    chat_chunk({"role": "assistant", "content": "", "refusal": None}),
    chat_chunk({"content": "Hel"}),
    chat_chunk({"content": "lo"}),
    chat_chunk({"content": "!"}),
    chat_chunk({}, finish="stop"),
    b"data: [DONE]\n\n",
]

USAGE_CHUNK = chat_chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})
