"""Provider matching beyond the official hosts: the request's shape on any host, the user's mapping of
hosts and prefixes, known gateways, and the prices a gateway's upstream says apply."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from llmaudit.providers import Exchange, Routes, match, parse, parse_routes, provider_names

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


def _found(*args: Any, **kwargs: Any) -> tuple[str, str | None] | None:
    found = match(*args, **kwargs)
    return None if found is None else (found[0].name, found[1])


@pytest.mark.parametrize(
    ("host", "path", "headers", "expected"),
    [
        # an OpenAI client on a gateway or LiteLLM-proxy-style URL without /v1
        ("127.0.0.1", "/chat/completions", {}, ("openai_compatible", "chat.completions")),
        ("127.0.0.1", "/responses", {}, ("openai_compatible", "responses")),
        ("127.0.0.1", "/embeddings/", {}, ("openai_compatible", "embeddings")),
        # a base URL ending in /openai (API Management, corporate gateways)
        ("llm.corp.example", "/openai/chat/completions", {}, ("openai_compatible", "chat.completions")),
        (
            "llm.corp.example",
            "/openai/deployments/gpt4o/chat/completions",
            {"api-key": "fake"},
            ("openai_compatible", "chat.completions"),
        ),
        # Anthropic's API anywhere: its required header tells its /messages from other APIs' ones
        ("llm.corp.example", "/v1/messages", ANTHROPIC_HEADERS, ("anthropic_compatible", "messages")),
        (
            "llm.corp.example",
            "/anthropic/v1/messages/count_tokens",
            ANTHROPIC_HEADERS,
            ("anthropic_compatible", "messages.count_tokens"),
        ),
        ("llm.corp.example", "/v1/messages", {}, None),
        ("llm.corp.example", "/v1/threads/t1/messages", {"content-type": "application/json"}, None),
        # Gemini's models/{model}:method behind any prefix
        (
            "llm.corp.example",
            "/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            {"x-goog-api-key": "fake"},
            ("gemini_compatible", "generate_content"),
        ),
        ("llm.corp.example", "/v1/projects/p:generateContent", {}, None),  # not a models/ path
        ("localhost", "/api/generate", {}, ("ollama", "generate")),
        # known gateways
        (
            "contoso.azure-api.net",
            "/openai/deployments/gpt-4o/chat/completions",
            {"api-key": "fake"},
            ("azure_openai", "chat.completions"),
        ),
        ("oai.helicone.ai", "/v1/chat/completions", {}, ("openai via oai.helicone.ai", "chat.completions")),
        (
            "gateway.ai.cloudflare.com",
            "/v1/acct/gw/anthropic/v1/messages",
            ANTHROPIC_HEADERS,
            ("cloudflare_ai_gateway", "messages"),
        ),
        # still not LLM calls
        ("example.com", "/api/users/42", {}, None),
        ("example.com", "/v1/chat", {}, None),
    ],
)
def test_requests_are_recognised_by_their_shape_on_any_host(
    host: str, path: str, headers: dict[str, str], expected: tuple[str, str] | None
) -> None:
    """The three URL shapes that used to pass unrecorded (no /v1, a /openai base, Anthropic on another
    host) are recognised, with the branch's own Headers as the transport passes them."""
    assert _found(host, path, httpx2.Headers(headers), method="POST") == expected
    assert _found(host, path, headers, method="POST") == expected  # the writer's lower-case mapping


def test_only_posts_are_matched_by_their_shape() -> None:
    """A GET that happens to end like an API path is no LLM call; on a provider's own host the host
    decides, as before."""
    assert _found("example.com", "/reports/completions", {}, method="GET") is None
    assert _found("example.com", "/reports/completions", {}, method="POST") is not None
    assert _found("api.openai.com", "/v1/files", {}, method="GET") == ("openai", "files")


def test_gateways_parse_and_price_as_the_provider_they_forward_to() -> None:
    """Cloudflare's provider segment and Helicone's proxy host name whose API (and prices) it is."""
    message = {"model": "claude-3-5-haiku-20241022", "usage": {"input_tokens": 5, "output_tokens": 2}}
    parsed = parse(
        _exchange(
            "gateway.ai.cloudflare.com", "/v1/acct/gw/anthropic/v1/messages", message, ANTHROPIC_HEADERS
        )
    )
    assert (parsed.provider, parsed.operation, parsed.input_tokens) == ("anthropic", "messages", 5)
    chat = {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    parsed = parse(_exchange("oai.helicone.ai", "/v1/chat/completions", chat))
    assert (parsed.provider, parsed.total_tokens) == ("openai", 4)


def _exchange(
    host: str,
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
) -> Exchange:
    return Exchange(
        "POST",
        host,
        path,
        {},
        headers or {},
        {"model": "from-request"},
        200,
        {"content-type": "application/json", **(response_headers or {})},
        json.dumps(body).encode(),
        False,
    )


# -- the user's mapping ----------------------------------------------------------------------------


def _routes(mapping: Any) -> Routes:
    return parse_routes(mapping, provider_names)


def test_a_mapping_names_a_host_or_prefix_and_wins_over_the_shapes() -> None:
    """The longest prefix wins, at a path segment's boundary; a key with a port wins for that port."""
    routes = _routes(
        {
            "https://LLM.internal/openai/": "openai",
            "llm.internal": "anthropic",
            "127.0.0.1:8765": "openai",
            "127.0.0.1": "ollama",
        }
    )
    assert routes.lookup("llm.internal", None, "/openai/chat/completions") == "openai"
    assert routes.lookup("llm.internal", None, "/openai") == "openai"
    assert routes.lookup("llm.internal", None, "/openai-v2/chat/completions") == "anthropic"
    assert routes.lookup("127.0.0.1", 8765, "/chat/completions") == "openai"
    assert routes.lookup("127.0.0.1", 11434, "/api/chat") == "ollama"
    assert routes.lookup("other.host", None, "/chat/completions") is None
    assert _found("llm.internal", "/openai/chat/completions", {}, method="POST", routes=routes) == (
        "openai",
        "chat.completions",
    )
    # a mapped host's request of no known operation is still recorded (as its provider's)
    assert _found("llm.internal", "/v1/models", {}, method="GET", routes=routes) == ("anthropic", None)


def test_the_environment_form_of_a_mapping_is_read_like_the_keyword() -> None:
    """``LLMAUDIT_PROVIDERS="host/prefix=provider,host=provider"``: the same `Routes`."""
    text = " llm.internal/openai=openai , gw.corp=anthropic,"
    assert _routes(text) == _routes({"llm.internal/openai": "openai", "gw.corp": "anthropic"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"gw.corp": "opnai"}, "unknown provider 'opnai' for 'gw.corp'; accepted provider names: anthropic"),
        ({"gw corp": "openai"}, "is not a host"),
        ({"gw.corp:99999": "openai"}, "no valid port"),
        ("gw.corp", "expected host[/prefix]=provider"),
        (["gw.corp"], "expected a mapping"),
        ({"gw.corp": 3}, "must be strings"),
    ],
)
def test_bad_mappings_are_refused_with_what_is_accepted(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _routes(value)


def test_the_writer_parses_a_mapped_exchange_as_the_hot_path_decided() -> None:
    """The decision the transport carries (provider, operation) is what the record says, on a host no
    built-in rule knows; without it the exchange is matched again by its shape."""
    chat = {"model": "gpt-4o-mini-2024-07-18", "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
    exchange = _exchange("llm.internal", "/openai/chat/completions", chat)
    parsed = parse(exchange, ("openai", "chat.completions"))
    assert (parsed.provider, parsed.model, parsed.input_tokens, parsed.total_tokens) == (
        "openai",
        "gpt-4o-mini-2024-07-18",
        7,
        9,
    )
    assert parse(exchange).provider == "openai_compatible"
    listing = parse(_exchange("llm.internal", "/openai/models", {"data": []}), ("openai", None))
    assert (listing.provider, listing.operation, listing.response) == ("openai", None, {"data": []})


def test_anthropic_is_rematched_on_the_writer_from_its_header() -> None:
    """A capture without the hot path's decision: the writer's headers carry ``anthropic-version``."""
    message = {"model": "claude-3-5-haiku-20241022", "usage": {"input_tokens": 4, "output_tokens": 1}}
    parsed = parse(_exchange("gw.corp", "/v1/messages", message, ANTHROPIC_HEADERS))
    assert (parsed.provider, parsed.operation, parsed.model, parsed.total_tokens) == (
        "anthropic_compatible",
        "messages",
        "claude-3-5-haiku-20241022",
        5,
    )


@pytest.mark.parametrize(
    ("upstream", "prices"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://myres.openai.azure.com/openai/deployments/gpt4o", "azure_openai"),
        ("https://api.anthropic.com", "anthropic"),
        ("http://vllm.internal:8000/v1", None),
        ("not a url", None),
    ],
)
def test_a_litellm_proxy_says_whose_prices_apply(upstream: str, prices: str | None) -> None:
    """LiteLLM's proxy names the API base it forwarded to; an official host there sets the prices."""
    chat = {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    exchange = _exchange(
        "litellm.internal", "/chat/completions", chat, response_headers={"x-litellm-model-api-base": upstream}
    )
    parsed = parse(exchange)
    assert (parsed.provider, parsed.prices) == ("openai_compatible", prices)
