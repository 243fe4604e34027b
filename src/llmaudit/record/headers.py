"""Which HTTP headers a record keeps: an allow list, and a deny list that always wins; and which
names (of headers, form fields, function arguments, object attributes) say their value is a credential."""

from __future__ import annotations

import re

__all__ = ["MASK", "NEVER_STORED_HEADERS", "STORED_HEADERS", "STORED_HEADER_PREFIXES", "is_credential_name"]

#: What a value stored under a credential's name is replaced by.
MASK = "[REDACTED]"

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

#: Words that make a name a credential's (``X-Stainless-Token``, ``api_key``, ``clientSecret``,
#: ``OPENAI_API_KEY``). Whole words only: ``max_tokens`` and ``x-ratelimit-remaining-tokens`` are counts.
_CREDENTIAL_WORDS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "credential",
        "credentials",
        "jwt",
        "passcode",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "secrets",
        "signature",
        "token",
    }
)
#: Words ending a compound that is a credential's name (``accesstoken``, ``clientsecret``).
_CREDENTIAL_ENDINGS = ("token", "secret", "password", "passwd", "apikey")
#: ``<word> key`` pairs that name a key that is a credential (``api_key``, ``secret-key``, ``privateKey``).
_KEY_PREFIXES = frozenset(
    {"api", "access", "private", "secret", "signing", "encryption", "master", "subscription"}
)
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_NAMES: dict[str, bool] = {}


def is_credential_name(name: str) -> bool:
    """Whether *name* (a header, form field, argument or attribute name) says its value is a
    credential: a word such as ``token``, ``secret``, ``password`` or ``auth``, or ``api``/``private``/…
    followed by ``key``, in any case and any of ``-``, ``_``, ``.``, space or camelCase between words."""
    known = _NAMES.get(name)
    if known is not None:
        return known
    words = _WORD_SPLIT.split(_CAMEL.sub(r"\1_\2", name).lower())
    found = any(
        word in _CREDENTIAL_WORDS
        or (word.endswith(_CREDENTIAL_ENDINGS) and not word.endswith("tokens"))
        or (word == "key" and n > 0 and words[n - 1] in _KEY_PREFIXES)
        for n, word in enumerate(words)
    )
    if len(_NAMES) < 4096:  # names repeat from call to call; a bound against unbounded growth
        _NAMES[name] = found
    return found
