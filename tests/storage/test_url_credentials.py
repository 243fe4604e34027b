"""Credentials in URLs: the values of parameters whose names look like credentials (query, fragment,
matrix), userinfo and tokens in paths are masked in stored record URLs, in URLs quoted by error
messages and in storage URLs shown in messages; harmless parameters stay readable.

Fake credentials are built from parts here, never written as one literal."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

import llmaudit

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.masking import mask_url, mask_urls_in
from llmaudit.storage import redact_url
from llmaudit.storage._base import is_credential_name

SECRET = "s3" + "cr3t" + "VALUE" + "0123456789"


@pytest.mark.parametrize(
    "name",
    [
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Credential",
        "X-Goog-Signature",
        "access_key",
        "AccessKey",
        "secret",
        "client_secret",
        "refresh_token",
        "access_token",
        "accessToken",
        "subscription-key",
        "Ocp-Apim-Subscription-Key",
        "session_token",
        "sessionid",
        "jsessionid",
        "jwt",
        "x-api-key",
        "apikey",
        "APIKEY",
        "key",
        "sig",
        "signature",
        "password",
        "passwd",
        "pwd",
        "pass",
        "auth",
        "oauth_token",
        "code",
        "hub.verify_token",
        "private_key",
        "client_assertion",
    ],
)
def test_credential_parameter_names_are_recognised(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens",
        "max_completion_tokens",
        "token_type",
        "pageToken",
        "next_token",
        "key_length",
        "keyword",
        "author",
        "model",
        "api-version",
        "alt",
        "X-Amz-Algorithm",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "state",
        "redirect_uri",
        "q",
        "stream",
        "design",
    ],
)
def test_harmless_parameter_names_stay_readable(name: str) -> None:
    """Counts, limits, types, pagination and ordinary words are not credentials: the stored URL
    keeps them, which is what a reader of the audit log needs."""
    assert not is_credential_name(name)


def test_a_presigned_s3_url_keeps_its_shape_and_loses_its_credentials() -> None:
    url = (
        "https://bucket.s3.amazonaws.com/key.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential=AKIA{SECRET}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
        f"&X-Amz-Security-Token={SECRET}&X-Amz-Signature={SECRET}"
    )
    assert mask_url(url) == (
        "https://bucket.s3.amazonaws.com/key.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
        "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
        "&X-Amz-Security-Token=***&X-Amz-Signature=***"
    )


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (  # OAuth implicit flow: the token comes back in the fragment
            f"https://app.example/cb#access_token={SECRET}&token_type=bearer&expires_in=3600",
            "https://app.example/cb#access_token=***&token_type=bearer&expires_in=3600",
        ),
        (  # matrix parameters in path segments
            f"https://h.example/a;key={SECRET};v=1/b;jsessionid={SECRET}/c",
            "https://h.example/a;key=***;v=1/b;jsessionid=***/c",
        ),
        (  # Telegram's bot token in the path
            f"https://api.telegram.org/bot123456789:AA{SECRET}/sendMessage?chat_id=5",
            "https://api.telegram.org/bot***/sendMessage?chat_id=5",
        ),
        (  # userinfo is dropped from record URLs; harmless parameters keep their bytes
            f"https://user:{SECRET}@h.example/v1?max_tokens=5&q=a+b%20c&api_key={SECRET}&session_token={SECRET}",
            "https://h.example/v1?max_tokens=5&q=a+b%20c&api_key=***&session_token=***",
        ),
        ("https://h.example/v1/chat?stream=true", "https://h.example/v1/chat?stream=true"),
    ],
)
def test_record_urls_are_masked_in_query_fragment_matrix_path_and_userinfo(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_storage_urls_hide_query_passwords_too() -> None:
    """libpq takes ``?password=``: a storage URL shown in a message or a log hides it as well."""
    url = f"postgresql+psycopg://bob:{SECRET}@db.local:5433/audit?table=x&password={SECRET}&sslmode=require"
    assert (
        redact_url(url)
        == "postgresql+psycopg://bob:***@db.local:5433/audit?table=x&password=***&sslmode=require"
    )


def test_urls_quoted_in_an_error_message_are_masked() -> None:
    message = f"Client error '401' for url 'https://api.example.com/v1?api_key={SECRET}&q=1'\nsee https://docs.example"
    assert mask_urls_in(message) == (
        "Client error '401' for url 'https://api.example.com/v1?api_key=***&q=1'\nsee https://docs.example"
    )
    assert mask_urls_in(None) is None


def test_no_url_credential_reaches_storage(tmp_path: Path) -> None:
    """Through the transport into JSONL: a presigned URL, a fragment token, a matrix key, a Telegram
    path token, a GitHub token in a path segment (the Redactor's detectors scan the URL) and a URL
    quoted by a connection error: the stored bytes hold none of the secrets, and max_tokens and
    X-Amz-Date stay readable."""
    github = "gh" + "p_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    urls = [
        f"https://bucket.s3.amazonaws.com/o?X-Amz-Date=20260101T000000Z&X-Amz-Signature={SECRET}&max_tokens=5",
        f"https://api.example.com/v1/x;key={SECRET}/y#refresh_token={SECRET}",
        f"https://api.telegram.org/bot123456789:AA{SECRET}/getMe",
        f"https://raw.example.com/{github}/file.json",
    ]

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "down.example.com":
            raise httpx2.ConnectError(f"cannot reach {request.url}", request=request)
        return httpx2.Response(200, json={"ok": True})

    with llmaudit.Auditor(f"jsonl://{tmp_path / 'log'}", spool_dir=str(tmp_path / "spool")) as auditor:
        transport = llmaudit.AuditTransport(httpx2.MockTransport(handler), auditor=auditor, capture="all")
        with httpx2.Client(transport=transport) as client:
            for url in urls:
                client.get(url)
            with pytest.raises(httpx2.ConnectError):
                client.get(f"https://down.example.com/v1?access_token={SECRET}")
        auditor.flush()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file())
    assert raw.count(b'"url":') >= 5
    assert SECRET.encode() not in raw and github.encode() not in raw
    assert b"max_tokens=5" in raw and b"X-Amz-Date=20260101T000000Z" in raw
    assert b"access_token=***" in raw  # the error message's URL, masked
