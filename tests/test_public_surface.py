"""Tests go through the public surface: a test file that imports a private llmaudit module (or a
``_name`` from any llmaudit module) or touches a private attribute (``obj._queue``) says why, in a
comment starting ``# private:`` on that line or above it in the same paragraph (no blank line between),
for example ``# private: the only way to observe the pipe filling``. Behaviour is tested through
``llmaudit``, ``llmaudit.open``, ``llmaudit.testing`` and storage URLs; private-level tests are for
pure helpers, and are marked as such.

The files are parsed, not imported. The checker itself is tested on a synthetic file.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_DIRS = ("tests", "integrations")

#: Modules a user imports (the README, docs/ and examples/ use them).
PUBLIC_MODULES = frozenset(
    {
        "llmaudit",
        "llmaudit.storage",
        "llmaudit.testing",
        "llmaudit.providers",
        "llmaudit.otel",
        "llmaudit.ui",
        "llmaudit.cli",
    }
)
#: Packages whose every module is public (one module per framework or adapter).
PUBLIC_PACKAGES = ("llmaudit.transports", "llmaudit.web", "llmaudit.contrib.django")
#: Private-looking names that are public APIs (namedtuple, Django's ``Model._meta``) or stdlib.
ALLOWED_ATTRIBUTES = frozenset(
    {"_exit", "_getframe", "_replace", "_asdict", "_fields", "_current_frames", "_meta"}
)
MARK = "# private:"


def _public(module: str) -> bool:
    return module in PUBLIC_MODULES or any(module.startswith(p + ".") for p in PUBLIC_PACKAGES)


def _private_name(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(source: str, filename: str = "<test>") -> list[tuple[int, str]]:
    """(line, what) for each private import or attribute use not covered by a ``# private:``
    comment (on its line, or above it in the same paragraph: no blank line between)."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()

    # a "# private:" comment covers its own line and the lines after it, up to the next blank line
    covered: set[int] = set()
    for number, line in enumerate(lines, 1):
        if MARK in line:
            n = number
            while n <= len(lines) and (n == number or lines[n - 1].strip()):
                covered.add(n)
                n += 1

    def explained(node: ast.expr | ast.stmt) -> bool:
        return any(n in covered for n in range(node.lineno, (node.end_lineno or node.lineno) + 1))

    def what_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "llmaudit" and not _public(a.name)]
            return f"import {', '.join(names)}" if names else None
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "llmaudit":
                return None
            if not _public(node.module):
                return f"from {node.module} import ..."
            hidden = [a.name for a in node.names if _private_name(a.name)]
            return f"from {node.module} import {', '.join(hidden)}" if hidden else None
        if isinstance(node, ast.Attribute) and _private_name(node.attr):
            owner = node.value
            mine = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            return None if mine or node.attr in ALLOWED_ATTRIBUTES else f".{node.attr}"
        return None

    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        what = what_of(node)
        if what is not None and isinstance(node, ast.expr | ast.stmt) and not explained(node):
            found.append((node.lineno, what))
    return sorted(found)


def _test_files() -> list[Path]:
    return sorted(p for d in TEST_DIRS for p in (ROOT / d).rglob("*.py") if p.name != Path(__file__).name)


def test_no_test_depends_on_a_private_name_without_saying_why() -> None:
    report = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in _test_files()
        for line, what in violations(path.read_text(encoding="utf-8"), str(path))
    ]
    assert not report, (
        "private imports or attributes without a '# private: <why>' comment (test through the public "
        "API, or say why it cannot be):\n" + "\n".join(report)
    )


def test_the_checker_finds_private_uses_and_accepts_explained_ones() -> None:
    source = "\n".join(
        [
            "import llmaudit",
            "from llmaudit.storage import Query",
            "from llmaudit.web.asgi import AuditMiddleware",
            "from llmaudit.pipeline.writer import Writer",
            "from llmaudit import _guard",
            "import llmaudit.record.codec",
            "writer._queue.put(1)",
            "self._lock = 1",
            "os._exit(0)",
            "# private: the only way to observe the queue",
            "writer._queue.get()",
            "from llmaudit.record.codec import (  # private: a pure helper",
            "    encode,",
            ")",
            "x = writer.__class__",
            "",
            "writer._wake.set()",
        ]
    )
    assert violations(source) == [
        (4, "from llmaudit.pipeline.writer import ..."),
        (5, "from llmaudit import _guard"),
        (6, "import llmaudit.record.codec"),
        (7, "._queue"),
        (17, "._wake"),
    ]
