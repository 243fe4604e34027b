"""The OpenAI-format answers the transport benchmarks serve (one copy for every benchmark)."""

from __future__ import annotations

import json

#: A 1 KB-class chat completion, as api.openai.com sends it.
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello! " * 20}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 250, "completion_tokens": 40, "total_tokens": 290},
    }
).encode()
