"""An offline stand-in for api.openai.com, shared by the examples: real wire format, no network.

`handler` answers chat completions (JSON, or server-sent events when the request asks to stream) the
way the OpenAI API does, so the real openai SDK parses every answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2

MODEL = "gpt-4o-mini-2024-07-18"


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-example",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else [],
    }
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _stream(text: str) -> Iterator[bytes]:
    yield _chunk({"role": "assistant", "content": ""})
    for word in text.split(" "):
        yield _chunk({"content": word + " "})
    yield _chunk({}, "stop")
    yield b"data: [DONE]\n\n"


def handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    question = body["messages"][-1]["content"]
    answer = f"(offline) You asked: {question}"
    if body.get("stream"):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=_stream(answer))
    completion = {
        "id": "chatcmpl-example",
        "object": "chat.completion",
        "created": 1764000000,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
    return httpx2.Response(200, json=completion)
