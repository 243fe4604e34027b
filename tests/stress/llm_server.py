"""A local OpenAI-compatible server for the load and crash tests: uvicorn on 127.0.0.1, real HTTP.

    python -m tests.stress.llm_server [--chunk-delay-ms 5]

It binds port 0, prints ``PORT <n>`` on stdout once it accepts connections, and answers
``POST /v1/chat/completions`` in the OpenAI wire format: a JSON completion, or server-sent events
when the request asks to stream (with a usage chunk when ``stream_options.include_usage`` is set).
The answer echoes the last user message, so a test can check that each record holds its own call.
Run in its own process so that its CPU does not count against the audited client's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

MODEL = "gpt-4o-mini-2024-07-18"
CREATED = 1764000000


def _chunk(call_id: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": call_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _usage_chunk(call_id: str, prompt: int, completion: int) -> bytes:
    body = {
        "id": call_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class App:
    """A bare ASGI app: no framework between uvicorn and the bytes on the wire."""

    def __init__(self, chunk_delay_s: float) -> None:
        self.chunk_delay_s = chunk_delay_s
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # the client went away (killed by a crash test)
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            await _send(send, 404, b'{"error": {"message": "not found", "type": "invalid_request_error"}}')
            return
        self.calls += 1
        try:
            request = json.loads(body)
        except ValueError:
            await _send(send, 400, b'{"error": {"message": "bad JSON", "type": "invalid_request_error"}}')
            return
        question = request["messages"][-1]["content"]
        words = f"echo: {question}".split(" ")
        call_id = f"chatcmpl-{self.calls}"
        prompt, completion = len(question.split(" ")), len(words)
        if not request.get("stream"):
            answer = {
                "id": call_id,
                "object": "chat.completion",
                "created": CREATED,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": 0},
            }
            answer["usage"]["total_tokens"] = prompt + completion
            await _send(send, 200, json.dumps(answer).encode())
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )
        async for chunk in self._events(call_id, words, request, prompt, completion):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _events(
        self, call_id: str, words: list[str], request: dict[str, Any], prompt: int, completion: int
    ) -> AsyncIterator[bytes]:
        yield _chunk(call_id, {"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            await asyncio.sleep(self.chunk_delay_s)
            yield _chunk(call_id, {"content": word if i == 0 else " " + word})
        yield _chunk(call_id, {}, "stop")
        if (request.get("stream_options") or {}).get("include_usage"):
            yield _usage_chunk(call_id, prompt, completion)
        yield b"data: [DONE]\n\n"


async def _send(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunk-delay-ms", type=float, default=5.0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        App(args.chunk_delay_ms / 1000),
        log_level="warning",
        access_log=False,
        lifespan="on",
        backlog=4096,
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        await task

    asyncio.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
