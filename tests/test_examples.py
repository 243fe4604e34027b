"""Every example in examples/ runs offline with one command and prints what it promises (so none rots)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "quickstart.py": [
        "answer: (offline) You asked: What does llmaudit record?",
        "12+9 tokens",
        "chain: verified",
    ],
    "streaming.py": [
        "record holds: (offline) You asked: Stream me a sentence",
        "streamed=True incomplete=False",
    ],
    "decorator.py": ["recorded __main__.answer", "'yielded': 5"],
    "fastapi_app.py": ["session web-session-1: 1 call(s)", "session web-session-2: 1 call(s)"],
    "django_view.py": ["1 Django session", "2 calls"],
    "django_app.py": [
        "ORM: 2 calls by alice, 0 errors",
        "stats: gpt-4o-mini-2024-07-18: 2 calls",
        "'LLM request history' listed: True",
        "the conversation shown as messages: 2 messages",
        "manage.py llmaudit verify: OK: 2 verified",
    ],
    "multi_sink.py": [
        "team.db: 1 record(s)",
        "files: 1 record(s)",
        "both.db: 1 record(s)",
        "both: 1 record(s)",
    ],
    "custom_storage.py": [
        "ShelveStorage passes the storage contract",
        "read back 1 record(s) of session custom-1, sealed: True",
    ],
    "otel_export.py": [
        "sent 8 records to otlp://127.0.0.1:",
        "GenAI spans (conventions 1.41.0)",
        "CLIENT   'chat gpt-4o-mini'",
        "error.type=429",
        "every call is a child of its @audited function: True",
    ],
    "redaction.py": ["[REDACTED:email]", "hmac-sha256:", "the key appears nowhere in the log: True"],
}


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMAUDIT_")}
    env.update(
        XDG_DATA_HOME=str(tmp_path / "data"), HOME=str(tmp_path), PYTHONWARNINGS="error::ResourceWarning"
    )
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for expected in EXPECTED[name]:
        assert expected in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
