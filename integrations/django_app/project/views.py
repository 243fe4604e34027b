"""A view that asks the model, through the real openai SDK on an audited httpx2 transport; the
"API" is a mock answering the way api.openai.com does (no network)."""

from __future__ import annotations

import json

import httpx2
from django.http import HttpRequest, JsonResponse
from openai import OpenAI

import llmaudit

MODEL = "gpt-4o-mini-2024-07-18"


def openai_api(request: httpx2.Request) -> httpx2.Response:
    question = json.loads(request.content)["messages"][-1]["content"]
    body = {
        "id": "chatcmpl-django1",
        "object": "chat.completion",
        "created": 1764000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"You asked: {question}", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
    return httpx2.Response(200, json=body)


LLM = OpenAI(
    api_key="sk-test-FAKE-0123456789",
    http_client=httpx2.Client(transport=llmaudit.AuditTransport(httpx2.MockTransport(openai_api))),
)


def ask(request: HttpRequest) -> JsonResponse:
    reply = LLM.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": request.GET.get("q", "hi")},
        ],
    )
    return JsonResponse({"answer": reply.choices[0].message.content})
