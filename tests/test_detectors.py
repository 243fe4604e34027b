"""The secret catalogue (`llmaudit.redact.detectors`): every rule catches its token format in message
content and the token never reaches storage; keys split by zero-width characters or written in
full-width letters are caught too; card numbers with dots, double spaces or as JSON numbers; and
ordinary prose, code, UUIDs and hashes are left alone.

Every fake key is built here from parts (a prefix and generated characters), so that no string in the
repository looks like a leaked key to a secret scanner.
"""

from __future__ import annotations

import random
import re
import string
import sys
import unicodedata
from pathlib import Path
from typing import Any
from unittest import mock

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import OpenAI

import llmaudit
from llmaudit import AuditRecord, Redactor

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.codec import encode_record
from llmaudit.redact.detectors import MIN_RUN, RULES, candidates
from llmaudit.redact.folding import _CF_RANGES, FORMAT_CHARS, fold, needs_fold

_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"


def _chars(n: int, alphabet: str = _ALNUM, seed: int = 0) -> str:
    """*n* characters of *alphabet*, mixed like a random key (fixed seed: the tests are exact)."""
    rng = random.Random(f"{seed}-{n}-{alphabet}")
    while True:
        text = "".join(rng.choice(alphabet) for _ in range(n))
        if len(set(alphabet) & set(string.digits)) == 0 or any(c.isdigit() for c in text):
            return text


def _pem() -> str:
    body = "\n".join(_chars(64, _ALNUM + "+/", seed=k) for k in range(4))
    kind = "RSA " + "PRIVATE KEY"
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


def _jwt() -> str:
    head = "ey" + "J" + _chars(30, seed=1)
    payload = "ey" + "J" + _chars(40, seed=2)
    return f"{head}.{payload}.{_chars(43, _ALNUM + '_-', seed=3)}"


_AWS_ID = "AK" + "IA" + _chars(16, string.ascii_uppercase + string.digits)
_AWS_SECRET = _chars(40, _ALNUM + "/+", seed=4)

#: (detector name, fake secret, the text around it: "{}" is the secret). One or more per rule.
CASES: list[tuple[str, str, str]] = [
    ("private_key", _pem(), "my key:\n{}\nthanks"),
    ("aws_secret_key", _AWS_SECRET, "aws_secret_access_key = {}\nregion = x"),
    ("aws_secret_key", _AWS_SECRET, '{{"SecretAccessKey": "{}"}}'),
    ("github_token", "gh" + "p_" + _chars(36), "token {} ok"),
    ("github_token", "gh" + "o_" + _chars(36), "token {} ok"),
    ("github_token", "gh" + "u_" + _chars(36), "token {} ok"),
    ("github_token", "gh" + "s_" + _chars(36), "token {} ok"),
    ("github_token", "gh" + "r_" + _chars(36), "token {} ok"),
    ("github_token", "github" + "_pat_" + _chars(22) + "_" + _chars(59), "token {} ok"),
    ("gitlab_token", "gl" + "pat-" + _chars(20), "token {} ok"),
    ("gitlab_token", "gl" + "rt-" + _chars(20), "token {} ok"),
    ("gitlab_token", "gl" + "ptt-" + _chars(40, _HEX), "token {} ok"),
    (
        "slack_token",
        "xo" + "xb-" + _chars(12, string.digits) + "-" + _chars(13, string.digits) + "-" + _chars(24),
        "{}",
    ),
    (
        "slack_token",
        "xo" + "xp-" + "-".join(_chars(11, string.digits, k) for k in range(3)) + "-" + _chars(32),
        "{}",
    ),
    ("slack_token", "xo" + "xa-2-" + _chars(30), "use {}."),
    (
        "slack_token",
        "xa" + "pp-1-" + _chars(11).upper() + "-" + _chars(13, string.digits) + "-" + _chars(64, _HEX),
        "{}",
    ),
    (
        "webhook_url",
        "https://hooks." + "slack.com/services/T" + _chars(8) + "/B" + _chars(8) + "/" + _chars(24),
        "post to {} now",
    ),
    (
        "webhook_url",
        "https://discord.com/api/" + "webhooks/" + _chars(18, string.digits) + "/" + _chars(68),
        "post to {} now",
    ),
    ("jwt", _jwt(), "session {} end"),
    ("groq_key", "gs" + "k_" + _chars(52), "GROQ_API_KEY={}"),
    ("huggingface_token", "hf" + "_" + _chars(34, string.ascii_letters), "HF_TOKEN={}"),
    ("stripe_key", "sk" + "_live_" + _chars(24), "key {} ok"),
    ("stripe_key", "rk" + "_live_" + _chars(24), "key {} ok"),
    ("stripe_key", "sk" + "_test_" + _chars(24), "key {} ok"),
    ("stripe_key", "wh" + "sec_" + _chars(32), "key {} ok"),
    ("google_oauth", "GOC" + "SPX-" + _chars(28), "client_secret: {}"),
    ("google_oauth", "ya" + "29." + _chars(60, _ALNUM + "_-"), "access {}"),
    ("npm_token", "np" + "m_" + _chars(36), "//registry.npmjs.org/:_authToken={}"),
    ("sendgrid_key", "S" + "G." + _chars(22) + "." + _chars(43), "SENDGRID={}"),
    ("twilio_key", "S" + "K" + _chars(32, _HEX), "twilio {} ok"),
    (
        "telegram_bot_token",
        _chars(10, string.digits) + ":AA" + _chars(33),
        "https://api.telegram.org/bot{}/getMe",
    ),
    ("pypi_token", "pypi-" + "AgEIcHlwaS5vcmc" + _chars(70), "password = {}"),
    ("digitalocean_token", "do" + "p_v1_" + _chars(64, _HEX), "{}"),
    ("databricks_token", "da" + "pi" + _chars(32, _HEX), "token {} ok"),
    ("shopify_token", "sh" + "pat_" + _chars(32, _HEX), "token {} ok"),
    ("perplexity_key", "pp" + "lx-" + _chars(48), "key {} ok"),
    ("xai_key", "xa" + "i-" + _chars(80), "key {} ok"),
    ("replicate_token", "r8" + "_" + _chars(37), "key {} ok"),
    ("age_secret_key", "AGE-" + "SECRET-KEY-1" + _chars(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"), "{}"),
    ("vault_token", "hv" + "s." + _chars(95, _ALNUM + "_-"), "VAULT_TOKEN={}"),
    ("linear_key", "lin" + "_api_" + _chars(40), "key {} ok"),
    ("notion_token", "nt" + "n_" + _chars(11, string.digits) + _chars(35), "key {} ok"),
    ("postman_key", "PM" + "AK-" + _chars(24, _HEX) + "-" + _chars(34, _HEX), "key {} ok"),
    ("pulumi_token", "pu" + "l-" + _chars(40, _HEX), "key {} ok"),
    ("sentry_token", "sn" + "tryu_" + _chars(64, _HEX), "key {} ok"),
    ("heroku_key", "HR" + "KU-AA" + _chars(58), "key {} ok"),
    ("doppler_token", "dp" + ".pt." + _chars(43), "key {} ok"),
    ("azure_client_secret", _chars(3) + "8" + "Q~" + _chars(34, _ALNUM + "_~.-"), "secret {} ok"),
    ("atlassian_token", "ATA" + "TT3" + _chars(186, _ALNUM + "_-="), "key {} ok"),
    ("square_token", "sq" + "0atp-" + _chars(22), "key {} ok"),
    ("bedrock_key", "AB" + "SK" + _chars(120, _ALNUM + "+/"), "key {} ok"),
    ("onepassword_token", "ops" + "_eyJ" + _chars(250), "key {} ok"),
    ("mailchimp_key", _chars(32, _HEX) + "-us" + "12", "key {} ok"),
    ("facebook_token", "EA" + "AC" + _chars(120), "key {} ok"),
]


def _content(secret_text: str, **redactor: Any) -> tuple[Any, tuple[str, ...]]:
    record = AuditRecord(request={"model": "m", "messages": [{"role": "user", "content": secret_text}]})
    out = Redactor(**redactor)(record)
    assert out is not None
    return out.request["messages"][0]["content"], out.notes


def test_every_catalogue_rule_has_a_case() -> None:
    """A rule added to the catalogue without a test here fails this test."""
    assert {rule.name for rule in RULES} == {name for name, _, _ in CASES}


def test_every_rule_match_is_long_enough_for_the_prefilter() -> None:
    """`candidates` looks for keywords only inside runs of at least MIN_RUN token characters: a rule
    that could match something shorter would slip past it (the private key block is found by its
    BEGIN line, the AWS secret by its 40 characters)."""
    # private: the standard library's regex parser, to walk the detectors' patterns
    parse = re._parser.parse  # type: ignore[attr-defined]
    for rule in RULES:
        if rule.name not in ("private_key", "aws_secret_key"):
            assert parse(rule.regex).getwidth()[0] >= MIN_RUN, rule.name


@pytest.mark.parametrize(
    ("name", "secret", "around"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_the_prefilter_names_the_rule_of_each_token(name: str, secret: str, around: str) -> None:
    assert name in candidates(around.format(secret).encode())


@pytest.mark.parametrize(
    ("name", "secret", "around"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_rule_replaces_its_token_in_message_content(name: str, secret: str, around: str) -> None:
    """The token (and only the token) becomes [REDACTED:<name>]; the text around it is kept and
    a second pass changes nothing (idempotency)."""
    text = around.format(secret)
    content, notes = _content(text)
    assert content == around.format(f"[REDACTED:{name}]")
    assert notes == (f"redacted: 1 {name}",)
    assert _content(content)[0] == content


def test_an_aws_secret_next_to_its_access_key_id_is_caught() -> None:
    """A credentials CSV line or a pasted pair: the 40-character secret after an access key id."""
    content, notes = _content(f"id {_AWS_ID}, secret {_AWS_SECRET} done")
    assert content == "id [REDACTED:aws_key], secret [REDACTED:aws_secret_key] done"
    assert notes == ("redacted: 1 aws_secret_key, 1 aws_key",)


def test_a_longer_paste_of_a_token_is_redacted_whole() -> None:
    """No tail of a token longer than its usual length is left readable."""
    tail = _chars(12, seed=9)
    token = "gh" + "p_" + _chars(36) + tail
    content, _ = _content(f"x {token} y")
    assert content == "x [REDACTED:github_token] y"


# -- keys disguised by Unicode ------------------------------------------------------------------------

_GITHUB = "gh" + "p_" + _chars(36)
_FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


@pytest.mark.parametrize(
    ("disguised", "label"),
    [
        ("\u200b".join(_GITHUB), "zero-width space between every character"),
        (_GITHUB[:6] + "\u200d" + _GITHUB[6:20] + "\u2060" + _GITHUB[20:], "joiners inside"),
        (_GITHUB[:3] + "\u00ad" + _GITHUB[3:], "soft hyphen"),
        (_GITHUB[:10] + "\ufeff" + _GITHUB[10:], "byte order mark"),
        (_GITHUB.translate(_FULLWIDTH), "full-width letters"),
        (_GITHUB[:8].translate(_FULLWIDTH) + "\u200c" + _GITHUB[8:], "both"),
    ],
)
def test_a_key_split_by_format_characters_or_in_full_width_is_caught(disguised: str, label: str) -> None:
    """Matching happens on the folded text (format characters removed, NFKC); the ORIGINAL span,
    disguise included, is what is replaced."""
    prefix = "ﬁle №5 café: "  # characters NFKC expands or changes: the index map must keep them
    content, notes = _content(f"{prefix}{disguised} end")
    assert content == f"{prefix}[REDACTED:github_token] end", label
    assert notes == ("redacted: 1 github_token",)
    assert _content(content)[0] == content


def test_folded_detection_covers_the_older_detectors_and_cards() -> None:
    openai = "sk-" + "proj-" + _chars(30)
    card = "4111 1111 1111 1111".translate(_FULLWIDTH)
    content, notes = _content(f"a {chr(0x200B).join(openai)} b {card} c")
    assert content == "a [REDACTED:openai_key] b [REDACTED:card] c"
    assert notes == ("redacted: 1 openai_key, 1 card",)


def test_the_format_character_table_matches_unicodedata() -> None:
    """`_CF_RANGES` holds every character of category Cf in this Python's Unicode database (newer
    databases add a few: the table may list characters this one has not assigned yet)."""
    expected = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}
    listed = {c for a, b in _CF_RANGES for c in range(a, b + 1)}
    assert expected <= listed
    assert {unicodedata.category(chr(c)) for c in listed - expected} <= {"Cn"}
    assert all(FORMAT_CHARS.fullmatch(chr(c)) for c in listed)


def test_every_character_that_can_hide_in_a_key_makes_the_text_folded() -> None:
    """Zero-width and other format characters of the General Punctuation block, the BOM, the soft
    hyphen, the tag characters and the full-width forms: each one is noticed, in any text."""
    hiding = [c for c in range(0x2000, 0x2070) if unicodedata.category(chr(c)) == "Cf"]
    hiding += [0xFEFF, 0x00AD, 0xE0001, *range(0xE0020, 0xE0080), *range(0xFF01, 0xFF5F)]
    for c in hiding:
        assert needs_fold(f"caf\u00e9 a{chr(c)}b"), hex(c)
    assert not needs_fold("Größe über Straße, naïve café \u2014 \u201cquoted\u201d 東京")


def test_fold_maps_every_character_back_to_its_origin() -> None:
    text = "aﬁ\u200bb"
    folded, origin = fold(text)
    assert folded == "afib"
    assert origin == [0, 1, 1, 3, 4]


# -- card numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card", ["4111.1111.1111.1111", "4111  1111  1111  1111", "3782.822463.10005", "5555 5555.5555 4444"]
)
def test_card_numbers_with_dots_or_double_spaces_are_caught(card: str) -> None:
    content, notes = _content(f"pay with {card} today")
    assert content == "pay with [REDACTED:card] today"
    assert notes == ("redacted: 1 card",)


def test_card_numbers_as_json_numbers_are_caught_wherever_they_are() -> None:
    """An int in the payload (request, response, metadata, in a dict or a list) is checked like the
    digits in a string: Luhn-valid, 13-19 digits."""
    card = int("4" + "1" * 15)
    record = AuditRecord(
        request={"card": card, "cards": [card, -card], "order": 1234567890123, "n": 5},
        response={"nested": {"pan": int("378282246310005")}},
        metadata={"card": card, "big": 10**25, "huge": 10**5000},
    )
    out = Redactor()(record)
    assert out is not None
    assert out.request == {
        "card": "[REDACTED:card]",
        "cards": ["[REDACTED:card]", "[REDACTED:card]"],
        "order": 1234567890123,  # 13 digits, Luhn-invalid: a number, kept as it is
        "n": 5,
    }
    assert out.response == {"nested": {"pan": "[REDACTED:card]"}}
    assert out.metadata == {"card": "[REDACTED:card]", "big": 10**25, "huge": 10**5000}
    assert out.notes == ("redacted: 5 card",)
    assert Redactor(detectors=["email"])(record) is record


@pytest.mark.parametrize(
    "text",
    [
        "pi is 3.14159265358979 and e is 2.718281828459045",
        "version 1.2.3.4 at 10.0.0.1 and 192.168.100.200",
        "4111.1111.1111.1112",  # Luhn-invalid
        "12345.67890.12345",  # Luhn-invalid dotted
        "3.1415926535897932",  # 17 digits after one dot: a decimal, even if Luhn-valid
    ],
)
def test_dotted_numbers_that_are_not_cards_are_kept(text: str) -> None:
    record = AuditRecord(request={"messages": [{"role": "user", "content": text}]})
    assert Redactor()(record) is record


# -- false positives -----------------------------------------------------------------------------------

ORDINARY = [
    "The quick brown fox jumps over the lazy dog. Ask the TASK force about the DESK and RISK list.",
    "uuid 123e4567-e89b-12d3-a456-426614174000 and 550e8400-e29b-41d4-a716-446655440000",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b, sha256 "
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    'md5 d41d8cd98f00b204e9800998ecf8427e and the ETag W/"5e8f-1a2b3c"',
    "def hf_load(model_name: str) -> None: return sk_live_mode or gsk_ready or npm_install",
    "see https://learn.microsoft.com/en-us/azure/ai-services/openai/overview for details",
    "x = {'api_key': os.environ['OPENAI_API_KEY'], 'token': None}; aws_secret_access_key = os.getenv('K')",
    "The JWT spec (RFC 7519) says a token looks like header.payload.signature in base64url.",
    "-----BEGIN CERTIFICATE-----\nMIIB" + "A" * 40 + "\n-----END CERTIFICATE-----",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host"[:60],
    "Timestamps 2026-12-04T17:22:46Z, 1733320000 and durations 12.5ms; totals 1,234,567.89",
    "base64 aGVsbG8gd29ybGQ= and hex 0xDEADBEEF, path /usr/lib/python3/dist-packages",
    "Größe über Straße, naïve café — 東京\uff0c大阪\uff1a「こんにちは」",  # full-width punctuation
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_prose_code_uuids_and_hashes_are_not_redacted(text: str) -> None:
    record = AuditRecord(
        request={"messages": [{"role": "user", "content": text}]},
        response={"text": text},
        metadata={"m": text},
    )
    assert Redactor()(record) is record


# -- end to end: nothing reaches storage ---------------------------------------------------------------

_SECRETS = [secret for _, secret, _ in CASES] + [_AWS_ID, _GITHUB.translate(_FULLWIDTH)]
#: Each secret in its context (an AWS secret is recognised by its key name or its access key id).
_TEXTS = [around.format(secret) for _, secret, around in CASES] + [
    f"{_AWS_ID} {_AWS_SECRET}",
    _GITHUB.translate(_FULLWIDTH),
]


def _handler(request: httpx2.Request) -> httpx2.Response:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "echo:\n" + "\n".join(_TEXTS)},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    return httpx2.Response(200, json=body)


def _needles(secret: str) -> list[bytes]:
    """The secret, and its longest line, as stored bytes (JSON escapes newlines and slashes vary)."""
    longest = max(secret.replace("/", "\n").splitlines(), key=len)
    return [secret.encode(), longest.encode(), longest.encode("unicode_escape")]


def test_no_catalogue_token_reaches_the_jsonl_files_or_the_sqlite_database(tmp_path: Path) -> None:
    """The real OpenAI SDK over httpx2 with a MockTransport: every fake token in the prompt and in the
    answer, written through the default Redactor to JSONL and SQLite; the stored bytes hold none."""
    for url in (f"jsonl://{tmp_path / 'log'}", f"sqlite:///{tmp_path / 'audit.db'}"):
        with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
            transport = llmaudit.AuditTransport(httpx2.MockTransport(_handler), auditor=auditor)
            client = OpenAI(
                api_key="fake",
                base_url="https://api.openai.com/v1",
                http_client=httpx2.Client(transport=transport),
            )
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "\n".join(_TEXTS)}]
            )
            client.close()
            auditor.flush()
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"[REDACTED:github_token]" in raw and b"[REDACTED:private_key]" in raw
    for secret in _SECRETS:
        for needle in _needles(secret):
            assert needle not in raw, f"{secret[:12]}... reached storage"


# -- the fast path -------------------------------------------------------------------------------------

_PIECES = [
    *(secret for _, secret, _ in CASES[::3]),
    _AWS_ID,
    _AWS_SECRET,
    "aws_secret_access_key=",
    "\u200b",
    "\u00ad",
    "\uff47\uff48\uff50\uff3f",  # full-width "ghp_"
    "4111.1111.1111.1111",
    "4111  1111",
    "1111 1111",
    "-----BEGIN",
    ".ey",
    "ghp_",
    "xoxb-",
    "https://example.com/",
    "lorem ipsum ",
    "caf\u00e9 ",
    "0123456789",
    " ",
]


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.lists(st.sampled_from(_PIECES), max_size=5).map("".join), min_size=4, max_size=4),
    number=st.sampled_from([0, 5, 1234567890123, int("4" + "1" * 15), -int("5555555555554444")]),
)
def test_the_fast_path_never_skips_a_record_the_walk_would_change(texts: list[str], number: int) -> None:
    """`_nothing_to_do` decides on the record's JSON bytes: with catalogue tokens, disguised keys,
    dotted cards and card numbers as JSON numbers anywhere, it must never skip a record the full
    walk would change."""
    request, response, url, error = texts
    record = AuditRecord(
        request={"messages": [{"role": "user", "content": request}], "n": number},
        response={"text": response},
        url="https://api.example.com/v1?q=" + url,
        error=error,
    )
    redactor = Redactor()
    fast = redactor(record)
    with mock.patch.object(Redactor, "_nothing_to_do", return_value=False):
        walked = redactor(record)
    assert fast is not None and walked is not None
    assert encode_record(fast) == encode_record(walked)
