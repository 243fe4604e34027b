"""Imports point one way: no module of llmaudit imports a module of a higher stage.

Every module under ``src/llmaudit`` is parsed (not imported) and each of its imports of llmaudit is
resolved: top-level and function-level ``import``/``from … import``, relative imports (``from . import
x``, ``from ..record import model``), and ``importlib.import_module`` calls with a literal name (or an
f-string starting with one). Each module is mapped to its stage by the longest matching prefix in
`LAYERS`; an import is upward when its target's stage stands higher than the importer's, or is a
different stage on the same level (siblings such as capture and read do not import each other). The
edges that are known and cannot be removed yet are listed, each with its reason, in `ALLOWED`; an allowed
edge that no longer exists fails too, so the list only shrinks.

The checker is tested on a synthetic package in ``tmp_path``, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: (level, stage, module prefixes), from the bottom. A module belongs to the stage of its longest
#: matching prefix. Stages on one level are siblings: neither may import the other, except the edges
#: (`PEERS`), which may import each other (the CLI opens the web viewer, ``llmaudit`` re-exports).
#: The record stage is drawn in three tiers so that record and providers need no two-way allowance:
#: the record itself and the pure decoders providers stand on; the providers; then building a record
#: from a capture (``record.raw`` sits with ``record.build`` because ``RawCapture.to_record`` loads it).
LAYERS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (0, "base", ("llmaudit._errors", "llmaudit._guard", "llmaudit._version")),
    (1, "record", ("llmaudit.record",)),
    (2, "providers", ("llmaudit.providers",)),
    (3, "record building", ("llmaudit.record.build", "llmaudit.record.raw")),
    (4, "redact", ("llmaudit.redact",)),
    (4, "integrity", ("llmaudit.integrity",)),
    (5, "storage", ("llmaudit.storage",)),
    (6, "pipeline", ("llmaudit.pipeline",)),
    (7, "capture", ("llmaudit.capture",)),
    (7, "read", ("llmaudit.read",)),
    (
        8,
        "edges",
        (
            "llmaudit",  # the package's __init__ only (a prefix without a dot matches itself alone)
            "llmaudit.transports",
            "llmaudit.web",
            "llmaudit.cli",
            "llmaudit.testing",
            "llmaudit.ui",
            "llmaudit.contrib",
            "llmaudit.otel",
        ),
    ),
)
PEERS = frozenset({"edges"})

#: Known upward edges, ``(importer, imported module)``, each a prefix of the modules' dotted names (so
#: that an entry survives a module becoming a package or being split: ``llmaudit.storage.sql`` covers
#: ``storage/sql/*.py`` and ``storage/sql_summary.py``). Each one is a debt, with its reason.
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        # The transport core finds a branch's binding by name (``transports.<branch>.BRANCH``), and
        # instrument() installs the aiohttp middleware: both at run time, with importlib; the edges
        # registering themselves with the core would remove them.
        ("llmaudit.capture.branches", "llmaudit.transports"),
        ("llmaudit.capture.instrument", "llmaudit.transports.aiohttp"),
    }
)


@dataclass(frozen=True)
class Edge:
    importer: str
    target: str
    line: int
    path: Path

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.target}"


def module_names(src: Path, package: str) -> dict[str, Path]:
    """Every module of *package* under *src*, by dotted name (a package by its own name)."""
    names = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _literal_prefix(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value.rstrip(".")
    return None


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, tuple[str, ...]]]:
    """``(module, names)`` pairs an AST node imports: names are the ``from`` import's names."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, ()
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        yield target, tuple(alias.name for alias in node.names)
    elif isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "import_module":
            literal = _literal_prefix(node.args[0])
            if literal:
                yield literal, ()


def imports(src: Path, package: str) -> list[Edge]:
    """Every import of a module of *package* by a module of *package*, resolved to the module it
    loads (``from pkg import sub`` is an import of ``pkg.sub`` when that is a module)."""
    modules = module_names(src, package)
    edges = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target, names in _imported(node, module, is_package):
                if target != package and not target.startswith(package + "."):
                    continue
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
                for resolved in subs or [target]:
                    edges.append(Edge(module, resolved, getattr(node, "lineno", 0), path))
    return edges


def stage_of(module: str, layers: tuple[tuple[int, str, tuple[str, ...]], ...] = LAYERS) -> tuple[int, str]:
    """The ``(level, stage)`` of *module*: the stage of its longest matching prefix (a prefix without a
    dot, the root package, matches only itself: a new top-level module must be given a stage)."""
    best: tuple[int, int, str] | None = None
    for level, stage, prefixes in layers:
        for prefix in prefixes:
            matches = module == prefix or ("." in prefix and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), level, stage)
    if best is None:
        raise LookupError(f"{module} belongs to no stage: add it to LAYERS")
    return best[1], best[2]


def upward(
    edges: list[Edge],
    layers: tuple[tuple[int, str, tuple[str, ...]], ...] = LAYERS,
    peers: frozenset[str] = PEERS,
) -> list[Edge]:
    """The edges that import a higher stage, or a sibling stage on the same level."""
    found = []
    for edge in edges:
        (from_level, from_stage), (to_level, to_stage) = (
            stage_of(edge.importer, layers),
            stage_of(edge.target, layers),
        )
        if to_stage == from_stage or to_level < from_level:
            continue
        if to_level == from_level and from_stage in peers:
            continue
        found.append(edge)
    return found


def _allowed(edge: Edge, entry: tuple[str, str]) -> bool:
    return edge.importer.startswith(entry[0]) and edge.target.startswith(entry[1])


def test_every_module_belongs_to_a_stage() -> None:
    """A new top-level module or package must be placed in LAYERS (it fails here otherwise)."""
    for module in module_names(SRC, "llmaudit"):
        stage_of(module)


def test_no_module_imports_a_higher_stage() -> None:
    """The import graph is a DAG from the edges down to base: no upward or sideways edge beyond the
    commented allow-list, and every allowed edge still exists (a removed debt leaves the list)."""
    found = upward(imports(SRC, "llmaudit"))
    bad = [e for e in found if not any(_allowed(e, entry) for entry in ALLOWED)]
    assert not bad, "upward imports:\n" + "\n".join(
        f"{e} ({stage_of(e.importer)[1]} -> {stage_of(e.target)[1]})" for e in bad
    )
    stale = {entry for entry in ALLOWED if not any(_allowed(e, entry) for e in found)}
    assert not stale, f"allowed edges that no longer exist, remove them from ALLOWED: {stale}"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


SYNTHETIC = {
    "pkg/__init__.py": "from . import top\n",
    "pkg/top.py": "from .low import thing\n",
    "pkg/low/__init__.py": "",
    "pkg/low/thing.py": "import os\n",
    "pkg/mid/__init__.py": "",
    "pkg/mid/a.py": "from ..low import thing\n",
}
SYNTHETIC_LAYERS = (
    (0, "low", ("pkg.low",)),
    (1, "mid", ("pkg.mid",)),
    (1, "side", ("pkg.side",)),
    (2, "top", ("pkg", "pkg.top")),
)


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("pkg/low/bad.py", "import os\n\nfrom pkg.mid import a\n", 3),  # absolute, a submodule by name
        ("pkg/low/bad.py", "from ..mid.a import x\n", 1),  # relative
        ("pkg/low/bad.py", "def f():\n    import pkg.mid.a\n", 2),  # inside a function
        ("pkg/low/bad.py", "from .. import mid\n", 1),  # from . import of a package
        ("pkg/low/bad.py", "from pkg import top\n", 1),  # the top package's module
        ("pkg/low/__init__.py", "from . import thing\nfrom ..mid import a\n", 2),  # from a package's __init__
        ("pkg/low/bad.py", "import importlib\nm = importlib.import_module(f'pkg.mid.{1}')\n", 2),
        ("pkg/mid/b.py", "from ..side import c\n", 1),  # a sibling on the same level
    ],
)
def test_the_checker_finds_an_upward_import(tmp_path: Path, name: str, text: str, line: int) -> None:
    """On a synthetic package, each form of import from a lower stage to a higher one is reported with
    its module and line; the clean tree reports nothing."""
    src = _tree(tmp_path, {**SYNTHETIC, "pkg/side/__init__.py": "", "pkg/side/c.py": ""})
    assert upward(imports(src, "pkg"), SYNTHETIC_LAYERS, frozenset()) == []
    (src / name).write_text(text)
    found = upward(imports(src, "pkg"), SYNTHETIC_LAYERS, frozenset())
    importer = name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    assert [(e.importer, e.line) for e in found] == [(importer, line)]


def test_the_checker_resolves_relative_imports_from_a_package(tmp_path: Path) -> None:
    """``from . import x`` in a package's ``__init__`` is an import of the package's own submodule."""
    src = _tree(tmp_path, SYNTHETIC)
    assert {(e.importer, e.target) for e in imports(src, "pkg")} == {
        ("pkg", "pkg.top"),
        ("pkg.top", "pkg.low.thing"),
        ("pkg.mid.a", "pkg.low.thing"),
    }


def test_the_real_checker_rejects_capture_in_record(tmp_path: Path) -> None:
    """With the real LAYERS, ``from llmaudit.capture import x`` in record/ is an upward import."""
    src = _tree(
        tmp_path,
        {
            "llmaudit/__init__.py": "",
            "llmaudit/capture/__init__.py": "",
            "llmaudit/capture/x.py": "",
            "llmaudit/record/__init__.py": "",
            "llmaudit/record/model.py": "from llmaudit.capture import x\n",
        },
    )
    found = upward(imports(src, "llmaudit"))
    assert [(e.importer, e.target, e.line) for e in found] == [
        ("llmaudit.record.model", "llmaudit.capture.x", 1)
    ]


def test_a_module_outside_every_stage_is_refused() -> None:
    """A new top-level module is not silently put with the root package: it must be placed."""
    assert stage_of("pkg", SYNTHETIC_LAYERS) == (2, "top")
    with pytest.raises(LookupError, match=r"pkg\._new belongs to no stage"):
        stage_of("pkg._new", SYNTHETIC_LAYERS)
