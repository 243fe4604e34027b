"""Removing the secrets whose place is known, while a record is built: credential query parameters and
form fields, URLs in error messages, OAuth token requests and responses, metadata under a credential's
name, and the values of credential headers wherever they are repeated (the error message, the bodies).

Runs on the writer thread, for `record.build`; pure functions over strings and bytes (and a one-entry
memo of the last request's credentials). It must not do I/O or look for secrets by their shape (that is
the redactor's job, after this), and must not import the stages above the record stage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from .headers import MASK, is_credential_name
from .urls import mask_url_credentials

__all__ = ["SECRET_FORM_FIELDS", "SECRET_QUERY_PARAMETERS", "mask_form", "mask_url", "mask_urls_in"]

#: Query parameters whose values are credentials (Gemini's ``key``, Azure's SAS ``sig``, …): examples
#: of the rule `llmaudit.storage.is_credential_name` applies to every name (kept for callers).
SECRET_QUERY_PARAMETERS = frozenset(
    {
        "key",
        "api_key",
        "api-key",
        "apikey",
        "token",
        "access_token",
        "auth",
        "sig",
        "signature",
        "x-goog-api-key",
        "code",
        "client_secret",
        "password",
    }
)
#: Form fields (and the keys of an OAuth token request or response) whose values are credentials: the
#: query parameters' list plus OAuth 2.0's (RFC 6749, 7523, 7636, 8628, 8693) and OpenID Connect's.
SECRET_FORM_FIELDS = SECRET_QUERY_PARAMETERS | frozenset(
    {
        "refresh_token",
        "id_token",
        "code_verifier",
        "assertion",
        "client_assertion",
        "subject_token",
        "actor_token",
        "device_code",
        "passcode",
        "otp",
        "secret",
    }
)
#: Keys that make a JSON object an OAuth token request or response (RFC 6749 sections 4.1.3, 5.1).
_OAUTH_KEYS = frozenset({"grant_type", "access_token", "refresh_token", "id_token"})
#: A credential header's value shorter than this is not looked for elsewhere (too likely to be a word).
_MIN_SECRET_CHARS = 10
_MASK_BYTES = MASK.encode()
_SECRET_PARTS = re.compile(r"[\s;,]+")
_COOKIE_PAIR = re.compile(r"[A-Za-z0-9_.-]+=(.+)")


def mask_url(url: str) -> str:
    """*url* with any userinfo removed and its credentials masked (``***``): query, fragment and
    matrix parameters whose names look like credentials, tokens in the path (see
    `llmaudit.storage._base.mask_url_credentials`)."""
    return mask_url_credentials(url, userinfo="drop")


#: URLs inside an error message (an exception's text often quotes the request URL).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s'\"<>`]+")


def mask_urls_in(text: str | None) -> str | None:
    """*text* with every URL in it masked like `mask_url` (None stays None)."""
    if text is None or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: _mask_or_drop(m[0]), text)


def _mask_or_drop(url: str) -> str:
    try:
        return mask_url(url)
    except ValueError:
        return "<unparseable URL>"


def _is_secret_field(name: str, names: frozenset[str]) -> bool:
    return name.lower() in names or is_credential_name(name)


def mask_form(text: str) -> str:
    """An ``application/x-www-form-urlencoded`` body with credential values replaced by ``***`` (the
    same as the text when there is none)."""
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(_is_secret_field(k, SECRET_FORM_FIELDS) for k, _ in pairs):
        return text
    return urlencode(
        [(k, "***" if _is_secret_field(k, SECRET_FORM_FIELDS) else v) for k, v in pairs], safe="*/:"
    )


def _mask_oauth(value: Any) -> Any:
    """An OAuth token request or response object (JSON) with its credentials masked; any other value
    as it is. Only such objects: elsewhere ``token`` and ``code`` are ordinary keys (log probabilities,
    error codes)."""
    if not isinstance(value, dict) or _OAUTH_KEYS.isdisjoint(value):
        return value
    return {
        k: MASK
        if isinstance(k, str) and k.lower() in SECRET_FORM_FIELDS and isinstance(v, (str, list, dict))
        else v
        for k, v in value.items()
    }


def _mask_names(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Session metadata with the values under a credential's name masked (as `jsonable` does for the
    decorator's records)."""
    return {
        k: MASK if isinstance(k, str) and is_credential_name(k) and isinstance(v, (str, list, dict)) else v
        for k, v in metadata.items()
    }


class _Known(NamedTuple):
    """The known secrets of a request (`_secret_forms`): the texts to replace, longest first, and the
    fewest needles that find any of them in bytes (a form that contains another is found by it)."""

    forms: tuple[str, ...]
    needles: tuple[bytes, ...]


_NONE_KNOWN = _Known((), ())
_last_known: list[tuple[tuple[str, ...], _Known]] = [((), _NONE_KNOWN)]


def _secret_forms(values: tuple[str, ...]) -> _Known:
    """The texts in which credential header *values* may appear elsewhere: each value and each of its
    parts (the token of ``Bearer <token>``, the value of a cookie ``name=<value>``), as they are and as
    ``repr`` escapes them (``LocalProtocolError: Illegal header value b'<key>\\n'``)."""
    last = _last_known[0]
    if last[0] == values:  # one client sends the same credentials call after call
        return last[1]
    forms: set[str] = set()
    for value in values:
        for part in (value, *_SECRET_PARTS.split(value)):
            pair = _COOKIE_PAIR.fullmatch(part)
            for text in (part.strip(), pair.group(1)) if pair else (part.strip(),):
                forms.update((text, repr(text)[1:-1], repr(text.encode("latin-1", "replace"))[2:-1]))
    found = tuple(sorted((f for f in forms if len(f) >= _MIN_SECRET_CHARS), key=len, reverse=True))
    needles = tuple(
        f.encode("utf-8", "surrogatepass") for f in found if not any(g != f and g in f for g in found)
    )
    known = _Known(found, needles)
    _last_known[0] = (values, known)
    return known


def _error_text(error: str | None, secrets: _Known) -> str | None:
    """An error message with the URLs in it masked and every known secret replaced."""
    masked = mask_urls_in(error)
    return None if masked is None else _scrub(masked, secrets)


def _scrub(text: str, secrets: _Known) -> str:
    """*text* with every known secret replaced by ``[REDACTED]``."""
    for secret in secrets.forms:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrub_bytes(body: bytes, secrets: _Known) -> bytes:
    """*body* with every known secret replaced (one search per needle when none is there)."""
    for needle in secrets.needles:  # a loop, not all(<generator>): this runs for every record
        if body.find(needle) >= 0:
            break
    else:
        return body
    for secret in secrets.forms:
        raw = secret.encode("utf-8", "surrogatepass")
        if body.find(raw) >= 0:
            body = body.replace(raw, _MASK_BYTES)
    return body
