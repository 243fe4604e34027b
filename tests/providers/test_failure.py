"""A failed call's ``error`` says what the provider said, in each provider's real error format, and
for pages that are not JSON their title or first line; always one line, capped in length."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import llmaudit

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.providers._failure import MAX_ERROR_CHARS, describe_failure

CASES: list[tuple[str, int, Any, str]] = [
    (
        "openai",
        429,
        {
            "error": {
                "message": "Rate limit reached for gpt-4o-mini in organization org-x on tokens per min.",
                "type": "tokens",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        "HTTP 429 tokens/rate_limit_exceeded: Rate limit reached for gpt-4o-mini in organization org-x "
        "on tokens per min.",
    ),
    (
        "openai, a bad parameter",
        400,
        {
            "error": {
                "message": "Invalid type for 'messages[0].content'.",
                "type": "invalid_request_error",
                "param": "messages[0].content",
                "code": "invalid_type",
            }
        },
        "HTTP 400 invalid_request_error/invalid_type: Invalid type for 'messages[0].content'. "
        "(param messages[0].content)",
    ),
    (
        "azure openai: its code repeats the status",
        429,
        {
            "error": {
                "code": "429",
                "message": "Requests to the ChatCompletions_Create Operation have exceeded",
            }
        },
        "HTTP 429: Requests to the ChatCompletions_Create Operation have exceeded",
    ),
    (
        "anthropic",
        529,
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_1",
        },
        "HTTP 529 overloaded_error: Overloaded",
    ),
    (
        "gemini",
        429,
        {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure"}],
            }
        },
        "HTTP 429 RESOURCE_EXHAUSTED: You exceeded your current quota, please check your plan and billing "
        "details.",
    ),
    (
        "gemini, a streaming endpoint's list",
        400,
        [{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}],
        "HTTP 400 INVALID_ARGUMENT: API key not valid.",
    ),
    (
        "mistral",
        401,
        {"message": "Unauthorized", "request_id": "b0a1c2"},
        "HTTP 401: Unauthorized",
    ),
    (
        "mistral, an object error",
        400,
        {
            "object": "error",
            "message": "Invalid model: mistral-huge",
            "type": "invalid_model",
            "param": None,
            "code": "1500",
        },
        "HTTP 400 invalid_model/1500: Invalid model: mistral-huge",
    ),
    (
        "mistral, a validation error (its input, the prompt, left out)",
        422,
        {
            "object": "error",
            "message": {
                "detail": [
                    {
                        "type": "extra_forbidden",
                        "loc": ["body", "presence_penalty"],
                        "msg": "Extra inputs are not permitted",
                        "input": "the user's prompt",
                    }
                ]
            },
            "type": "invalid_request_message_error",
            "param": None,
            "code": None,
        },
        "HTTP 422 invalid_request_message_error: body.presence_penalty: Extra inputs are not permitted",
    ),
    (
        "fastapi-style validation list",
        422,
        {
            "detail": [
                {"loc": ["body", "messages", i], "msg": "Field required", "input": "x"} for i in range(5)
            ]
        },
        "HTTP 422: body.messages.0: Field required; body.messages.1: Field required; "
        "body.messages.2: Field required; and 2 more",
    ),
    (
        "cohere",
        400,
        {"id": "c6c5d1b8", "message": "invalid request: message must be at least 1 token long."},
        "HTTP 400: invalid request: message must be at least 1 token long.",
    ),
    (
        "ollama",
        404,
        {"error": 'model "llama3.2" not found, try pulling it first'},
        'HTTP 404: model "llama3.2" not found, try pulling it first',
    ),
    (
        "text-generation-inference",
        422,
        {
            "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096",
            "error_type": "validation",
        },
        "HTTP 422 validation: Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096",
    ),
    (
        "an html page: its title",
        503,
        "<!DOCTYPE html><html><head><meta charset=utf-8><TITLE>\n  503 Service\n Temporarily Unavailable "
        "</TITLE></head><body><h1>Oops</h1></body></html>",
        "HTTP 503: 503 Service Temporarily Unavailable",
    ),
    (
        "an html page without a title: its first visible text",
        502,
        "<html><head><style>h1{color:red}</style><script>var x = 1;</script></head>\n"
        "<body>\n<h1>Upstream &amp; proxy error</h1><p>details</p></body></html>",
        "HTTP 502: Upstream & proxy error",
    ),
    (
        "plain text: its first non-empty line",
        500,
        "\n\n  upstream connect error or disconnect/reset before headers  \nreset reason: overflow\n",
        "HTTP 500: upstream connect error or disconnect/reset before headers",
    ),
    ("no body: the status's phrase", 503, None, "HTTP 503 Service Unavailable"),
    ("no body, a status without a phrase", 599, None, "HTTP 599"),
    ("other json", 418, {"teapot": True}, 'HTTP 418: {"teapot":true}'),
]


@pytest.mark.parametrize(("status", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_providers_error_format_is_read(status: int, body: Any, expected: str) -> None:
    assert describe_failure(status, body) == expected


def test_the_error_is_one_line_and_capped() -> None:
    """A provider's long or multi-line message: one line, cut to `MAX_ERROR_CHARS` with an ellipsis."""
    long = {"error": {"message": "line one\nline two\t" + "x" * 5000, "type": "t" * 500}}
    error = describe_failure(400, long)
    assert "\n" not in error and "\t" not in error and len(error) <= MAX_ERROR_CHARS
    assert error.startswith("HTTP 400 ttt") and "line one line two xxx" in error and error.endswith("…")
    page = "<title>" + "y" * 5000 + "</title>"
    assert len(describe_failure(500, page)) <= MAX_ERROR_CHARS


def _server(status: int, content: bytes, content_type: str) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(status, content=content, headers={"content-type": content_type})
    )


@pytest.mark.parametrize(
    ("url", "status", "body", "content_type", "expected"),
    [
        (
            "http://127.0.0.1:11434/api/chat",
            404,
            json.dumps({"error": "model 'llama3' not found"}).encode(),
            "application/json; charset=utf-8",
            "HTTP 404: model 'llama3' not found",
        ),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent",
            429,
            json.dumps(
                {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
            ).encode(),
            "application/json; charset=UTF-8",
            "HTTP 429 RESOURCE_EXHAUSTED: Quota exceeded",
        ),
        (
            "https://api.openai.com/v1/chat/completions",
            500,
            b"<html><head><title>500 Internal Server Error</title></head><body>nginx</body></html>",
            "text/html",
            "HTTP 500: 500 Internal Server Error",
        ),
    ],
)
def test_a_recorded_failure_carries_its_reason(
    url: str, status: int, body: bytes, content_type: str, expected: str
) -> None:
    """Through the transport and the writer: the stored record's ``error``, the caller's response
    unchanged (the status and the body it was sent)."""
    with llmaudit.Auditor("memory://", mode="sync") as auditor:
        transport = llmaudit.AuditTransport(_server(status, body, content_type), auditor=auditor)
        with httpx.Client(transport=transport) as client:
            response = client.post(url, json={"model": "m", "messages": []})
        assert (response.status_code, response.content) == (status, body)
        (record,) = auditor.storage.read(llmaudit.Query())
    assert (record.status_code, record.error) == (status, expected)


def test_a_successful_call_has_no_error() -> None:
    with llmaudit.Auditor("memory://", mode="sync") as auditor:
        transport = llmaudit.AuditTransport(
            _server(200, b'{"error": {"message": "not an error"}}', "application/json"), auditor=auditor
        )
        with httpx.Client(transport=transport) as client:
            client.post("https://api.openai.com/v1/chat/completions", json={"model": "m"})
        (record,) = auditor.storage.read(llmaudit.Query())
    assert record.error is None
