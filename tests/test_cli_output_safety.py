"""Recorded strings are untrusted: every CLI command prints them as inert, visible text.

A store full of hostile strings (escape sequences that clear the screen, write the clipboard, make
links, set the window title or hide text; bidi overrides; backspaces and carriage returns; C1
controls; rich markup) goes through every command that prints recorded data, through a pipe and on a
terminal: no ESC, C0, C1 or bidi/format character reaches the output, nothing crashes, and ``--json``
stays valid JSON that decodes to the recorded values.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import llmaudit
from llmaudit import AuditRecord
from llmaudit.cli import cli

# private: the CLI's and viewer's internals (demo data, rendering, queries) these tests pin
from llmaudit.cli._text import EscapedLogHandler, json_line, plain, shown

NOW = datetime.now(timezone.utc).replace(microsecond=0)

CLEAR = "\x1b[2J\x1b[H"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4K\x07"  # OSC 52: puts "rm -rf ~" on the clipboard
LINK = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"  # OSC 8
TITLE = "\x1b]0;pwned\x07"
HIDDEN = "\x1b[8mhidden\x1b[0m"
BIDI = "\u202eevil.exe\u202c \u2066iso\u2069 \u200f"
OVERWRITE = "approved\x08\x08\x08\x08\x08\x08\x08\x08denied\rALL GOOD"
C1 = "\x9b2J\x9d0;title\x9c"
MARKUP = "evil[/bold] [link=https://evil.example/]x[/link] [red]"
TAG_CHARS = "note\U000e0049\U000e0047\U000e004e"  # invisible "tag" letters (ASCII smuggling)
FAMILY = "family \U0001f468\u200d\U0001f469"  # an emoji sequence: its zero-width joiner stays
LINE_SEP = "one\u2028two\u2029three"
HOSTILE = CLEAR + CLIPBOARD + LINK + TITLE + HIDDEN + BIDI + OVERWRITE + C1 + MARKUP + TAG_CHARS + LINE_SEP
SHORT = CLEAR + TITLE + BIDI + C1 + "[/x]"  # for the 128-character columns
SESSION = "evil[/bold]" + CLEAR + BIDI
USER = "mallory[/]" + TITLE + "\x07"


# what rich's own progress bar writes to a terminal: styles, hide/show cursor, erase line, go up, CR
_RICH_PROGRESS = re.compile(rb"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\x1b\[2K|\x1b\[1A|\r")


def _forbidden(char: str) -> bool:
    """A character a terminal acts on or that hides/reorders text (newline is the output's own)."""
    if char == "\n":
        return False
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") and char != "\u200d"


def _seed(url: str, tmp_path: Path) -> list[AuditRecord]:
    call = AuditRecord(
        created_at=NOW - timedelta(minutes=3),
        session_key=SESSION,
        user=USER,
        tags=("tag" + HOSTILE,),
        metadata={"k" + CLEAR: "v" + HOSTILE},
        client="bot" + HOSTILE,
        provider="openai",
        operation="chat.completions",
        model="gpt" + HOSTILE,
        method="POST",
        url="https://api.example/v1" + C1,
        request={
            "system": "sys" + HOSTILE,
            "messages": [
                {"role": "user" + TITLE, "content": "prompt" + HOSTILE},
                {"role": "user", "content": [{"type": "text", "text": "part" + HOSTILE}, {"type": CLEAR}]},
            ],
        },
        response={
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": "answer" + HOSTILE,
                        "tool_calls": [{"function": {"name": "fn" + LINK, "arguments": HOSTILE}}],
                    }
                }
            ]
        },
        status_code=200,
        duration_ms=12.0,
        input_tokens=3,
        output_tokens=4,
        cost_usd=0.001,
    )
    failed = AuditRecord(
        created_at=NOW - timedelta(minutes=2),
        session_key=SESSION,
        user=USER,
        client="bot" + HOSTILE,
        model="gpt" + HOSTILE,
        status_code=500,
        response={"error": {"message": "boom" + HOSTILE}},
        error="RuntimeError: " + HOSTILE,
    )
    http_error = AuditRecord(
        created_at=NOW - timedelta(minutes=1),
        session_key=SESSION,
        model=MARKUP,
        status_code=429,
        response={"error": "slow down" + HOSTILE},
    )
    decorated = AuditRecord(
        created_at=NOW,
        session_key=SESSION,
        source="decorator",
        operation="answer" + SHORT,
        request={"arguments": {"question": HOSTILE}},
        response="returned" + HOSTILE,
    )
    records = [call, failed, http_error, decorated]
    with llmaudit.Auditor(url, spool_dir=str(tmp_path / "spool")) as auditor:
        for record in records:
            auditor.submit(record)
    return records


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[str, list[AuditRecord]]:
    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    return url, _seed(url, tmp_path)


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _commands(url: str, records: list[AuditRecord], tmp_path: Path) -> list[list[str]]:
    return [
        ["sessions", "-s", url],
        ["show", "-s", url, SESSION],
        ["show", "-s", url, records[0].id],
        ["tail", "-s", url, "-n", "10"],
        ["stats", "-s", url, "--by", "client,model,provider,operation,user,session_key,source,day"],
        ["verify", "-s", url],
        ["export", "-s", url, "--to", str(tmp_path / "out.csv")],
        ["export", "-s", url, "--to", str(tmp_path / "out.jsonl")],
        ["aggregate", "-s", url, "--session", SESSION],
        ["path", "-s", url],
    ]


def _assert_inert(result: Result, where: str) -> None:
    assert result.exit_code == 0, (where, result.output)
    for stream in (result.stdout, result.stderr):
        bad = sorted({f"U+{ord(c):04X}" for c in stream if _forbidden(c)})
        assert not bad, f"{where}: {bad} reached the output"


def test_every_command_prints_hostile_records_as_inert_text_through_a_pipe(
    hostile: tuple[str, list[AuditRecord]], tmp_path: Path
) -> None:
    """No control, C1 or bidi/format character reaches stdout or stderr, and nothing crashes (a
    session key like ``evil[/bold]`` used to raise rich's MarkupError in ``sessions``)."""
    url, records = hostile
    for args in _commands(url, records, tmp_path):
        _assert_inert(_run(*args), args[0])


def test_hostile_records_are_shown_visibly_escaped(hostile: tuple[str, list[AuditRecord]]) -> None:
    """The escaped form is what appears, in full: markup text stays literal, escapes are readable."""
    url, _ = hostile
    shown_session = _run("show", "-s", url, SESSION).stdout
    assert "evil[/bold]\\x1b[2J\\x1b[H\\u202eevil.exe" in shown_session
    assert "\\x1b]52;c;cm0gLXJmIH4K\\x07" in shown_session
    assert "approved\\x08" in shown_session
    assert "denied\\x0dALL GOOD" in shown_session
    assert "[link=https://evil.example/]x[/link] [red]" in shown_session
    assert "note\\U000e0049" in shown_session
    assert "one\\u2028two\\u2029three" in shown_session
    assert "user mallory[/]\\x1b]0;pwned\\x07\\x07" in shown_session
    assert "evil[/bold]" in _run("sessions", "-s", url).stdout


def test_on_a_terminal_only_the_consoles_own_styles_are_escape_sequences(
    hostile: tuple[str, list[AuditRecord]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With colours forced on (a terminal), the only escape sequences are rich's own: SGR styles, and
    the cursor control of the progress bar on stderr."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    url, records = hostile
    styled = 0
    for args in _commands(url, records, tmp_path):
        result = _run(*args)
        styled += len(re.findall(r"\x1b\[[0-9;]*m", result.stdout))
        result.stdout_bytes = re.sub(rb"\x1b\[[0-9;]*m", b"", result.stdout_bytes)
        result.stderr_bytes = _RICH_PROGRESS.sub(b"", result.stderr_bytes)
        _assert_inert(result, args[0] + " (terminal)")
    assert styled  # the terminal run did style its output: the check above saw real terminal output


def test_json_output_is_valid_json_with_unsafe_characters_escaped(
    hostile: tuple[str, list[AuditRecord]],
) -> None:
    """``--json`` lines parse, give back the recorded strings exactly, and carry no raw control,
    C1, bidi or line-separator character (JSON's ``\\uXXXX`` escapes instead)."""
    url, records = hostile
    for args in (
        ["sessions", "--json"],
        ["show", "--json", SESSION],
        ["tail", "--json"],
        ["stats", "--json", "--by", "client,model,user,session_key"],
        ["verify", "--json"],
        ["aggregate", "--json", "--session", SESSION],
    ):
        result = _run(args[0], "-s", url, *args[1:])
        _assert_inert(result, " ".join(args))
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert lines, args
    shown_back = [json.loads(line) for line in _run("show", "-s", url, "--json", SESSION).stdout.splitlines()]
    assert {r["client"] for r in shown_back} >= {records[0].client}
    assert shown_back[0]["request"] == records[0].request
    sessions = [json.loads(line) for line in _run("sessions", "-s", url, "--json").stdout.splitlines()]
    assert [(s["session_key"], s["user"]) for s in sessions] == [(SESSION, USER)]


def test_unreadable_lines_are_reported_escaped(tmp_path: Path) -> None:
    """A JSONL line that cannot be read is reported by its position and error, never as raw bytes."""
    store = tmp_path / "jsonl"
    url = f"jsonl://{store}"
    _seed(url, tmp_path)
    (day,) = sorted(store.glob("*.jsonl"))
    with day.open("ab") as stream:
        stream.write(json.dumps({"id": 1, "source": HOSTILE, "created_at": CLEAR}).encode() + b"\n")
        stream.write(b'{"session_key": "' + CLEAR.encode("unicode_escape") + b'", \x1b[2J\x9b\n')
    commands = [
        ["tail"],
        ["sessions"],
        ["verify"],
        ["stats"],
        ["show", SESSION],
        ["aggregate", "--session", SESSION],
    ]
    commands.append(["export", "--to", str(tmp_path / "out.csv")])
    for args in commands:
        result = CliRunner().invoke(cli, [args[0], "-s", url, *args[1:]], catch_exceptions=False)
        assert "skipped an unreadable line" in result.stderr, args
        for stream in (result.stdout, result.stderr):
            assert not [c for c in stream if _forbidden(c)], args


@pytest.mark.parametrize(
    ("value", "line", "lines"),
    [
        ("plain text", "plain text", "plain text"),
        ("a\x1b[31mb", "a\\x1b[31mb", "a\\x1b[31mb"),
        ("nl\nand\ttab", "nl\\x0aand\\x09tab", "nl\nand\ttab"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("r\u202el \u200b \ufeff", "r\\u202el \\u200b \\ufeff", "r\\u202el \\u200b \\ufeff"),
        ("lone \ud800", "lone \\ud800", "lone \\ud800"),
        (FAMILY, FAMILY, FAMILY),
        ("tag\U000e0041", "tag\\U000e0041", "tag\\U000e0041"),
        (None, "-", "-"),
        (12, "12", "12"),
    ],
)
def test_plain_makes_every_unsafe_character_visible(value: object, line: str, lines: str) -> None:
    """One line escapes newlines and tabs; message text keeps them; the ZWJ of emoji stays."""
    assert plain(value) == line
    assert plain(value, multiline=True) == lines
    assert shown(value).plain == line
    assert shown("[bold]x[/bold]").plain == "[bold]x[/bold]"  # never markup


def test_json_line_round_trips_and_escapes() -> None:
    """Valid JSON, the same value back, no raw unsafe character (U+2028 included)."""
    value = {"k\u2028": ["\x1b", "\x9b", "\u202e", "\U000e0041", "\ud800", "\x7f", "café \U0001f600"]}
    line = json_line(value)
    assert json.loads(line) == value
    assert not [c for c in line if _forbidden(c)]
    assert "café \U0001f600" in line  # readable text stays readable


def test_the_commands_log_handler_escapes_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    """A warning on the ``llmaudit`` logger that quotes a recorded value reaches stderr escaped."""
    handler = EscapedLogHandler()
    handler.handle(logging.makeLogRecord({"msg": "bad value %s", "args": (HOSTILE,), "levelno": 30}))
    err = capsys.readouterr().err
    assert err.startswith("bad value \\x1b[2J")
    assert not [c for c in err if _forbidden(c)]
