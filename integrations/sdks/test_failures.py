"""Failed calls say why: the real openai and anthropic SDKs (on httpx2) against providers answering
429 with their real JSON error bodies and 5xx with an HTML page. The SDKs raise and retry as they
always do; every attempt's record carries ``error`` with the status and what the provider said,
redacted like every other field, and ``errors_only``, ``show`` and ``tail`` show it."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from click.testing import CliRunner

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder
from llmaudit.cli import cli

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.codec import encode_record

pytestmark = pytest.mark.integration

#: OpenAI's rate-limit answer, as the API sends it (a 429 with x-ratelimit-* headers).
OPENAI_429 = {
    "error": {
        "message": (
            "Rate limit reached for gpt-4o-mini in organization org-FAKE0123 on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1. Please try again in 20s."
        ),
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
#: A key that only the provider's message holds (not the request's header): the redactor's to find.
ECHOED_KEY = "sk-proj-FAKEechoedKEY0123456789abcdefABCDEF"
OPENAI_401 = {
    "error": {
        "message": f"Incorrect API key provided: {ECHOED_KEY}. You can find your API key in your settings.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
ANTHROPIC_429 = {
    "type": "error",
    "error": {
        "type": "rate_limit_error",
        "message": (
            "This request would exceed the rate limit for your organization of 50,000 input tokens per "
            "minute. Please reduce the prompt length or the maximum tokens requested, or try again later."
        ),
    },
    "request_id": "req_011CFAKE0123456789",
}
#: What a load balancer in front of the API answers when the backend is down.
HTML_500 = (
    "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
    "<title>Error 500 (Server Error)!!1</title>\n<style>body{margin:0}</style>\n</head>\n"
    "<body><p><b>500.</b> That's an error.</p><p>There was an error. Please try again later.</p>"
    "</body>\n</html>\n"
)
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    "</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)
FAST_RETRY = {"retry-after-ms": "1"}  # the SDKs' own header: retry at once, not after seconds


def _openai_server(request: httpx2.Request) -> httpx2.Response:
    question = json.loads(request.content)["messages"][-1]["content"]
    if question == "rate limit":
        return httpx2.Response(429, json=OPENAI_429, headers=FAST_RETRY)
    if question == "bad key":
        return httpx2.Response(401, json=OPENAI_401)
    html = {"content-type": "text/html; charset=UTF-8", **FAST_RETRY}
    return httpx2.Response(500, content=HTML_500.encode(), headers=html)


def _anthropic_server(request: httpx2.Request) -> httpx2.Response:
    question = json.loads(request.content)["messages"][-1]["content"]
    if question == "rate limit":
        return httpx2.Response(429, json=ANTHROPIC_429, headers=FAST_RETRY)
    return httpx2.Response(
        502, content=HTML_502.encode(), headers={"content-type": "text/html", **FAST_RETRY}
    )


def _openai(recorder: Recorder, retries: int) -> openai.OpenAI:
    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(_openai_server), auditor=recorder.auditor
    )
    return openai.OpenAI(
        api_key=FAKE_KEY, http_client=httpx2.Client(transport=transport), max_retries=retries
    )


def _anthropic(recorder: Recorder, retries: int) -> anthropic.Anthropic:
    transport = llmaudit.transports.httpx2.AuditTransport(
        httpx2.MockTransport(_anthropic_server), auditor=recorder.auditor
    )
    return anthropic.Anthropic(
        api_key=FAKE_KEY, http_client=httpx2.Client(transport=transport), max_retries=retries
    )


def _ask_openai(recorder: Recorder, question: str, retries: int, error: type[Exception]) -> list[Any]:
    with llmaudit.session("s-openai"), pytest.raises(error):
        _openai(recorder, retries).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
    return sorted(recorder.records(), key=lambda r: r.attempt)


def _ask_anthropic(recorder: Recorder, question: str, retries: int, error: type[Exception]) -> list[Any]:
    with llmaudit.session("s-anthropic"), pytest.raises(error):
        _anthropic(recorder, retries).messages.create(
            model="claude-sonnet-4-0", max_tokens=10, messages=[{"role": "user", "content": question}]
        )
    return sorted(recorder.records(), key=lambda r: r.attempt)


def test_openai_rate_limit_says_why_on_every_attempt(recorder: Recorder) -> None:
    """429 with OpenAI's JSON body, retried twice by the SDK: three records, each with the status,
    the error's type and code and the provider's message."""
    records = _ask_openai(recorder, "rate limit", 2, openai.RateLimitError)
    assert [(r.attempt, r.status_code) for r in records] == [(0, 429), (1, 429), (2, 429)]
    message = OPENAI_429["error"]["message"]
    assert {r.error for r in records} == {f"HTTP 429 requests/rate_limit_exceeded: {message}"}
    assert all(r.response == OPENAI_429 for r in records)  # the body is kept as it was


def test_openai_html_error_page_is_named_by_its_title(recorder: Recorder) -> None:
    """500 with an HTML page, retried once: both records say ``HTTP 500`` and the page's title."""
    records = _ask_openai(recorder, "boom", 1, openai.InternalServerError)
    assert [r.attempt for r in records] == [0, 1]
    assert {r.error for r in records} == {"HTTP 500: Error 500 (Server Error)!!1"}


def test_a_key_quoted_in_the_providers_message_is_not_stored(recorder: Recorder) -> None:
    """401 whose message quotes an API key: the error says why, the key is redacted (and the
    request's own key, which the Recorder checks for, is nowhere either)."""
    (record,) = _ask_openai(recorder, "bad key", 0, openai.AuthenticationError)
    assert record.error is not None
    assert record.error.startswith(
        "HTTP 401 invalid_request_error/invalid_api_key: Incorrect API key provided: "
    )
    assert "[REDACTED" in record.error
    assert ECHOED_KEY not in encode_record(record).decode()


def test_anthropic_rate_limit_says_why_on_every_attempt(recorder: Recorder) -> None:
    """429 with Anthropic's ``{"type": "error", "error": {...}}`` body, retried once."""
    records = _ask_anthropic(recorder, "rate limit", 1, anthropic.RateLimitError)
    assert [(r.attempt, r.status_code) for r in records] == [(0, 429), (1, 429)]
    message = ANTHROPIC_429["error"]["message"]  # type: ignore[index]
    assert {r.error for r in records} == {f"HTTP 429 rate_limit_error: {message}"}


def test_anthropic_gateway_page_is_named_by_its_title(recorder: Recorder) -> None:
    """502 from the load balancer in front of the API (an HTML page), retried once."""
    records = _ask_anthropic(recorder, "hello", 1, anthropic.InternalServerError)
    assert [(r.attempt, r.status_code) for r in records] == [(0, 502), (1, 502)]
    assert {r.error for r in records} == {"HTTP 502: 502 Bad Gateway"}


def test_errors_only_and_the_command_line_show_why(recorder: Recorder) -> None:
    """``errors_only`` finds the failed calls with their reason; ``show``, ``tail`` and ``sessions``
    print it."""
    _ask_openai(recorder, "rate limit", 0, openai.RateLimitError)
    url = recorder.auditor.storage.url
    with llmaudit.open(url) as reader:
        (failed,) = reader.records(errors_only=True)
    assert failed.error is not None and failed.error.startswith("HTTP 429 requests/rate_limit_exceeded")
    runner = CliRunner()
    shown = runner.invoke(cli, ["show", "-s", url, "s-openai"])
    assert shown.exit_code == 0 and "error: HTTP 429 requests/rate_limit_exceeded: Rate limit" in shown.output
    tail = runner.invoke(cli, ["tail", "-s", url])
    assert tail.exit_code == 0 and "HTTP 429 requests/rate_limit_exceeded: Rate limit" in tail.output
    sessions = runner.invoke(cli, ["sessions", "-s", url])
    assert sessions.exit_code == 0 and "HTTP 429 requests/rate_limit_exceeded" in sessions.output
