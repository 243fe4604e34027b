"""The front door type-checks: mypy (strict) accepts the README's first example and rejects a bad
``configure()`` keyword value or name. Runs mypy in a subprocess on small snippets (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[1] / "src"

README_EXAMPLE = """
import httpx, httpx2, llmaudit

client = httpx2.Client(transport=llmaudit.AuditTransport())
async_client = httpx2.AsyncClient(transport=llmaudit.AsyncAuditTransport())
old_branch = httpx.Client(transport=llmaudit.AuditTransport())

with llmaudit.session("abc123", user="alice"):
    pass

@llmaudit.audited(client="support-bot")
async def answer(question: str) -> str:
    return question

llmaudit.configure("sqlite:///audit.db", writer="process", mode="background", batch_size=100)
"""


def _mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(code)
    env = dict(os.environ, MYPYPATH=str(SRC))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            "--python-version",
            "3.11",
            str(snippet),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )


def test_the_readme_example_type_checks(tmp_path: Path) -> None:
    result = _mypy(tmp_path, README_EXAMPLE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_configure_mode_is_a_type_error(tmp_path: Path) -> None:
    result = _mypy(tmp_path, 'import llmaudit\n\nllmaudit.configure(writer="bogus")\n')
    assert result.returncode == 1, result.stdout + result.stderr
    assert "writer" in result.stdout and "bogus" in result.stdout, result.stdout


def test_a_misspelt_configure_keyword_is_a_type_error(tmp_path: Path) -> None:
    result = _mypy(tmp_path, "import llmaudit\n\nllmaudit.configure(batchsize=10)\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "batchsize" in result.stdout, result.stdout
