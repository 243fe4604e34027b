"""Whose prices apply to a call a gateway forwarded: runs on the writer thread.

A LiteLLM proxy (any host) says where it sent each call in its ``x-litellm-model-api-base`` response
header; when that is a provider's official host, the call is priced with that provider's prices
for the model the response names. Anything else stays unpriced: no guess.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from . import Exchange, Parsed

__all__ = ["UPSTREAM_HEADER", "priced", "provider_for_host"]

UPSTREAM_HEADER = "x-litellm-model-api-base"
_COMPATIBLE = frozenset({"openai_compatible", "anthropic_compatible", "gemini_compatible"})
_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
    "api.mistral.ai": "mistral",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "xai",
    "openrouter.ai": "openrouter",
    "api.fireworks.ai": "fireworks",
}
_SUFFIXES = (
    (".openai.azure.com", "azure_openai"),
    (".cognitiveservices.azure.com", "azure_openai"),
    (".services.ai.azure.com", "azure_openai"),
    ("aiplatform.googleapis.com", "gemini"),
)


def provider_for_host(host: str) -> str | None:
    """The provider whose official API *host* is, or None."""
    host = host.lower()
    found = _HOSTS.get(host)
    if found is None:
        found = next((name for suffix, name in _SUFFIXES if host.endswith(suffix)), None)
    return found


def priced(parsed: Parsed, exchange: Exchange) -> Parsed:
    """*parsed* with the prices of the provider a gateway forwarded it to, when one said so."""
    if parsed.provider not in _COMPATIBLE or parsed.prices is not None:
        return parsed
    upstream = exchange.response_headers.get(UPSTREAM_HEADER)
    if not upstream:
        return parsed
    try:
        host = urlsplit(upstream.strip()).hostname
    except ValueError:
        return parsed
    name = provider_for_host(host) if host else None
    return parsed if name is None else dataclasses.replace(parsed, prices=name)
