"""The README's Python examples run as written (issue 17, item 10).

Each ```python block is either run, offline, in README order, in a fresh process sharing one
directory and store (an OpenAI-compatible server on 127.0.0.1 stands in for the API), or listed in
`FRAGMENTS` with the reason it cannot run on its own. A new block under a heading that is neither
fails `test_every_python_block_is_run_or_explained`, so no example is left unchecked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.transport.server import LocalServer

import llmaudit

README = Path(__file__).resolve().parent.parent / "README.md"

#: Sections whose Python blocks run as written.
RUN = (
    "Three ways in",
    "Recording records directly",
    "Reading the log",
    "Secrets, redaction and the hash chain",
    "Testing with llmaudit",
)
#: Sections whose Python blocks are fragments of someone's application, and why.
FRAGMENTS = {
    "Web frameworks": "lines to paste into an existing FastAPI, Flask or Django app",
    "Web viewer": "mounting the viewer inside an existing application, behind its own login",
    "The Django app": "settings, queries and migrations of a Django project (examples/django_app.py runs)",
}


def python_blocks(text: str) -> list[tuple[str, str]]:
    """(section heading, dedented code) of every ```python block, in order."""
    blocks: list[tuple[str, str]] = []
    heading, code, indent = "", None, ""
    for line in text.splitlines():
        if code is None and line.startswith("## "):
            heading = line[3:].strip()
        fence = re.match(r"^(\s*)```(\w*)\s*$", line)
        if code is None and fence and fence.group(2) == "python":
            code, indent = [], fence.group(1)
        elif code is not None and fence and fence.group(1) == indent and not fence.group(2):
            blocks.append((heading, textwrap.dedent("\n".join(code))))
            code = None
        elif code is not None:
            code.append(line)
    return blocks


def test_every_python_block_is_run_or_explained() -> None:
    blocks = python_blocks(README.read_text())
    assert {heading for heading, _ in blocks} <= set(RUN) | set(FRAGMENTS)
    assert {heading for heading, _ in blocks} >= set(RUN)  # the examples the issue names are there


def test_the_readme_examples_run_as_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMAUDIT_", "OPENAI_"))}
    store = tmp_path / "audit.db"
    with LocalServer() as server:
        env.update(
            XDG_DATA_HOME=str(tmp_path / "data"),
            HOME=str(tmp_path),
            LLMAUDIT_STORAGE="sqlite:///audit.db",  # what the README's configure() names, from cwd
            OPENAI_BASE_URL=f"{server.url}/v1",
            OPENAI_API_KEY="sk-test-not-a-real-key",
            PYTHONWARNINGS="error::ResourceWarning",
        )
        for index, (heading, code) in enumerate(python_blocks(README.read_text())):
            if heading not in RUN:
                continue
            script = tmp_path / f"block_{index}.py"
            script.write_text(code)
            result = subprocess.run(
                [sys.executable, str(script)],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, f"README block {index} ({heading}):\n{code}\n{result.stderr}"
            assert "Traceback" not in result.stderr, result.stderr
            if heading == "Recording records directly":
                with llmaudit.open(f"sqlite:///{store}") as log:
                    # the first block's call (session abc123 too) is the transport's, not this one
                    (record,) = log.records(session="abc123", source="manual")
                assert record.user == "alice" and record.request["messages"][0]["content"] == "Hi"
                assert record.response["choices"][0]["message"]["content"] == "Hello!"
    assert (tmp_path / "out.jsonl").is_file()  # the reading block's export ran


def test_a_python_block_inside_a_list_item_is_found() -> None:
    text = "## S\n\n- item\n\n  ```python\n  x = 1\n  ```\n"
    assert python_blocks(text) == [("S", "x = 1")]


@pytest.mark.parametrize("fence", ["```sh", "```"])
def test_other_blocks_are_not_taken_for_python(fence: str) -> None:
    assert python_blocks(f"## S\n{fence}\nllmaudit demo\n```\n") == []
