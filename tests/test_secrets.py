"""A fake API key placed everywhere a real one could leak — every request header (its name too), the
query string, the payload (its keys too), multipart file and field names, the model, the response, an
error message, the session (key, user, tags, metadata keys), decorator arguments held in any kind of
object, an OAuth token exchange — never reaches storage: the raw bytes of the JSONL files, the SQLite
database (with its WAL), the PostgreSQL table and the spool are scanned for it. Opaque tokens, which no
detector can recognise, are planted where their place names them (a credential header, an argument
or field named like a credential, an OAuth field) and are looked for too.

Then one test per place, through the way in a real application uses (both httpx branches, the real
openai SDK over httpx2's MockTransport), each failing on the code before that place was covered."""

from __future__ import annotations

import dataclasses
import importlib
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import httpx
import httpx2
import openai
import pydantic
import pytest
import sqlalchemy as sa
from tests.helpers import ControlledStorage

import llmaudit
from llmaudit import AuditRecord, Query, Redactor

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.codec import encode_record
from llmaudit.record.headers import is_credential_name
from llmaudit.record.model import STRING_LIMITS
from llmaudit.storage.sql import SQLStorage

KEY = "sk-proj-FAKEKEYFORTESTS0123456789abcdef"
GOOGLE_KEY = "AIzaFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123"
AWS_KEY = "AKIAFAKEFAKEFAKE0123"
# Opaque credentials: no detector knows their shape; only their place says what they are.
AZURE_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # an Azure OpenAI api-key: 32 hex digits
STAINLESS_TOKEN = "opaque-stainless-token-0001"
CLIENT_SECRET = "GOCSPX-opaqueClientSecret0002"
REFRESH_TOKEN = "1//0opaqueRefreshToken0003"
AUTH_CODE = "4/0opaqueAuthorizationCode0004"
CODE_VERIFIER = "opaqueCodeVerifier0005xxxxxxxxxxxxxxxxxxxxxx"
PASSWORD = "opaque-password-0006"
ACCESS_TOKEN = "ya29.opaqueAccessToken0007"
ID_TOKEN = "opaque.idtoken.0008"
NEW_REFRESH_TOKEN = "1//0opaqueRefreshToken0009"
ARG_TOKEN = "opaque-argument-token-0010"
DATACLASS_KEY = "opaque-dataclass-key-0011"
PYDANTIC_TOKEN = "opaque-pydantic-token-0012"
ATTRS_PASSWORD = "opaque-attrs-password-0013"
OBJECT_SECRET = "opaque-object-secret-0014"
SDK_KEY = "opaque-openai-sdk-key-0015"
META_KEY = "opaque-metadata-api-key-0016"
OPAQUE = (
    AZURE_KEY,
    STAINLESS_TOKEN,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    AUTH_CODE,
    CODE_VERIFIER,
    PASSWORD,
    ACCESS_TOKEN,
    ID_TOKEN,
    NEW_REFRESH_TOKEN,
    ARG_TOKEN,
    DATACLASS_KEY,
    PYDANTIC_TOKEN,
    ATTRS_PASSWORD,
    OBJECT_SECRET,
    SDK_KEY,
    META_KEY,
)
HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "Proxy-Authorization": f"Basic {KEY}",
    "x-api-key": KEY,
    "api-key": KEY,
    "x-goog-api-key": GOOGLE_KEY,
    "Cookie": f"session={KEY}",
    "X-Custom-Secret": KEY,  # on the configured deny list
    "User-Agent": f"my-app/1.0 ({KEY})",  # allow-listed: kept, but the detectors scrub the value
    "x-stainless-lang": KEY,  # allow-listed prefix
}


def _handler(request: httpx2.Request) -> httpx2.Response:
    if b'"model":"fail"' in request.content.replace(b" ", b""):
        raise httpx2.ConnectError(f"could not connect with key {KEY}", request=request)
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"your key is {KEY}"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    headers = {"set-cookie": f"s={KEY}", "x-request-id": f"req-{KEY}", "content-type": "application/json"}
    return httpx2.Response(200, json=body, headers=headers)


def _leak_everything(auditor: llmaudit.Auditor) -> None:
    transport = llmaudit.AuditTransport(httpx2.MockTransport(_handler), auditor=auditor)
    with httpx2.Client(transport=transport, headers=HEADERS) as http:
        http.post(
            f"https://api.openai.com/v1/chat/completions?key={GOOGLE_KEY}&api_key={KEY}&token={KEY}",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"my key: {KEY}"}]},
        )
        http.post(
            f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent?key={GOOGLE_KEY}",
            json={"contents": [{"parts": [{"text": f"key {GOOGLE_KEY}"}]}]},
        )
        with pytest.raises(httpx2.ConnectError):
            http.post("https://api.openai.com/v1/chat/completions", json={"model": "fail", "messages": []})

    @llmaudit.audited(auditor=auditor)
    def call_llm(api_key: str, prompt: str) -> str:
        return f"used {api_key}"

    call_llm(KEY, prompt=f"and again {KEY}")
    for hx in (httpx, httpx2):
        _leak_through_transport(hx, auditor)
    _leak_through_decorator(auditor)
    _leak_through_openai_sdk(auditor)


#: How many records `_leak_everything` makes.
RECORDS = 4 + 2 * 4 + 2 + 2


def _llm_handler(request: Any) -> Any:
    """A provider that echoes what it was sent: the model, and the raw credential header values."""
    module = httpx if isinstance(request, httpx.Request) else httpx2
    if request.url.host == "oauth2.googleapis.com":
        body = {
            "access_token": ACCESS_TOKEN,
            "refresh_token": NEW_REFRESH_TOKEN,
            "id_token": ID_TOKEN,
            "token_type": "Bearer",
            "expires_in": 3599,
        }
        return module.Response(200, json=body)
    if request.url.path.endswith("/files"):
        body = {"id": "file-1", "object": "file", "bytes": 2, "created_at": 0, "filename": "f"}
        body |= {"purpose": "fine-tune", "status": "processed"}
        return module.Response(200, json=body)
    echoed = " ".join(request.headers.get(name, "") for name in ("api-key", "authorization"))
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": _model(request),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": f"sent: {echoed}"},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    return module.Response(200, json=body)


def _model(request: Any) -> str:
    model = json.loads(request.content).get("model")
    return model if isinstance(model, str) else "unknown"


def _leak_through_transport(hx: ModuleType, auditor: llmaudit.Auditor) -> None:
    """Four records: a chat call in a session, a multipart upload, an OAuth token exchange, and a
    request an HTTP library refuses (a credential header value with a newline)."""
    transport = llmaudit.AuditTransport(hx.MockTransport(_llm_handler), auditor=auditor, capture="all")
    headers = {
        "api-key": AZURE_KEY,
        "X-Stainless-Token": STAINLESS_TOKEN,  # an allow-listed prefix, a credential's name
        f"X-Stainless-{KEY}": "1",  # a header name that is a key
        "User-Agent": f"my-app/1.0 ({KEY})",
    }
    with hx.Client(transport=transport, headers=headers) as http:
        session = llmaudit.session(
            f"session-{KEY}",
            user=f"user-{KEY}",
            tags=[f"tag-{KEY}"],
            metadata={f"metadata-key-{KEY}": 1, "api_key": META_KEY},
        )
        with session:
            http.post(
                "https://api.openai.com/v1/chat/completions",
                json={
                    "model": f"ft:gpt-4o-mini:org:{KEY}",
                    "messages": [{"role": "user", "content": "hello"}],
                    "metadata": {KEY: "a JSON key", f"nested-{GOOGLE_KEY}": {KEY: 1}},
                },
            )
        http.post(
            "https://api.openai.com/v1/files",
            data={"purpose": "fine-tune", f"field-{KEY}": "x"},
            files={"file": (f"{KEY}.jsonl", b"{}", "application/jsonl")},
        )
        http.post(
            "https://oauth2.googleapis.com/token",
            data={
                "grant_type": "authorization_code",
                "client_id": "my-client",
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "code": AUTH_CODE,
                "code_verifier": CODE_VERIFIER,
                "password": PASSWORD,
            },
        )
    _leak_through_refused_header(hx, auditor)


def _leak_through_refused_header(hx: ModuleType, auditor: llmaudit.Auditor) -> None:
    """h11 refuses a header value ending in a newline, and says so with the value in the message."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)  # connections complete in the backlog: nothing needs to accept them
        port = listener.getsockname()[1]
        transport = llmaudit.AuditTransport(hx.HTTPTransport(), auditor=auditor, capture="all")
        with hx.Client(transport=transport) as http, pytest.raises(hx.LocalProtocolError):
            http.post(
                f"http://127.0.0.1:{port}/v1/chat/completions", headers={"api-key": f"{AZURE_KEY}\n"}, json={}
            )


@dataclasses.dataclass
class Settings:
    api_key: str
    model: str = "gpt-4o-mini"


class Options(pydantic.BaseModel):
    token: str
    temperature: float = 0.2


@attrs.define
class Login:
    user: str
    password: str


class Connection:
    """A plain object whose repr shows its secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __repr__(self) -> str:
        return f"Connection(secret={self.secret!r})"


def _leak_through_decorator(auditor: llmaudit.Auditor) -> None:
    """Two records: credentials in a dataclass, a pydantic model, an attrs class, a plain object and
    keyword arguments named like credentials; the result and an error message repeat them."""

    @llmaudit.audited(auditor=auditor)
    def ask(settings: Settings, options: Options, login: Login, conn: Connection, *, token: str) -> str:
        return f"used {token} and {settings.api_key}"

    @llmaudit.audited(auditor=auditor)
    def fail(password: str) -> None:
        raise ValueError(f"login refused for password {password}")

    ask(
        Settings(DATACLASS_KEY),
        Options(token=PYDANTIC_TOKEN),
        Login("alice", ATTRS_PASSWORD),
        Connection(OBJECT_SECRET),
        token=ARG_TOKEN,
    )
    with pytest.raises(ValueError, match="login refused"):
        fail(PASSWORD)


def _leak_through_openai_sdk(auditor: llmaudit.Auditor) -> None:
    """Two records from the real openai SDK over httpx2: a chat call (a key as the model, an extra
    header named like a credential, the SDK key echoed back) and a file upload (a key as the file name)."""
    transport = llmaudit.AuditTransport(httpx2.MockTransport(_llm_handler), auditor=auditor, capture="all")
    with httpx2.Client(transport=transport) as http:
        client = openai.OpenAI(api_key=SDK_KEY, http_client=http, max_retries=0)
        client.chat.completions.create(
            model=f"ft:gpt-4o-mini:org:{KEY}",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Stainless-Auth-Token": STAINLESS_TOKEN},
        )
        client.files.create(file=(f"{KEY}.jsonl", b"{}"), purpose="fine-tune")


def _assert_clean(raw: bytes, where: str) -> None:
    assert raw, f"nothing was written to {where}"
    lowered = raw.lower()  # header names are lower-cased on the way
    for secret in (KEY, GOOGLE_KEY, AWS_KEY, "FAKEKEYFORTESTS", *OPAQUE):
        assert secret.lower().encode() not in lowered, f"{secret} found in {where}"


def _auditor(url: Any, tmp_path: Path) -> llmaudit.Auditor:
    return llmaudit.Auditor(
        url, spool_dir=str(tmp_path / "spool"), redactor=Redactor(deny_headers=["x-custom-secret"])
    )


def test_jsonl_files_hold_no_key(tmp_path: Path) -> None:
    with _auditor(f"jsonl://{tmp_path / 'log'}", tmp_path) as auditor:
        _leak_everything(auditor)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file())
    _assert_clean(raw, "the JSONL files")
    assert b"[REDACTED:openai_key]" in raw and b"api_key=***" in raw  # recorded, scrubbed
    assert b'"user-agent":"my-app/1.0 ([REDACTED:openai_key])"' in raw


def test_sqlite_file_holds_no_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with _auditor(url, tmp_path) as auditor:
        _leak_everything(auditor)
        auditor.flush()
        raw_open = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))  # WAL included
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    _assert_clean(raw_open + raw, "the SQLite files")
    with llmaudit.open(url) as log:
        records = list(log.records())
    assert len(records) == RECORDS
    errors = [r.error for r in records if r.error]
    assert any("could not connect with key [REDACTED" in e for e in errors)


@pytest.mark.postgres
def test_postgresql_table_holds_no_key(pg_url: str, tmp_path: Path) -> None:
    with _auditor(pg_url, tmp_path) as auditor:
        _leak_everything(auditor)
    store = SQLStorage(pg_url)
    # private: the store's own engine, files and writes, to inspect or tamper with what it holds
    with store._engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT t::text FROM {store.table.name} t")).scalars().all()
        chain = conn.execute(sa.text(f"SELECT t::text FROM {store.chain.name} t")).scalars().all()
    store.close()
    assert len(rows) == RECORDS
    _assert_clean("\n".join(rows + chain).encode(), "the PostgreSQL tables")


def test_spool_holds_no_key(tmp_path: Path) -> None:
    storage = ControlledStorage()
    storage.down = True
    auditor = _auditor(storage, tmp_path)
    # private: the auditor's writer: its retry pacing and spool have no public setting
    auditor._writer.retry_delays_s = ()
    _leak_everything(auditor)
    auditor.flush()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "spool").iterdir())
    storage.down = False
    auditor.close()
    _assert_clean(raw, "the spool")
    assert raw.count(b"\n") == RECORDS


# -- one test per place ----------------------------------------------------------------------------


@pytest.fixture(params=["httpx", "httpx2"])
def hx(request: pytest.FixtureRequest) -> ModuleType:
    """The httpx branch under test."""
    return importlib.import_module(request.param)


@pytest.fixture
def auditor(tmp_path: Path) -> Iterator[llmaudit.Auditor]:
    with llmaudit.Auditor(f"memory://{uuid.uuid4().hex}", spool_dir=str(tmp_path / "spool")) as audit:
        yield audit


def _stored(auditor: llmaudit.Auditor) -> tuple[list[llmaudit.AuditRecord], bytes]:
    """The records as stored, and their encoded bytes (what a backend writes)."""
    assert auditor.flush(10)
    records = list(auditor.storage.read(Query()))
    assert records
    return records, b"\n".join(encode_record(r) for r in records)


def _post(hx: ModuleType, auditor: llmaudit.Auditor, url: str, **kwargs: Any) -> None:
    transport = llmaudit.AuditTransport(hx.MockTransport(_llm_handler), auditor=auditor, capture="all")
    with hx.Client(transport=transport) as http:
        http.post(url, **kwargs)


CHAT_URL = "https://api.openai.com/v1/chat/completions"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def test_an_allow_listed_header_named_like_a_credential_is_not_stored(
    hx: ModuleType, auditor: llmaudit.Auditor
) -> None:
    """``x-stainless-*`` is kept for the SDK's identification headers; ``X-Stainless-Token`` is not one."""
    headers = {"X-Stainless-Token": STAINLESS_TOKEN, "X-Stainless-Lang": "python"}
    _post(hx, auditor, CHAT_URL, json=CHAT, headers=headers)
    (record,), raw = _stored(auditor)
    assert STAINLESS_TOKEN.encode() not in raw
    assert record.headers["request"]["x-stainless-lang"] == "python"
    assert "x-stainless-token" not in record.headers["request"]


def test_a_header_name_holding_a_key_is_redacted(hx: ModuleType, auditor: llmaudit.Auditor) -> None:
    """Header names are lower-cased on the way: the key is looked for in any case."""
    _post(hx, auditor, CHAT_URL, json=CHAT, headers={f"X-Stainless-{KEY}": "1"})
    (record,), raw = _stored(auditor)
    assert KEY.lower().encode() not in raw.lower()
    assert record.headers["request"]["x-stainless-[REDACTED:openai_key]"] == "1"


def test_multipart_file_and_field_names_are_redacted(hx: ModuleType, auditor: llmaudit.Auditor) -> None:
    _post(
        hx,
        auditor,
        "https://api.openai.com/v1/files",
        data={"purpose": "fine-tune", f"field-{AWS_KEY}": "x"},
        files={"file": (f"{KEY}.jsonl", b"{}", "application/jsonl")},
    )
    (record,), raw = _stored(auditor)
    assert KEY.encode() not in raw and AWS_KEY.encode() not in raw
    assert isinstance(record.request, dict)
    assert "[REDACTED:openai_key].jsonl" in record.request["files"]
    assert "field-[REDACTED:aws_key]" in record.request["fields"]


def test_json_object_keys_are_redacted(hx: ModuleType, auditor: llmaudit.Auditor) -> None:
    body = {**CHAT, "metadata": {KEY: "value", "nested": [{f"user {AWS_KEY}": 1}]}}
    _post(hx, auditor, CHAT_URL, json=body)
    (record,), raw = _stored(auditor)
    assert KEY.encode() not in raw and AWS_KEY.encode() not in raw
    assert isinstance(record.request, dict)
    assert record.request["metadata"] == {
        "[REDACTED:openai_key]": "value",
        "nested": [{"user [REDACTED:aws_key]": 1}],
    }


def test_session_key_user_tags_and_metadata_holding_credentials(
    hx: ModuleType, auditor: llmaudit.Auditor
) -> None:
    """A session key or user holding a credential is stored as its keyed hash (equal values still
    group, a nested session still names its parent); tags and metadata keys lose the credential;
    metadata named like a credential is masked."""
    outer = llmaudit.session(
        f"session-{KEY}",
        user=f"user-{KEY}",
        tags=[f"tag-{KEY}"],
        metadata={f"metadata-{KEY}": 1, "api_key": META_KEY, "team": "search"},
    )
    with outer, llmaudit.session("inner"):
        _post(hx, auditor, CHAT_URL, json=CHAT)
    with outer:
        _post(hx, auditor, CHAT_URL, json=CHAT)
    (inner, second), raw = _stored(auditor)
    assert KEY.encode() not in raw and META_KEY.encode() not in raw
    assert second.session_key is not None and second.session_key.startswith("hmac-sha256:")
    assert inner.parent_session_key == second.session_key
    assert inner.user == second.user and second.user is not None and second.user.startswith("hmac-sha256:")
    assert second.tags == ("tag-[REDACTED:openai_key]",)
    assert second.metadata == {"metadata-[REDACTED:openai_key]": 1, "api_key": "[REDACTED]", "team": "search"}


def test_the_model_column_is_redacted_like_the_payload(auditor: llmaudit.Auditor) -> None:
    """The model is read from the payload into its own column: the column is redacted too (the real
    openai SDK over httpx2)."""
    transport = llmaudit.AuditTransport(httpx2.MockTransport(_llm_handler), auditor=auditor)
    with httpx2.Client(transport=transport) as http:
        client = openai.OpenAI(api_key="sk-test", http_client=http, max_retries=0)
        client.chat.completions.create(
            model=f"ft:gpt-4o-mini:org:{KEY}", messages=[{"role": "user", "content": "hi"}]
        )
    (record,), raw = _stored(auditor)
    assert KEY.encode() not in raw
    assert record.model == "ft:gpt-4o-mini:org:[REDACTED:openai_key]"


def test_the_openai_sdk_key_echoed_by_the_server_is_scrubbed(auditor: llmaudit.Auditor) -> None:
    """The SDK's own key, which no detector recognises, is known from its header: where the server
    repeats it (the answer), it is scrubbed; and an extra header named like a credential is not kept."""
    transport = llmaudit.AuditTransport(httpx2.MockTransport(_llm_handler), auditor=auditor)
    with httpx2.Client(transport=transport) as http:
        client = openai.OpenAI(api_key=SDK_KEY, http_client=http, max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Stainless-Auth-Token": STAINLESS_TOKEN},
        )
    (record,), raw = _stored(auditor)
    assert SDK_KEY.encode() not in raw and STAINLESS_TOKEN.encode() not in raw
    assert isinstance(record.response, dict)
    assert record.response["choices"][0]["message"]["content"] == "sent:  [REDACTED]"


def test_credential_arguments_of_an_audited_function_are_masked(auditor: llmaudit.Auditor) -> None:
    """Credentials held in a dataclass, a pydantic model, an attrs class, a plain object's repr and
    keyword arguments named like credentials; the result and the error that repeat them."""
    _leak_through_decorator(auditor)
    records, raw = _stored(auditor)
    for secret in (DATACLASS_KEY, PYDANTIC_TOKEN, ATTRS_PASSWORD, OBJECT_SECRET, ARG_TOKEN, PASSWORD):
        assert secret.encode() not in raw, secret
    ask = next(r for r in records if r.error is None)
    assert isinstance(ask.request, dict)
    arguments = ask.request["arguments"]
    assert arguments["settings"] == {"api_key": "[REDACTED]", "model": "gpt-4o-mini"}
    assert arguments["options"] == {"token": "[REDACTED]", "temperature": 0.2}
    assert arguments["login"] == {"user": "alice", "password": "[REDACTED]"}
    assert arguments["conn"] == "Connection(secret='[REDACTED]')"
    assert arguments["token"] == "[REDACTED]"
    assert ask.response == "used [REDACTED] and [REDACTED]"
    fail = next(r for r in records if r.error is not None)
    assert fail.error == "ValueError: login refused for password [REDACTED]"


def test_an_oauth_token_exchange_is_masked(hx: ModuleType, auditor: llmaudit.Auditor) -> None:
    """With capture="all", the form-encoded token request and the JSON token response."""
    form = {
        "grant_type": "authorization_code",
        "client_id": "my-client",
        "client_secret": CLIENT_SECRET,
        "code": AUTH_CODE,
        "code_verifier": CODE_VERIFIER,
        "refresh_token": REFRESH_TOKEN,
        "password": PASSWORD,
        "assertion": ID_TOKEN,
    }
    _post(hx, auditor, "https://oauth2.googleapis.com/token", data=form)
    (record,), raw = _stored(auditor)
    for secret in (CLIENT_SECRET, AUTH_CODE, CODE_VERIFIER, REFRESH_TOKEN, PASSWORD, ACCESS_TOKEN, ID_TOKEN):
        assert secret.encode() not in raw, secret
    assert record.request == (
        "grant_type=authorization_code&client_id=my-client&client_secret=***&code=***"
        "&code_verifier=***&refresh_token=***&password=***&assertion=***"
    )
    assert record.response == {
        "access_token": "[REDACTED]",
        "refresh_token": "[REDACTED]",
        "id_token": "[REDACTED]",
        "token_type": "Bearer",
        "expires_in": 3599,
    }


def test_an_error_repeating_a_credential_header_is_scrubbed(
    hx: ModuleType, auditor: llmaudit.Auditor
) -> None:
    """An ``api-key`` value with a trailing newline: h11 refuses it and quotes it in its message; the
    key (32 hex digits, which no detector recognises) is scrubbed from the stored error."""
    _leak_through_refused_header(hx, auditor)
    (record,), raw = _stored(auditor)
    assert AZURE_KEY.encode() not in raw
    assert record.error == "LocalProtocolError: Illegal header value b'[REDACTED]\\n'"


#: A secret each text field can hold within its column, caught by the detectors of today.
_FITS = {16: "bearer 12345678"}


def test_every_text_field_of_a_record_is_redacted() -> None:
    """Whatever the field (one added later included), a secret in it does not survive redaction:
    every field of `AuditRecord` that can hold text is scanned, except the identifiers and chain
    values that llmaudit makes itself."""
    exempt = {"id", "parent_id", "writer_id", "prev_hash", "hash", "source"}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(AuditRecord):
        kind = str(f.type)
        if f.name in exempt or not any(k in kind for k in ("str", "dict", "tuple", "JSONValue", "Any")):
            continue
        secret = _FITS.get(STRING_LIMITS.get(f.name, 0), KEY)
        if kind.startswith("dict"):
            values[f.name] = {secret: secret}
        elif kind.startswith("tuple"):
            values[f.name] = (secret,)
        else:
            values[f.name] = secret
    assert {"model", "operation", "provider", "method", "client", "session_key", "user"} <= set(values)
    record = AuditRecord(**values)
    result = Redactor()(record)
    assert result is not None
    raw = encode_record(result)
    assert KEY.encode() not in raw and b"12345678" not in raw


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("api_key", True),
        ("OPENAI_API_KEY", True),
        ("apiKey", True),
        ("x-api-key", True),
        ("X-Stainless-Token", True),
        ("x-stainless-auth-token", True),
        ("client_secret", True),
        ("clientSecret", True),
        ("accessToken", True),
        ("refresh_token", True),
        ("password", True),
        ("privateKey", True),
        ("Authorization", True),
        # counts, identifiers and ordinary words stay: masking them would only lose data
        ("max_tokens", False),
        ("x-ratelimit-remaining-tokens", False),
        ("anthropic-ratelimit-input-tokens-limit", False),
        ("x-stainless-retry-count", False),
        ("x-goog-api-client", False),
        ("author", False),
        ("cache_key", False),
        ("session_key", False),
        ("prompt", False),
    ],
)
def test_which_names_are_credentials(name: str, credential: bool) -> None:
    assert is_credential_name(name) is credential


def test_a_cookie_value_is_scrubbed_from_the_body_but_not_its_name(
    hx: ModuleType, auditor: llmaudit.Auditor
) -> None:
    """The known parts of a credential header are its values: a cookie's name stays where it is a word."""
    cookie = "opaque-cookie-value-0017"
    body = {**CHAT, "metadata": {"session_identifier": "kept", "echo": cookie}}
    _post(hx, auditor, CHAT_URL, json=body, headers={"Cookie": f"session_identifier={cookie}; theme=dark"})
    (record,), raw = _stored(auditor)
    assert cookie.encode() not in raw
    assert isinstance(record.request, dict)
    assert record.request["metadata"] == {"session_identifier": "kept", "echo": "[REDACTED]"}
