"""The catalogue of token formats the redactor recognises, and its keyword pre-filter (`candidates`).

Runs on the writer thread (inside the `Redactor`), never on the caller's hot path. Pure functions and
compiled tables: no I/O, no state beyond a bounded cache of runs, and nothing from the `Redactor` or
the stages above redaction.

The rules are adapted from the gitleaks rule set (``config/gitleaks.toml``, gitleaks commit b58d3f1,
July 2026; https://github.com/gitleaks/gitleaks, MIT licence, copyright (c) 2019 Zachary Rice), with
a few formats gitleaks lacks taken from trufflehog's detectors (Groq ``gsk_``, Google OAuth
``GOCSPX-`` / ``ya29.``, xAI, Replicate). Only rules anchored on a distinctive literal (a key prefix
such as ``ghp_`` or ``xoxb-``, or a key name such as ``aws_secret_access_key``) are taken: gitleaks'
context-only rules (``generic-api-key``, "a 32-character hex string near the word heroku") flag too
much ordinary text for an audit log. Changes from gitleaks: a token is matched to the end of its run
of token characters rather than to an exact length (a longer paste is redacted whole instead of
leaving a tail), gitleaks' trailing-delimiter groups are replaced by look-arounds, and keywords are
case-sensitive (every prefix below is case-sensitive in the issuer's format).

Each rule has *keywords*: literals, one of which occurs in every match. `candidates` is the cheap
pre-filter: it finds the runs of token characters long enough to hold a token (rare in prose) with
`bytes.translate` and `bytes.find`, and looks for the keywords in those runs only; a rule runs only
when one of its own keywords is present. (Not one regex alternation of all keywords over the whole
text: `re` tries every alternative at every position; see benchmarks/RESULTS.md.)

Where a rule's regex has a named group, only that group is the secret (the key name before
``aws_secret_access_key=`` stays readable); otherwise the whole match is.

The text folding the detectors also match on (a key split by zero-width characters or written in
full-width letters) is `redact.folding`.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CHECKS",
    "KEYWORDS_BYTES",
    "MIN_RUN",
    "PATTERNS",
    "RULES",
    "RULE_KEYWORDS",
    "RUN_CHARS",
    "SecretRule",
    "candidates",
]


def _mixed(secret: str) -> bool:
    """Upper- and lower-case letters and a digit or ``/`` / ``+``: a random 40-character AWS secret,
    not a word, a git SHA-1 (lower-case hex) or a constant name."""
    return (
        any(c.isupper() for c in secret)
        and any(c.islower() for c in secret)
        and any(c.isdigit() or c in "/+" for c in secret)
    )


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One detector of the catalogue: its ``[REDACTED:<name>]`` name, the literals one of which every
    match contains, its regex and an optional check of the secret text (a match failing it is kept)."""

    name: str
    keywords: tuple[str, ...]
    regex: str
    check: Callable[[str], bool] | None = None


# A token starts where no token character precedes it.
_B = r"(?<![A-Za-z0-9_])"
_B64_END = r"(?![A-Za-z0-9/+=])"

RULES: Final[tuple[SecretRule, ...]] = (
    # gitleaks private-key; also a block whose END line was cut off (the base64 body to its end)
    SecretRule(
        "private_key",
        ("-----BEGIN",),
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]{0,65536}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,-]*)",
    ),
    # gitleaks aws-* has the access key id only; the secret by its name (credentials files, env,
    # STS JSON "SecretAccessKey") or as the first 40-character token after an access key id
    SecretRule(
        "aws_secret_key",
        (
            "ecret_access_key",
            "ECRET_ACCESS_KEY",
            "ecretAccessKey",
            "ecretaccesskey",
            "aws_secret",
            "AWS_SECRET",
        ),
        r"(?i:aws_?secret(?:_?access)?_?key|secret_?access_?key)[\s\"'`]{0,3}(?:=|:|=>|:=)[\s\"'`]{0,5}"
        r"(?P<secret>[A-Za-z0-9/+]{40})" + _B64_END,
        _mixed,
    ),
    SecretRule(
        "aws_secret_key",
        ("AKIA", "ASIA"),
        r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])[\s\S]{0,100}?(?<![A-Za-z0-9/+=])"
        r"(?P<secret_after_id>[A-Za-z0-9/+]{40})" + _B64_END,
        _mixed,
    ),
    # gitleaks github-pat, github-oauth, github-app-token, github-refresh-token, github-fine-grained-pat
    SecretRule(
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        _B + r"(?:gh[pousr]_[0-9A-Za-z]{36,}|github_pat_[0-9A-Za-z_]{82,})",
    ),
    # gitleaks gitlab-* (pat, deploy, feed, runner, cicd job, trigger, oauth app, mail, agent, ...)
    SecretRule(
        "gitlab_token",
        (
            "glpat-",
            "gldt-",
            "glft-",
            "glsoat-",
            "glrt-",
            "glcbt-",
            "glptt-",
            "gloas-",
            "glimt-",
            "glagent-",
            "glffct-",
            "GR1348941",
        ),
        _B + r"(?:gl(?:pat|dt|ft|soat|rt|ffct|imt|oas|agent)-[0-9A-Za-z_.-]{20,}"
        r"|glcbt-[0-9A-Za-z]{1,5}_[0-9A-Za-z_-]{20,}|glptt-[0-9a-f]{40}|GR1348941[0-9A-Za-z_-]{20,})",
    ),
    # gitleaks slack-bot/user/app/legacy/config tokens
    SecretRule(
        "slack_token",
        ("xox", "xapp-"),
        _B + r"(?:xox[abeoprs](?:\.xox[bp])?-[0-9A-Za-z-]{10,}"
        r"|xapp-[0-9]-[A-Za-z0-9]{6,}-[0-9]{6,}-[A-Za-z0-9]{6,})",
    ),
    # gitleaks slack-webhook-url, microsoft-teams-webhook; Discord webhooks (trufflehog)
    SecretRule(
        "webhook_url",
        ("hooks.slack.com", "/api/webhooks/", ".webhook.office.com"),
        r"(?:https?://)?(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{20,}"
        r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]{20,}"
        r"|[a-z0-9-]+\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/_-]{20,}(?:/IncomingWebhook/[A-Za-z0-9/_-]+)?)",
    ),
    # gitleaks jwt: header and payload are base64 JSON objects ("eyJ..."), so ".ey" is in every one
    SecretRule(
        "jwt",
        (".ey",),
        r"(?<![A-Za-z0-9_-])ey[A-Za-z0-9_-]{17,}\.ey[A-Za-z0-9/\\_-]{17,}\.(?:[A-Za-z0-9/\\_-]{10,}={0,2})?",
    ),
    SecretRule("groq_key", ("gsk_",), _B + r"gsk_[A-Za-z0-9]{48,}"),  # trufflehog groq
    # gitleaks huggingface-access-token, huggingface-organization-api-token
    SecretRule("huggingface_token", ("hf_", "api_org_"), _B + r"(?:hf|api_org)_[A-Za-z]{34,}"),
    # gitleaks stripe-access-token; webhook signing secrets (trufflehog)
    SecretRule(
        "stripe_key",
        ("sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_", "whsec_"),
        _B + r"(?:[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9+/=]{24,})",
    ),
    # Google OAuth client secrets, access and refresh tokens (trufflehog gcp oauth2)
    SecretRule(
        "google_oauth",
        ("GOCSPX-", "ya29.", "1//0"),
        r"(?:" + _B + r"GOCSPX-[A-Za-z0-9_-]{28,}|" + _B + r"ya29\.[A-Za-z0-9_-]{20,}"
        r"|(?<![A-Za-z0-9/])1//0[A-Za-z0-9_-]{30,})",
    ),
    SecretRule("npm_token", ("npm_",), _B + r"npm_[A-Za-z0-9]{36,}"),  # gitleaks npm-access-token
    SecretRule(
        "sendgrid_key", ("SG.",), _B + r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
    ),  # gitleaks sendgrid
    SecretRule("twilio_key", ("SK",), _B + r"SK[0-9a-fA-F]{32}(?![0-9A-Za-z])"),  # gitleaks twilio-api-key
    # gitleaks telegram-bot-api-token without its context keyword: bot id, ':', 35 characters from "AA"
    SecretRule("telegram_bot_token", (":AA",), r"(?<![0-9])[0-9]{8,10}:AA[0-9A-Za-z_-]{33}(?![0-9A-Za-z_-])"),
    SecretRule("pypi_token", ("pypi-AgE",), r"pypi-AgE[A-Za-z0-9_-]{50,}"),  # gitleaks pypi-upload-token
    SecretRule("digitalocean_token", ("_v1_",), _B + r"do[opr]_v1_[a-f0-9]{64}"),  # gitleaks digitalocean-*
    SecretRule("databricks_token", ("dapi",), _B + r"dapi[a-f0-9]{32}(?:-[0-9])?"),  # gitleaks databricks
    SecretRule("shopify_token", ("shp",), _B + r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),  # gitleaks shopify-*
    SecretRule("perplexity_key", ("pplx-",), _B + r"pplx-[A-Za-z0-9]{48,}"),  # gitleaks perplexity-api-key
    SecretRule("xai_key", ("xai-",), _B + r"xai-[A-Za-z0-9]{70,}"),  # trufflehog xai
    SecretRule("replicate_token", ("r8_",), _B + r"r8_[A-Za-z0-9]{37,}"),  # trufflehog replicate
    SecretRule(
        "age_secret_key", ("AGE-SECRET-KEY-1",), r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"
    ),
    SecretRule("vault_token", ("hvs.", "hvb."), _B + r"hv[sb]\.[A-Za-z0-9_-]{90,}"),  # gitleaks vault-*
    SecretRule("linear_key", ("lin_api_",), _B + r"lin_api_[A-Za-z0-9]{40,}"),  # gitleaks linear-api-key
    SecretRule("notion_token", ("ntn_",), _B + r"ntn_[0-9]{11}[A-Za-z0-9]{35,}"),  # gitleaks notion-api-token
    SecretRule("postman_key", ("PMAK-",), _B + r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}"),  # gitleaks postman
    SecretRule("pulumi_token", ("pul-",), _B + r"pul-[a-f0-9]{40}"),  # gitleaks pulumi-api-token
    SecretRule(
        "sentry_token", ("sntry",), _B + r"(?:sntryu_[a-f0-9]{64}|sntrys_eyJpYXQiO[A-Za-z0-9+/=_]{50,})"
    ),  # gitleaks sentry-user-token, sentry-org-token
    SecretRule("heroku_key", ("HRKU-AA",), _B + r"HRKU-AA[0-9A-Za-z_-]{58}"),  # gitleaks heroku-api-key-v2
    SecretRule(
        "doppler_token", ("dp.",), _B + r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9_.-]{40,}"
    ),  # gitleaks doppler
    SecretRule(
        "azure_client_secret",
        ("Q~",),
        r"(?<![A-Za-z0-9_~.])[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
    ),  # gitleaks azure-ad-client-secret
    SecretRule("atlassian_token", ("ATATT3",), _B + r"ATATT3[A-Za-z0-9_=-]{100,}"),  # gitleaks atlassian
    SecretRule("square_token", ("sq0",), _B + r"sq0(?:atp|csp)-[0-9A-Za-z_-]{22,}"),  # gitleaks square
    SecretRule("bedrock_key", ("ABSK",), _B + r"ABSK[A-Za-z0-9+/]{100,}={0,2}"),  # gitleaks aws bedrock
    SecretRule(
        "onepassword_token", ("ops_eyJ",), _B + r"ops_eyJ[A-Za-z0-9+/]{200,}={0,3}"
    ),  # gitleaks 1password
    SecretRule(
        "mailchimp_key", ("-us",), r"(?<![0-9a-zA-Z])[0-9a-f]{32}-us[0-9]{1,2}(?![0-9A-Za-z])"
    ),  # gitleaks
    SecretRule("facebook_token", ("EAA",), _B + r"EAA[MC][A-Za-z0-9]{100,}"),  # gitleaks facebook-page-access
)


def _by_name() -> tuple[
    dict[str, re.Pattern[str]], dict[str, tuple[str, ...]], dict[str, Callable[[str], bool] | None]
]:
    """The rules of each name as one pattern (an alternation), with their keywords and check."""
    names = dict.fromkeys(rule.name for rule in RULES)
    patterns, keywords, checks = {}, {}, {}
    for name in names:
        rules = [rule for rule in RULES if rule.name == name]
        if len({rule.check for rule in rules}) != 1:
            raise AssertionError(f"the rules named {name} must share one check")
        source = rules[0].regex if len(rules) == 1 else "|".join(f"(?:{rule.regex})" for rule in rules)
        patterns[name] = re.compile(source)
        keywords[name] = tuple(dict.fromkeys(k for rule in rules for k in rule.keywords))
        checks[name] = rules[0].check
    return patterns, keywords, checks


#: Per detector name, in catalogue order: its pattern, its keywords and its check.
PATTERNS, RULE_KEYWORDS, CHECKS = _by_name()

#: Characters of a token: every match of a catalogue rule holds a run of at least `MIN_RUN` of them
#: (a private key block is found by its BEGIN line, once its base64 lines made a run; an AWS
#: secret's key name is outside the run but the secret itself is a run of 40).
RUN_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_-./+=~:\\")
MIN_RUN: Final = 15
_RUN_TABLE: Final = bytes(1 if chr(b) in RUN_CHARS else 0 for b in range(256))
_RUN_NEEDLE: Final = b"\x01" * MIN_RUN
_AWS_RUN: Final = 40
_AWS_NAMES: Final = tuple(k.encode() for k in RULE_KEYWORDS["aws_secret_key"] if k not in ("AKIA", "ASIA"))
_PEM_NEEDLE: Final = b"-----BEGIN"
#: (keyword, rule name) for the keywords found inside token runs.
_RUN_KEYWORDS: Final = tuple(
    (k.encode(), name) for name, ks in RULE_KEYWORDS.items() for k in ks if name != "private_key"
)
_AWS_NAME_NEEDLES: Final = (b"ecret", b"ECRET")  # in every one of _AWS_NAMES
_CACHED_RUN_BYTES: Final = 256
_CACHED_RUNS: Final = 4096


def _trie(words: list[bytes]) -> bytes:
    """A regex matching any of *words*, factored as a trie: `re` tries one alternative per distinct
    next byte instead of every word at every position."""
    root: dict[int, Any] = {}
    for word in words:
        node = root
        for byte in word:
            node = node.setdefault(byte, {})
        node[-1] = {}

    def emit(node: dict[int, Any]) -> bytes:
        branches = [re.escape(bytes([b])) + emit(child) for b, child in sorted(node.items()) if b >= 0]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        return b"(?:" + body + b")?" if -1 in node else body

    return emit(root)


#: Whether any run keyword occurs in a (short) run.
KEYWORDS_BYTES: Final = re.compile(_trie(sorted({k for k, _ in _RUN_KEYWORDS})))


def _runs(data: bytes) -> list[bytes]:
    """The runs of at least `MIN_RUN` token characters in *data* (rare in prose: found with `find`)."""
    marks = data.translate(_RUN_TABLE)
    runs: list[bytes] = []
    pos = marks.find(_RUN_NEEDLE)
    while pos >= 0:
        start = marks.rfind(b"\x00", 0, pos) + 1
        end = marks.find(b"\x00", pos)
        end = len(marks) if end < 0 else end
        runs.append(data[start:end])
        pos = marks.find(_RUN_NEEDLE, end)
    return runs


@functools.lru_cache(maxsize=_CACHED_RUNS)
def _cached_run_rules(run: bytes) -> frozenset[str]:
    return _run_rules(run)


def _run_rules(run: bytes) -> frozenset[str]:
    """The rules whose keywords occur in *run* (the same runs come back in every record: the URL,
    model names; short ones are cached)."""
    if KEYWORDS_BYTES.search(run) is None:
        return frozenset()
    return frozenset(name for keyword, name in _RUN_KEYWORDS if run.find(keyword) >= 0)


def candidates(data: bytes) -> set[str]:
    """The catalogue rules that may match the UTF-8 text *data*: a superset, decided at C speed.

    A token is a run of token characters; the keywords are looked for only inside such runs (a few
    short strings) rather than in the whole text, so prose costs two translations and a few finds.
    """
    names: set[str] = set()
    runs = _runs(data)
    if runs and data.find(_PEM_NEEDLE) >= 0:  # a key block has base64 lines: runs
        names.add("private_key")
    long_run = False
    for run in runs:
        names.update(_cached_run_rules(run) if len(run) <= _CACHED_RUN_BYTES else _run_rules(run))
        long_run = long_run or len(run) >= _AWS_RUN
    if (
        long_run
        and "aws_secret_key" not in names
        and any(data.find(needle) >= 0 for needle in _AWS_NAME_NEEDLES)
        and any(data.find(k) >= 0 for k in _AWS_NAMES)
    ):
        names.add("aws_secret_key")
    return names
