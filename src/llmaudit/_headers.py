"""Which HTTP headers a record keeps: an allow list, and a deny list that always wins."""

from __future__ import annotations

__all__ = ["NEVER_STORED_HEADERS", "STORED_HEADERS", "STORED_HEADER_PREFIXES"]

#: Headers that are never stored, whatever an allow list says (the redactor adds its deny list).
NEVER_STORED_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "ocp-apim-subscription-key",
        "x-auth-token",
    }
)

#: Headers kept in ``record.headers``: content type, user agent, the SDKs' identification headers,
#: provider request ids and rate limits. Everything else is never decoded.
STORED_HEADERS = frozenset(
    {
        "content-type",
        "content-encoding",
        "content-length",
        "user-agent",
        "x-request-id",
        "request-id",
        "x-goog-api-client",
        "anthropic-version",
        "anthropic-beta",
        "openai-version",
        "openai-processing-ms",
        "openai-organization",
        "openai-project",
        "retry-after",
        "retry-after-ms",
        "x-groq-region",
        "cf-ray",
        "apim-request-id",
        "x-ms-region",
    }
)
STORED_HEADER_PREFIXES = ("x-stainless-", "x-ratelimit-", "anthropic-ratelimit-", "ratelimit-")
