"""Credentials out of URLs: the storage URL in messages and logs, and a recorded request's URL.

Pure string work over one URL at a time; it must not log, and must not decide what else in a record
is a secret (that is the `Redactor`'s job).
"""

from __future__ import annotations

import re
from typing import Final, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["MASKED", "is_credential_name", "mask_url_credentials", "redact_url"]

#: A word of a parameter name that makes it a credential: it ends with one of these stems
#: (``key``, ``apikey``, ``accesskey``, ``x-api-key``, ``refresh_token``, ``X-Amz-Signature``...).
_CREDENTIAL_WORD = re.compile(
    r"(?:key|token|secret|signature|sig|password|passwd|passphrase|pwd|credentials?|auth|"
    r"authorization|session|sessionid|jwt|cookie|assertion|hmac)$"
)
#: Whole words that make a name a credential (``code`` is an OAuth authorization code).
_CREDENTIAL_NAMES = frozenset({"code", "pass", "pw", "sid", "otp"})
#: Words that make a name harmless whatever else it says: counts, limits, types and pagination
#: (``max_tokens``, ``token_type``, ``pageToken``, ``key_length``).
_HARMLESS_WORDS = frozenset(
    {"max", "min", "count", "num", "limit", "type", "length", "size", "usage", "page", "next", "ttl"}
)
_NAME_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
#: ``name=value`` in a query string, a fragment or a path segment's matrix parameters.
_PARAMETER = re.compile(r"(^|[&;])([^=&;#]*)=([^&;#]*)")
#: Telegram's bot API puts the token in the path: /bot<id>:<secret>/method.
_PATH_TOKEN = re.compile(r"(?<=/bot)[0-9]+:[A-Za-z0-9_-]+")
MASKED: Final = "***"


def is_credential_name(name: str) -> bool:
    """Whether a URL parameter called *name* carries a credential: one of its words (split at
    ``-``, ``_``, ``.`` and camelCase) ends with key, token, secret, signature, sig, password,
    credential, auth, session, jwt... and none of them is a count, limit, type or page word."""
    words = [word.lower() for word in _NAME_WORD.findall(unquote(name))]
    if any(word in _HARMLESS_WORDS for word in words):
        return False
    return any(word in _CREDENTIAL_NAMES or _CREDENTIAL_WORD.search(word) for word in words)


def _mask_parameters(text: str) -> str:
    """*text* (``a=1&b=2`` or ``a=1;b=2``) with the values of credential parameters masked, the
    rest byte for byte as it was."""
    if "=" not in text:
        return text
    return _PARAMETER.sub(
        lambda m: f"{m[1]}{m[2]}={MASKED}" if m[3] and is_credential_name(m[2]) else m[0], text
    )


def mask_url_credentials(url: str, *, userinfo: Literal["password", "drop"] = "password") -> str:
    """*url* with its credentials replaced by ``***``; everything else is kept as it was written.

    Masked: the password of the userinfo (``userinfo="password"``, keeping the user name) or the
    whole ``user:password@`` (``"drop"``); the values of query, fragment (OAuth's implicit flow
    returns ``#access_token=…``) and matrix (``;key=…``) parameters whose names look like
    credentials (see `is_credential_name`); a token in the path (Telegram's ``/bot<token>/``).
    Tokens a detector recognises elsewhere in a stored URL are the `Redactor`'s job.

    Raises:
        ValueError: the URL cannot be parsed.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        if userinfo == "drop":
            netloc = host
        elif parts.password is not None:
            netloc = f"{credentials.partition(':')[0]}:{MASKED}@{host}"
    path = parts.path
    if ";" in path:
        path = "/".join(_mask_matrix(segment) for segment in path.split("/"))
    if "/bot" in path:
        path = _PATH_TOKEN.sub(MASKED, path)
    query, fragment = _mask_parameters(parts.query), _mask_parameters(parts.fragment)
    if (netloc, path, query, fragment) == (parts.netloc, parts.path, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def _mask_matrix(segment: str) -> str:
    name, sep, parameters = segment.partition(";")
    return name + sep + _mask_parameters(parameters) if sep else segment


def redact_url(url: str) -> str:
    """*url* with its password and credential parameters replaced by ``***``, for messages and logs
    (see `mask_url_credentials`)."""
    try:
        return mask_url_credentials(url)
    except ValueError:
        return "<unparseable storage URL>"
