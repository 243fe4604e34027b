"""The redaction processor: path rules, large values, secret detectors, fallbacks and idempotency."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import replace
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# private: internal-error accounting (the guard) and the internal error classes
from llmaudit import AuditRecord, ConfigurationError, _guard
from llmaudit.record.codec import dumps, encode_record, loads
from llmaudit.redact.redactor import DEFAULT_MAX_VALUE_BYTES, DETECTORS, Redactor, Rule

OPENAI = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
OPENAI_SVC = "sk-svcacct-abcdefghijklmnopqrstuvwxyz012345"
OPENAI_LEGACY = "sk-" + "a1B2c3D4e5" * 4 + "ZZZZZZZZ"
ANTHROPIC = "sk-ant-api03-Xy9_Zq8-Wv7Ut6Sr5Qp4On3Ml2Kj1Ih0Gf"
GOOGLE = "AIza" + "SyB-3xQ_7vL9mK2pN4rT6wY8zA1cE5gJ0hU"
AWS = "AKIAIOSFODNN7EXAMPLE"
AWS_SESSION = "ASIAY34FZKBOKMUTVV7A"
EMAIL = "jane.doe+audit@mail.example.co.uk"
VISA = "4111 1111 1111 1111"
FAKE_KEY = "sk-TESTFAKE0123456789abcdefghij"


def redacted(record: AuditRecord, **options: Any) -> AuditRecord:
    result = Redactor(**options)(record)
    assert result is not None
    return result


def content_of(record: AuditRecord) -> str:
    request = record.request
    assert isinstance(request, dict)
    value = request["messages"][0]["content"]
    assert isinstance(value, str)
    return value


def chat(text: str) -> AuditRecord:
    return AuditRecord(request={"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})


def hmac_hex(key: bytes, value: Any) -> str:
    return "hmac-sha256:" + hmac.new(key, dumps(value), hashlib.sha256).hexdigest()


# -- detectors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("openai_key", OPENAI),
        ("openai_key", OPENAI_SVC),
        ("openai_key", OPENAI_LEGACY),
        ("anthropic_key", ANTHROPIC),
        ("google_key", GOOGLE),
        ("bearer", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig_nature-123"),
        ("bearer", "bearer abcdefgh12345678"),
        ("bearer", "BEARER abc.def~ghi/jkl+mno="),
        ("aws_key", AWS),
        ("aws_key", AWS_SESSION),
        ("email", EMAIL),
        ("email", "a@b.cd"),
        ("card", VISA),
        ("card", "4111-1111-1111-1111"),
        ("card", "4111111111111111"),
        ("card", "378282246310005"),  # Amex test number, 15 digits
        ("card", "3782 822463 10005"),
    ],
)
def test_each_detector_replaces_its_secret_inside_a_string(name: str, secret: str) -> None:
    """The match is replaced in place by [REDACTED:<name>], the text around it is kept."""
    result = redacted(chat(f"before {secret} after"))
    assert content_of(result) == f"before [REDACTED:{name}] after"
    assert result.notes == (f"redacted: 1 {name}",)


@pytest.mark.parametrize(
    "text",
    [
        "sk-short-key",  # fewer than 20 characters after sk-
        "the task-force-assignment list",  # no "sk-" followed by 20 key characters
        "AIza-too-short",
        "the bearer of bad news",  # a token needs 8 characters
        "AKIA1234",
        "MALAYSIAAIRLINES2024FLIGHTS",  # ASIA inside a longer upper-case word
        "user at example dot com",
        "mail me @ home.example",
        "4111 1111 1111 1112",  # Luhn-invalid
        "4111111111111112",
        "order 123456789012",  # 12 digits: too short for a card
        "12345678901234567890123",  # 23 digits in a row: not a card
        "version 2.3.1 at 12:45, total 1234.56",
    ],
)
def test_detectors_leave_look_alikes_alone(text: str) -> None:
    record = chat(text)
    assert Redactor()(record) is record


def test_anthropic_keys_are_classified_as_anthropic_not_openai() -> None:
    result = redacted(chat(f"{ANTHROPIC} and {OPENAI}"))
    assert content_of(result) == "[REDACTED:anthropic_key] and [REDACTED:openai_key]"
    assert DETECTORS["openai_key"].search(ANTHROPIC) is None
    assert DETECTORS["anthropic_key"].fullmatch(ANTHROPIC) is not None


def test_card_numbers_need_a_valid_luhn_checksum() -> None:
    result = redacted(chat("valid 4111 1111 1111 1111, invalid 4111 1111 1111 1112, valid 5555555555554444"))
    assert content_of(result) == "valid [REDACTED:card], invalid 4111 1111 1111 1112, valid [REDACTED:card]"
    assert result.notes == ("redacted: 2 card",)


def test_a_card_inside_a_longer_run_of_digit_groups_is_still_found() -> None:
    """Digits before and after the card in the same run do not hide it."""
    assert content_of(redacted(chat("ref 12 4111 1111 1111 1111 99"))) == "ref 12 [REDACTED:card] 99"
    # 20 digits in one run: some Luhn-valid window of whole groups covering the card is replaced
    result = content_of(redacted(chat("1 2 3 4 4111 1111 1111 1111")))
    assert result.endswith("[REDACTED:card]")
    assert "1111" not in result


def test_bearer_keeps_an_api_key_classified_as_the_key() -> None:
    result = redacted(chat(f"Authorization: Bearer {OPENAI}"))
    assert content_of(result) == "Authorization: Bearer [REDACTED:openai_key]"


def test_several_matches_are_counted_per_detector_and_the_note_holds_no_secret() -> None:
    record = AuditRecord(
        request={"messages": [{"role": "user", "content": f"{OPENAI} {OPENAI_SVC} {EMAIL}"}]},
        response={"choices": [{"message": {"content": f"got {ANTHROPIC}"}}]},
        notes=("earlier note",),
    )
    result = redacted(record)
    assert result.notes == ("earlier note", "redacted: 1 anthropic_key, 2 openai_key, 1 email")
    encoded = encode_record(result).decode()
    for secret in (OPENAI, OPENAI_SVC, EMAIL, ANTHROPIC):
        assert secret not in encoded


def test_only_the_selected_detectors_run() -> None:
    record = chat(f"{OPENAI} {EMAIL}")
    assert content_of(redacted(record, detectors=["email"])) == f"{OPENAI} [REDACTED:email]"
    assert content_of(redacted(record, detectors="openai_key")) == f"[REDACTED:openai_key] {EMAIL}"
    assert Redactor(detectors=False)(record) is record
    assert Redactor(detectors=())(record) is record


def test_secrets_are_found_in_every_scanned_field() -> None:
    record = AuditRecord(
        request={"messages": [{"role": "user", "content": f"key {OPENAI}"}]},
        response={"error": {"message": f"Incorrect API key provided: {OPENAI}"}},
        metadata={"owner": EMAIL, "nested": {"list": [f"token {GOOGLE}"]}},
        error=f"401 Unauthorized for Bearer abcdefghijklmnop (key {ANTHROPIC})",
        url=f"https://generativelanguage.googleapis.com/v1/models?key={GOOGLE}",
        headers={"user-agent": "MyApp/1.0", "x-debug": f"key={OPENAI}"},
        tags=("prod", f"owner:{EMAIL}"),
        notes=(f"retried with {AWS}",),
    )
    result = redacted(record)
    assert result.request == {"messages": [{"role": "user", "content": "key [REDACTED:openai_key]"}]}
    assert result.response == {"error": {"message": "Incorrect API key provided: [REDACTED:openai_key]"}}
    assert result.metadata == {
        "owner": "[REDACTED:email]",
        "nested": {"list": ["token [REDACTED:google_key]"]},
    }
    assert result.error == "401 Unauthorized for [REDACTED:bearer] (key [REDACTED:anthropic_key])"
    assert result.url == "https://generativelanguage.googleapis.com/v1/models?key=[REDACTED:google_key]"
    assert result.headers == {"user-agent": "MyApp/1.0", "x-debug": "key=[REDACTED:openai_key]"}
    assert result.tags == ("prod", "owner:[REDACTED:email]")
    assert result.notes[0] == "retried with [REDACTED:aws_key]"
    encoded = encode_record(result).decode()
    for secret in (OPENAI, ANTHROPIC, GOOGLE, AWS, EMAIL, "abcdefghijklmnop"):
        assert secret not in encoded


def test_grouping_fields_keep_emails_but_hash_credentials() -> None:
    """session_key, parent_session_key, user and client group the log: an e-mail address stays as given
    (it is how many apps name their users); a credential makes the whole value its keyed hash, the
    same for the same value, so the records still group and a nested session still names its parent."""
    key = b"k" * 32
    record = AuditRecord(
        session_key=f"session-{OPENAI}",
        parent_session_key="parent-jane@example.com",
        user="jane@example.com",
        client=f"client {OPENAI}",
        request={"user": "jane@example.com"},
    )
    result = redacted(record, hash_key=key)
    assert result.request == {"user": "[REDACTED:email]"}
    assert result.session_key == hmac_hex(key, f"session-{OPENAI}")
    assert result.parent_session_key == "parent-jane@example.com"
    assert result.user == "jane@example.com"
    assert result.client == hmac_hex(key, f"client {OPENAI}")
    assert result.notes == ("redacted: 2 openai_key, 1 email",)
    child = redacted(AuditRecord(parent_session_key=f"session-{OPENAI}"), hash_key=key)
    assert child.parent_session_key == result.session_key
    assert redacted(result, hash_key=key).session_key == result.session_key  # idempotent


def test_dict_keys_are_scanned_like_values() -> None:
    """A JSON object keyed by a secret (metadata keyed by tokens, a header name) loses the secret;
    keys made equal by their markers are numbered so that no value is lost."""
    record = AuditRecord(
        request={EMAIL: "value", "inner": [{OPENAI: 1, FAKE_KEY: 2, "plain": 3}]},
        metadata={f"user {AWS}": "x"},
        headers={"request": {f"x-stainless-{OPENAI}": "1"}},
    )
    result = redacted(record)
    assert result.request == {
        "[REDACTED:email]": "value",
        "inner": [{"[REDACTED:openai_key]": 1, "[REDACTED:openai_key]#2": 2, "plain": 3}],
    }
    assert result.metadata == {"user [REDACTED:aws_key]": "x"}
    assert result.headers == {"request": {"x-stainless-[REDACTED:openai_key]": "1"}}
    assert redacted(result) is result  # idempotent: nothing left to find
    plain = AuditRecord(request={"messages": [{"role": "user", "content": "hi"}]}, metadata={"sk-short": 1})
    assert Redactor()(plain) is plain


def test_an_unchanged_record_is_returned_as_the_same_object() -> None:
    record = AuditRecord(
        request={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there, how are you?"}]},
        response={"choices": [{"message": {"content": "Fine, thanks. Call 555-0100."}}], "usage": {"n": 3}},
        metadata={"env": "prod"},
        error="timeout after 30 s",
        url="https://api.openai.com/v1/chat/completions",
        tags=("a", "b"),
        notes=("note",),
    )
    assert Redactor(["messages[*].name", "metadata.secret"])(record) is record


def test_the_input_payload_is_not_mutated() -> None:
    request = {"messages": [{"role": "user", "content": f"key {OPENAI}"}, {"role": "user", "content": "ok"}]}
    snapshot = loads(dumps(request))
    record = AuditRecord(request=request)
    result = redacted(record, rules=["messages[1].role"])
    assert request == snapshot
    assert record.request is request
    assert result.request == {
        "messages": [
            {"role": "user", "content": "key [REDACTED:openai_key]"},
            {"role": "[REDACTED]", "content": "ok"},
        ]
    }


def test_values_outside_json_are_scanned_as_the_text_the_codec_would_store() -> None:
    class Secretive:
        def __repr__(self) -> str:
            return f"Secretive(key={OPENAI!r})"

    result = redacted(AuditRecord(request={"obj": Secretive(), "raw": OPENAI.encode()}))
    assert result.request == {
        "obj": "Secretive(key='[REDACTED:openai_key]')",
        "raw": "b'[REDACTED:openai_key]'",
    }
    assert OPENAI not in encode_record(result).decode()


# -- path rules --------------------------------------------------------------------------------------


def test_list_wildcard_masks_every_item() -> None:
    record = AuditRecord(
        request={"messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]},
        response={"messages": [{"content": "c"}]},
    )
    result = redacted(record, rules=["messages[*].content"])
    assert result.request == {
        "messages": [{"role": "system", "content": "[REDACTED]"}, {"role": "user", "content": "[REDACTED]"}]
    }
    assert result.response == {"messages": [{"content": "[REDACTED]"}]}  # no prefix: both payloads


def test_request_and_response_prefixes_select_one_payload() -> None:
    record = AuditRecord(request={"input": "question"}, response={"input": "echo"})
    assert redacted(record, rules=["request.input"]).response == {"input": "echo"}
    assert redacted(record, rules=["request.input"]).request == {"input": "[REDACTED]"}
    assert redacted(record, rules=["response.input"]).request == {"input": "question"}
    assert redacted(record, rules=["response.input"]).response == {"input": "[REDACTED]"}


def test_response_path_into_choices() -> None:
    record = AuditRecord(
        response={"choices": [{"message": {"role": "assistant", "content": "secret answer"}}]},
    )
    result = redacted(record, rules=[Rule("response.choices[*].message.content", "drop")])
    assert result.response == {"choices": [{"message": {"role": "assistant"}}]}


def test_metadata_prefix_and_unprefixed_rules_do_not_touch_metadata() -> None:
    record = AuditRecord(metadata={"email": "x", "team": "core"}, request={"email": "y"})
    result = redacted(record, rules=["metadata.email"])
    assert result.metadata == {"email": "[REDACTED]", "team": "core"}
    assert result.request == {"email": "y"}
    assert redacted(record, rules=["email"]).metadata == {"email": "x", "team": "core"}
    assert redacted(record, rules=[Rule("metadata.*", "drop")]).metadata == {}


def test_index_segments_including_negative_ones() -> None:
    record = AuditRecord(request={"messages": ["first", "middle", "last"]})
    assert redacted(record, rules=["messages[0]"]).request == {"messages": ["[REDACTED]", "middle", "last"]}
    assert redacted(record, rules=["messages[-1]"]).request == {"messages": ["first", "middle", "[REDACTED]"]}
    assert redacted(record, rules=[Rule("messages[1]", "drop")]).request == {"messages": ["first", "last"]}
    assert Redactor(["messages[5]"])(record) is record  # out of range: nothing to do


def test_star_key_selects_every_value_of_an_object() -> None:
    record = AuditRecord(request={"headers": {"x-api-key": "k1", "x-org": "o1"}, "other": 1})
    assert redacted(record, rules=["headers.*"]).request == {
        "headers": {"x-api-key": "[REDACTED]", "x-org": "[REDACTED]"},
        "other": 1,
    }


def test_quoted_keys_may_contain_dots_brackets_and_quotes() -> None:
    record = AuditRecord(
        request={"a.b": {"c": 1}, "a": {"b": {"c": 2}}, 'we"ird]': 3, "x": {"y.z": [{"k": 4}]}},
    )
    result = redacted(record, rules=['["a.b"].c', '["we\\"ird]"]', 'x["y.z"][*].k'])
    assert result.request == {
        "a.b": {"c": "[REDACTED]"},
        "a": {"b": {"c": 2}},
        'we"ird]': "[REDACTED]",
        "x": {"y.z": [{"k": "[REDACTED]"}]},
    }


def test_a_quoted_prefix_is_an_ordinary_key() -> None:
    record = AuditRecord(request={"request": {"id": "abc"}, "id": "def"})
    assert redacted(record, rules=['["request"].id']).request == {
        "request": {"id": "[REDACTED]"},
        "id": "def",
    }


def test_nested_list_wildcards_gemini_contents() -> None:
    record = AuditRecord(
        request={
            "contents": [
                {"role": "user", "parts": [{"text": "one"}, {"inline_data": {"mime_type": "image/png"}}]},
                {"role": "model", "parts": [{"text": "two"}]},
            ]
        }
    )
    result = redacted(record, rules=["contents[*].parts[*].text"])
    assert result.request == {
        "contents": [
            {"role": "user", "parts": [{"text": "[REDACTED]"}, {"inline_data": {"mime_type": "image/png"}}]},
            {"role": "model", "parts": [{"text": "[REDACTED]"}]},
        ]
    }


def test_drop_removes_keys_and_list_items() -> None:
    record = AuditRecord(request={"input": "text", "messages": [{"content": "a"}, {"content": "b"}], "k": 1})
    assert redacted(record, rules=[Rule("input", "drop")]).request == {
        "messages": [{"content": "a"}, {"content": "b"}],
        "k": 1,
    }
    assert redacted(record, rules=[{"path": "messages[*]", "action": "drop"}]).request == {
        "input": "text",
        "messages": [],
        "k": 1,
    }
    assert redacted(record, rules=[Rule("messages[*].content", "drop")]).request == {
        "input": "text",
        "messages": [{}, {}],
        "k": 1,
    }


def test_whole_payload_rules() -> None:
    record = AuditRecord(request={"input": "text"}, response={"output": "text"})
    dropped = redacted(record, rules=[Rule("request", "drop")])
    assert dropped.request is None
    assert dropped.response == {"output": "text"}
    assert redacted(record, rules=["response"]).response == "[REDACTED]"


def test_rules_on_missing_paths_or_wrong_types_change_nothing() -> None:
    record = AuditRecord(request={"messages": "not a list", "input": ["a"]}, response=None)
    rules = ["messages[*].content", "input.text", "missing.key", "input[3]", "choices[0].message"]
    assert Redactor(rules)(record) is record


def test_hash_groups_equal_values_and_depends_on_the_key() -> None:
    record = AuditRecord(
        request={"messages": [{"content": "same"}, {"content": "same"}, {"content": "other"}]},
        metadata={"email": {"nested": ["json", 1]}},
    )
    rules = [Rule("messages[*].content", "hash"), Rule("metadata.email", "hash")]
    result = redacted(record, rules=rules, hash_key=b"k1")
    assert isinstance(result.request, dict)
    first, second, third = (m["content"] for m in result.request["messages"])
    assert first == second == hmac_hex(b"k1", "same")
    assert third == hmac_hex(b"k1", "other")
    assert first != third
    assert result.metadata == {"email": hmac_hex(b"k1", {"nested": ["json", 1]})}
    other_key = redacted(record, rules=rules, hash_key="k2")
    assert isinstance(other_key.request, dict)
    assert other_key.request["messages"][0]["content"] == hmac_hex(b"k2", "same") != first
    assert redacted(record, rules=rules, hash_key="k1") == result  # a str key is its UTF-8 bytes


def test_hash_key_comes_from_the_environment_or_a_per_process_random_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = AuditRecord(request={"input": "value"})
    rules = [Rule("input", "hash")]
    default_a = redacted(record, rules=rules).request
    default_b = redacted(record, rules=rules).request
    assert default_a == default_b  # one random key per process
    monkeypatch.setenv("LLMAUDIT_REDACT_KEY", "from-env")
    assert redacted(record, rules=rules).request == {"input": hmac_hex(b"from-env", "value")}
    assert redacted(record, rules=rules, hash_key="explicit").request == {
        "input": hmac_hex(b"explicit", "value")
    }


def test_the_key_never_shows_in_the_repr() -> None:
    text = repr(Redactor(["a"], hash_key="super-secret-key"))
    assert "super-secret-key" not in text
    assert "Rule(path='a', action='mask')" in text


def test_rules_accept_rules_dicts_and_strings() -> None:
    record = AuditRecord(request={"a": 1, "b": 2, "c": 3})
    rules: list[Any] = [Rule("a", "drop"), {"path": "b", "action": "hash"}, "c"]
    result = redacted(record, rules=rules, hash_key=b"k")
    assert result.request == {"b": hmac_hex(b"k", 2), "c": "[REDACTED]"}
    assert redacted(record, rules="a").request == {"a": "[REDACTED]", "b": 2, "c": 3}


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("a..b", "empty segment"),
        (".a", "empty segment"),
        ("a.", "ends with"),
        ("a.[0]", "empty segment"),
        ("a[", "bad brackets"),
        ("a[x]", "bad brackets"),
        ("a[]", "bad brackets"),
        ("a[*", "bad brackets"),
        ("a]b", "unexpected"),
        ('a"b', "unexpected"),
        ('a["b"', "expected ']'"),
        ('a["b', "unterminated"),
        ("a[0]b", "expected '.' or '['"),
        ("metadata", "needs a key"),
    ],
)
def test_invalid_paths_are_refused_at_construction(path: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(reason)) as info:
        Redactor([path])
    assert repr(path) in str(info.value)  # the message names the rule


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rules": [{"path": "a", "action": "erase"}]}, "unknown action 'erase'"),
        ({"rules": [{"action": "mask"}]}, "has no path"),
        ({"rules": [{"path": "a", "mode": "mask"}]}, "unknown keys"),
        ({"rules": [42]}, "must be a Rule, a dict or a path string"),
        ({"rules": [{"path": 3}]}, "must be a string"),
        ({"detectors": ["email", "phone"]}, "unknown redaction detector 'phone'"),
        ({"max_value_bytes": 10}, "max_value_bytes"),
        ({"max_value_bytes": True}, "max_value_bytes"),
        ({"hash_key": b""}, "must not be empty"),
        ({"hash_key": 123}, "bytes or str"),
        ({"before_write": "not callable"}, "callable"),
    ],
)
def test_invalid_options_are_refused_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Redactor(**options)


def test_rule_validates_itself() -> None:
    with pytest.raises(ConfigurationError, match=r"redaction rule 'a\.b': unknown action 'MASK'"):
        Rule("a.b", "MASK")
    with pytest.raises(ConfigurationError, match="invalid path"):
        Rule("a..b")
    assert Rule("messages[*].content") == Rule("messages[*].content", "mask")


# -- large values ------------------------------------------------------------------------------------


def test_strings_over_the_limit_become_a_truncation_marker() -> None:
    text = "é" * 40_000  # 80,000 UTF-8 bytes, 40,000 characters
    kept = "x" * DEFAULT_MAX_VALUE_BYTES  # exactly at the limit
    result = redacted(AuditRecord(request={"big": text, "kept": kept}, metadata={"blob": text}))
    marker = {"truncated": True, "bytes": 80_000, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    assert result.request == {"big": marker, "kept": kept}
    assert result.metadata == {"blob": marker}


def test_the_limit_is_configurable_and_none_keeps_everything() -> None:
    text = "abc " * 300  # 1,200 bytes
    data_url = "data:image/png;base64," + "A" * 5000
    record = AuditRecord(request={"text": text, "image": data_url})
    small = redacted(record, max_value_bytes=1000)
    assert small.request == {
        "text": {"truncated": True, "bytes": 1200, "sha256": hashlib.sha256(text.encode()).hexdigest()},
        "image": {
            "truncated": True,
            "bytes": len(data_url),
            "sha256": hashlib.sha256(data_url.encode()).hexdigest(),
            "media_type": "image/png",
        },
    }
    assert Redactor(max_value_bytes=None)(record) is record


def test_data_urls_over_one_kib_are_truncated_with_their_media_type() -> None:
    image = "data:image/jpeg;base64," + "/9j/4AAQSkZJRg" * 100
    small = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
    with_params = "data:text/plain;charset=utf-8;base64," + "SGVsbG8=" * 200
    request = {"messages": [{"content": [{"type": "image_url", "image_url": {"url": image}}]}], "s": small}
    result = redacted(AuditRecord(request=request, response={"doc": with_params}))
    assert result.request == {
        "messages": [
            {
                "content": [
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": {
                                "truncated": True,
                                "bytes": len(image),
                                "sha256": hashlib.sha256(image.encode()).hexdigest(),
                                "media_type": "image/jpeg",
                            }
                        },
                    }
                ]
            }
        ],
        "s": small,
    }
    assert isinstance(result.response, dict)
    assert result.response["doc"]["media_type"] == "text/plain"


def test_a_data_url_without_base64_is_an_ordinary_string() -> None:
    plain = "data:text/plain," + "hello%20" * 200
    record = AuditRecord(request={"doc": plain})
    assert Redactor()(record) is record


def test_truncation_markers_and_hashes_are_stable_under_a_second_pass() -> None:
    """A sha256 full of digits is never taken for a card; a marker or a hash is not processed again."""
    digits_sha = "4111111111111111" + "0" * 48
    marker = {"truncated": True, "bytes": 70_000, "sha256": digits_sha, "media_type": "image/png"}
    hashed = "hmac-sha256:" + "4111111111111111" + "0" * 48
    record = AuditRecord(request={"a": marker, "b": hashed})
    assert Redactor([Rule("b", "hash")])(record) is record


def test_rules_run_before_truncation_and_detectors() -> None:
    """A hash rule sees the raw value, so equal large values still group."""
    big = "y" * 100_000
    record = AuditRecord(request={"a": big, "b": f"{big} {OPENAI}"})
    result = redacted(record, rules=[Rule("a", "hash"), Rule("b", "mask")], hash_key=b"k")
    assert result.request == {"a": hmac_hex(b"k", big), "b": "[REDACTED]"}
    assert result.notes == ()


# -- before_write ------------------------------------------------------------------------------------


def test_before_write_sees_the_redacted_record_and_its_result_is_returned() -> None:
    seen: list[AuditRecord] = []

    def tag(record: AuditRecord) -> AuditRecord:
        seen.append(record)
        return replace(record, tags=(*record.tags, "reviewed"))

    result = Redactor(before_write=tag)(chat(f"key {OPENAI}"))
    assert result is not None
    assert content_of(seen[0]) == "key [REDACTED:openai_key]"
    assert result.tags == ("reviewed",)
    assert content_of(result) == "key [REDACTED:openai_key]"


def test_before_write_returning_none_drops_the_record() -> None:
    redactor = Redactor(before_write=lambda record: None if record.model == "internal" else record)
    kept = AuditRecord(model="gpt-4o")
    assert redactor(AuditRecord(model="internal")) is None
    assert redactor(kept) is kept


def test_before_write_exceptions_propagate() -> None:
    def broken(record: AuditRecord) -> AuditRecord:
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"):
        Redactor(before_write=broken)(AuditRecord())


# -- fallbacks ---------------------------------------------------------------------------------------


class Exploding(dict):  # type: ignore[type-arg]
    """A mapping that cannot be iterated: processing it raises."""

    def items(self) -> Any:
        raise RuntimeError("cannot iterate")


RAW = "RAW-UNREDACTED-SENTINEL"


def test_a_field_that_cannot_be_processed_is_masked_whole() -> None:
    record = AuditRecord(
        request={"messages": [{"content": f"{RAW} {OPENAI}", "extra": Exploding(secret=RAW)}]},
        response={"content": "fine"},
        metadata={"inner": Exploding(secret=RAW), "other": RAW},
    )
    redactor = Redactor()
    result = redactor(record)
    assert result is not None
    assert result.request == "[REDACTED: could not be processed]"
    assert result.response == {"content": "fine"}
    assert result.metadata == {"redacted": "could not be processed"}
    assert redactor.failures == 2
    assert result.notes == (
        "redaction failed on request: whole field masked",
        "redaction failed on metadata: whole field masked",
    )
    encoded = encode_record(result).decode()
    assert RAW not in encoded
    assert OPENAI not in encoded
    assert _guard.internal_error_counts() == {}  # an expected, counted fallback: not an internal error
    assert redactor(record) is not None
    assert redactor.failures == 4


class Unprintable:
    """A value neither JSON nor repr() can render: hashing it raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_a_failing_hash_rule_falls_back_too() -> None:
    record = AuditRecord(response={"a": [Unprintable(), RAW], "b": RAW})
    redactor = Redactor([Rule("a", "hash")])
    result = redactor(record)
    assert result is not None
    assert result.response == "[REDACTED: could not be processed]"
    assert redactor.failures == 1
    assert RAW not in encode_record(result).decode()


def test_nesting_deeper_than_json_allows_is_masked_and_still_encodes() -> None:
    deep: Any = RAW
    for _ in range(300):
        deep = [deep]
    cyclic: list[Any] = [RAW]
    cyclic.append(cyclic)
    result = redacted(AuditRecord(request=deep, response=cyclic))
    assert result.request == result.response == "[REDACTED: could not be processed]"
    assert RAW not in encode_record(result).decode()


# -- idempotency and fuzzing -------------------------------------------------------------------------

SECRETS = [OPENAI, ANTHROPIC, GOOGLE, AWS, EMAIL, VISA, "Bearer abcdefgh12345", "4111 1111 1111 1112"]

texts = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda a, s, b: a + s + b, st.text(max_size=10), st.sampled_from(SECRETS), st.text(max_size=10)
    ),
    st.builds(
        lambda s, n: s * n, st.sampled_from(["ab ", "é", "data:image/png;base64,AAAA"]), st.integers(0, 400)
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
RULES = [
    Rule("messages[*].content", "hash"),
    Rule("metadata.email", "mask"),
    Rule("a.*", "drop"),
    Rule("b[*]", "drop"),
    Rule("c", "hash"),
    Rule("response.d", "mask"),
]


def payload_fields(record: AuditRecord) -> tuple[Any, ...]:
    return (record.request, record.response, record.metadata, record.error, record.url, record.tags)


@settings(max_examples=300, deadline=None)
@given(
    request=json_values,
    response=json_values,
    metadata=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    error=st.none() | texts,
    tags=st.lists(texts, max_size=3),
)
def test_redaction_never_raises_always_encodes_and_is_idempotent(
    request: Any, response: Any, metadata: dict[str, Any], error: str | None, tags: list[str]
) -> None:
    record = AuditRecord(request=request, response=response, metadata=metadata, error=error, tags=tuple(tags))
    redactor = Redactor(RULES, max_value_bytes=512, hash_key=b"fuzz")
    once = redactor(record)
    assert once is not None
    encoded = encode_record(once)
    dumps(once.request)
    twice = redactor(once)
    assert twice is not None
    assert payload_fields(twice) == payload_fields(once)
    assert encode_record(replace(twice, notes=once.notes)) == encoded
    assert redactor.failures == 0


@st.composite
def planted(draw: st.DrawFn, value: Any) -> Any:
    """*value* with FAKE_KEY inserted at a random position of a string somewhere inside it."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: draw(planted(value[key]))}
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], draw(planted(value[index])), *value[index + 1 :]]
    text = value if isinstance(value, str) else draw(st.text(max_size=30))
    position = draw(st.integers(0, len(text)))
    carrier = text[:position] + FAKE_KEY + text[position:]
    if isinstance(value, dict):
        return {**value, draw(st.text(max_size=5)): carrier}
    if isinstance(value, list):
        return [*value, carrier]
    return carrier


@settings(max_examples=300, deadline=None)
@given(data=st.data(), request=json_values)
def test_a_planted_key_never_survives(data: st.DataObject, request: Any) -> None:
    record = AuditRecord(request=data.draw(planted(request)))
    assert FAKE_KEY in encode_record(record).decode()
    result = Redactor()(record)
    assert result is not None
    encoded = encode_record(result).decode()
    assert FAKE_KEY not in encoded
    assert "TESTFAKE0123456789" not in encoded


def test_custom_patterns_redact_like_the_built_ins() -> None:
    redactor = Redactor(patterns={"employee_id": r"EMP-\d{6}"}, detectors=False)
    record = AuditRecord(
        request={"messages": [{"role": "user", "content": "I am EMP-123456, EMP-654321 is my boss"}]},
        error="lookup failed for EMP-000001",
    )
    out = redactor(record)
    assert out is not None
    assert out.request == {
        "messages": [
            {"role": "user", "content": "I am [REDACTED:employee_id], [REDACTED:employee_id] is my boss"}
        ]
    }
    assert out.error == "lookup failed for [REDACTED:employee_id]"
    assert "redacted: 3 employee_id" in out.notes
    again = redactor(out)
    assert again is not None and again.request == out.request  # idempotent


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ({"bad": "EMP-(\\d"}, "not a valid regex"),
        ({"empty": "x*"}, "matches the empty string"),
        ({"self": "REDACTED"}, "its own marker"),
        ({"email": "x+"}, "must be a new word"),
        ({"has space": "x+"}, "must be a new word"),
    ],
)
def test_a_bad_custom_pattern_fails_at_configure_time(patterns: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Redactor(patterns=patterns)


def test_denied_headers_are_removed_whatever_their_case() -> None:
    record = AuditRecord(
        headers={
            "request": {"x-tenant-token": "t0k3n", "user-agent": "ua"},
            "response": {"Authorization": "x"},
        }
    )
    out = Redactor(deny_headers=["X-Tenant-Token"])(record)
    assert out is not None and out.headers == {"request": {"user-agent": "ua"}, "response": {}}
    with pytest.raises(ConfigurationError):
        Redactor(deny_headers="x-one-string")  # type: ignore[arg-type]


def test_header_keys_that_are_not_text_do_not_hide_a_denied_header() -> None:
    """A hand-made record may carry a key that is not a string beside a denied header: the denied
    one still goes, the odd key stays, and with nothing denied the headers are left as they were."""
    headers: dict[str, Any] = {"request": {1: "one", "Cookie": "c", "user-agent": "ua"}}
    out = Redactor()(AuditRecord(headers=headers))
    assert out is not None and out.headers == {"request": {1: "one", "user-agent": "ua"}}
    clean: dict[str, Any] = {"request": {1: "one", "user-agent": "ua"}, "response": "not a dict"}
    record = AuditRecord(headers=clean)
    out = Redactor()(record)
    assert out is not None and out.headers is clean


_PIECES = [
    OPENAI,
    ANTHROPIC,
    GOOGLE,
    AWS,
    AWS_SESSION,
    EMAIL,
    VISA,
    "4111-1111-1111-1111",
    "Bearer abcdefghijklmnop",
    "BEARER   x1234567890",
    "data:image/png;BASE64,iVBORw0KGgoAAAANSUhEUg",
    "sk-",
    "AIz",
    "AKI",
    "@",
    "bear",
    "base64",
    "1234567",
    " ",
    "-",
    "lorem ipsum ",
    "ÄÖü ",
]


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.lists(st.sampled_from(_PIECES), max_size=6).map("".join), min_size=7, max_size=7),
    detectors=st.sampled_from([True, False, ("email",), ("openai_key", "aws_key", "card")]),
)
def test_the_fast_path_skips_only_records_the_full_walk_would_leave_alone(
    texts: list[str], detectors: bool | tuple[str, ...]
) -> None:
    """`_nothing_to_do` decides on the record's JSON bytes whether the full walk can be skipped: it
    must never skip a record the walk would change (a key, an address, a card, a token or a data URL
    anywhere: messages, URL, error, tags, notes, metadata, headers)."""
    request, response, url, error, tag, note, meta = texts
    record = AuditRecord(
        request={"model": "m", "messages": [{"role": "user", "content": request}]},
        response={"choices": [{"message": {"content": response}}]},
        url="https://api.example.com/v1?q=" + url,
        error=error,
        tags=(tag,),
        notes=(note,),
        metadata={"k": meta},
        headers={"response": {"x-request-id": meta}},
    )
    redactor = Redactor(detectors=detectors if isinstance(detectors, bool) else list(detectors))
    fast = redactor(record)
    with mock.patch.object(Redactor, "_nothing_to_do", return_value=False):
        walked = redactor(record)
    assert fast is not None and walked is not None
    assert encode_record(fast) == encode_record(walked)


def _chat_record(content: str, answer: str, arguments: str) -> AuditRecord:
    """A chat record as the writer builds it: payloads, and the flat text made from them."""
    from llmaudit.providers import flat_text

    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    call = {"id": "call_1", "type": "function", "function": {"name": "save", "arguments": arguments}}
    response = {"choices": [{"message": {"role": "assistant", "content": answer, "tool_calls": [call]}}]}
    inp, out, calls, _ = flat_text("openai", "chat.completions", request, response)
    return AuditRecord(
        provider="openai",
        operation="chat.completions",
        request=request,
        response=response,
        input_text=inp,
        output_text=out,
        tool_calls=calls,
    )


def test_the_flat_text_and_tool_call_arguments_pass_the_detectors() -> None:
    """A key in the prompt, the answer or a tool call's arguments is gone from the flat fields too."""
    record = _chat_record(f"my key {OPENAI}", f"your key {OPENAI}", f'{{"key":"{OPENAI}"}}')
    result = Redactor()(record)
    assert result is not None
    assert OPENAI not in encode_record(result).decode()
    assert result.input_text == "user: my key [REDACTED:openai_key]"
    assert result.output_text == "your key [REDACTED:openai_key]"
    assert result.tool_calls == (
        {"name": "save", "arguments": '{"key":"[REDACTED:openai_key]"}', "id": "call_1"},
    )


def test_a_path_rule_reaches_the_flat_text() -> None:
    """The flat text is made from the payloads: a rule that masks the prompt, hashes the answer or
    drops the tool calls leaves none of them in ``input_text``, ``output_text`` or ``tool_calls``."""
    record = _chat_record("my diagnosis is flu", "rest well", '{"patient":"jane"}')
    rules = [
        Rule("request.messages[*].content", "mask"),
        Rule("response.choices[*].message.content", "hash"),
        Rule("response.choices[*].message.tool_calls", "drop"),
    ]
    result = Redactor(rules)(record)
    assert result is not None
    text = encode_record(result).decode()
    assert "flu" not in text and "rest well" not in text and "jane" not in text
    assert result.input_text == "user: [REDACTED]"
    assert result.output_text is not None and result.output_text.startswith("hmac-sha256:")
    assert result.tool_calls is None
    again = Redactor(rules)(result)  # idempotent, like every redaction
    assert again is not None and (again.input_text, again.output_text) == (
        result.input_text,
        result.output_text,
    )
