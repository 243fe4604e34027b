"""The distribution as a user gets it: the sdist and the wheel built from this tree, checked the way an
index and an installer see them (core metadata, license, contents), then the wheel installed into a fresh
virtual environment with nothing else, where ``llmaudit --help`` and ``llmaudit demo`` must run.

The sdist and the wheel are built once per session with the build backend pyproject.toml names
(hatchling, from the ``test`` dependency group, so building needs no download), the wheel from the
unpacked sdist as ``python -m build`` does: a file missing from the sdist fails the wheel. Installing the
wheel's dependencies needs the package registry: without it the install test skips on a developer's
machine and fails on CI, like the database tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.metadata import Metadata
from packaging.requirements import Requirement

from llmaudit import __version__

ROOT = Path(__file__).resolve().parents[1]
DIST = "llmaudit_sdk"
DIST_INFO = f"{DIST}-{__version__}.dist-info"
URL_LABELS = {"Homepage", "Documentation", "Source", "Issues"}
# what only the repository holds: CI, the Makefile, tests, the tools' caches, databases, virtual envs
NOT_DISTRIBUTED = re.compile(
    r"(^|/)(\.ci|\.venv|venv|tests|integrations|examples|benchmarks|__pycache__|\.pytest_cache|\.mypy_cache"
    r"|\.ruff_cache|\.hypothesis|\.git)(/|$)|(^|/)Makefile$|\.(pyc|db|db-wal|db-shm|sqlite|log)$"
)

# what the dependency groups or an extra install, and a bare install of the wheel must not
NOT_IN_THE_CORE = ("pytest", "openai", "anthropic", "ruff", "mypy", "hatchling", "django", "psycopg")

pytestmark = pytest.mark.slow


def _unavailable(message: str) -> None:
    """Skip on a developer's machine; fail on CI, which must check the package (conftest does the same
    for the database servers)."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must check the built package")
    pytest.skip(message)


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path

    def sdist_names(self) -> list[str]:
        with tarfile.open(self.sdist) as tar:
            return [m.name for m in tar.getmembers() if not m.isdir()]

    def sdist_file(self, name: str) -> bytes:
        with tarfile.open(self.sdist) as tar:
            member = tar.extractfile(f"{DIST}-{__version__}/{name}")
            assert member is not None, name
            return member.read()

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as whl:
            return whl.namelist()

    def wheel_file(self, name: str) -> bytes:
        with zipfile.ZipFile(self.wheel) as whl:
            return whl.read(name)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _backend(hook: str, out: Path, cwd: Path) -> Path:
    script = f"import sys, hatchling.build as b; print(b.{hook}(sys.argv[1]))"
    done = _run([sys.executable, "-c", script, str(out)], cwd)
    assert done.returncode == 0, f"{hook} failed in {cwd}:\n{done.stdout}\n{done.stderr}"
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist of this tree, and the wheel built from that sdist, as an index would receive them."""
    try:
        import hatchling.build  # noqa: F401
    except ImportError:
        _unavailable("hatchling is not installed (the `test` dependency group has it: make test)")
    out = tmp_path_factory.mktemp("dist")
    sdist = _backend("build_sdist", out, ROOT)
    unpacked = tmp_path_factory.mktemp("sdist")
    # the "data" filter (3.12, backported to 3.11.4) refuses links and paths out of the tree
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, **safe)  # our own sdist, filtered where Python can
    wheel = _backend("build_wheel", out, unpacked / f"{DIST}-{__version__}")
    return Built(sdist, wheel)


def _metadata(raw: bytes) -> Metadata:
    # validate=True applies the core metadata specification, which is what an index checks on upload
    return Metadata.from_email(raw, validate=True)


def _package_sources() -> set[str]:
    return {p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src/llmaudit").rglob("*.py")}


@pytest.mark.parametrize("artifact", ["wheel", "sdist"])
def test_metadata_is_complete_and_valid(built: Built, artifact: str) -> None:
    """Both artifacts carry valid core metadata: name, version, the MIT license expression with its file,
    the project's URLs, supported Python versions, the README as description, and no development extra."""
    raw = built.wheel_file(f"{DIST_INFO}/METADATA") if artifact == "wheel" else built.sdist_file("PKG-INFO")
    md = _metadata(raw)
    assert (md.name, str(md.version)) == ("llmaudit-sdk", __version__)
    assert md.license_expression == "MIT"
    assert md.license_files == ["LICENSE"]
    assert not [c for c in md.classifiers or [] if c.startswith("License ::")]  # PEP 639: expression only
    assert set(md.project_urls or {}) == URL_LABELS
    assert all(url.startswith("https://github.com/llmaudit/llmaudit-sdk") for url in md.project_urls.values())
    assert md.requires_python is not None
    floor = next(s.version for s in md.requires_python if s.operator == ">=")
    versions = [c.rsplit(" ", 1)[1] for c in md.classifiers or [] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    assert versions[0] == floor  # the oldest Python allowed is one we claim (and test)
    assert all(md.requires_python.contains(v) for v in versions)
    assert f"needs Python >= {floor}," in (ROOT / "Makefile").read_text()  # make's check says the same
    assert {"Topic :: System :: Logging", "Topic :: System :: Monitoring"} <= set(md.classifiers or [])
    assert md.description_content_type == "text/markdown"
    assert md.description is not None
    assert md.description.strip() == (ROOT / "README.md").read_text(encoding="utf-8").strip()
    assert not {"dev", "test", "lint"} & {str(e) for e in md.provides_extra or []}


def _requirements_of(md: Metadata, extra: str) -> set[str]:
    found = set()
    for req in md.requires_dist or []:
        if req.marker is not None and req.marker.evaluate({"extra": extra}):
            bare = Requirement(str(req))
            bare.marker = None
            found.add(str(bare))
    return found


def test_extra_all_installs_every_extra(built: Built) -> None:
    """`pip install 'llmaudit-sdk[all]'` brings every optional feature: an extra added to pyproject.toml
    without being named in `all` fails here."""
    md = _metadata(built.wheel_file(f"{DIST_INFO}/METADATA"))
    extras = {str(e) for e in md.provides_extra or []} - {"all"}
    assert {"postgres", "mysql", "httpx2", "compression", "django"} <= extras
    wanted = set().union(*(_requirements_of(md, extra) for extra in extras))
    assert _requirements_of(md, "all") == wanted


def test_license_file_is_in_the_sdist_and_the_wheel(built: Built) -> None:
    """The license the metadata names is shipped, identical to the repository's MIT LICENSE."""
    text = (ROOT / "LICENSE").read_bytes()
    assert text.startswith(b"MIT License")
    assert b"Permission is hereby granted, free of charge" in text
    assert built.sdist_file("LICENSE") == text
    assert built.wheel_file(f"{DIST_INFO}/licenses/LICENSE") == text


def test_sdist_holds_the_sources_and_nothing_of_the_repository(built: Built) -> None:
    """The sdist has the package's sources, README, license and build configuration; no CI files,
    Makefile, tests, virtual environment, database, log or cache."""
    prefix = f"{DIST}-{__version__}/"
    assert all(n.startswith(prefix) for n in built.sdist_names())
    names = [n.removeprefix(prefix) for n in built.sdist_names()]
    assert [n for n in names if NOT_DISTRIBUTED.search(n)] == []
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"src", "pyproject.toml", "README.md", "LICENSE", "PKG-INFO", ".gitignore"}
    assert {n.removeprefix("src/") for n in names if n.endswith(".py")} == _package_sources()
    assert "src/llmaudit/py.typed" in names


def test_wheel_holds_only_the_package(built: Built) -> None:
    """The wheel installs the `llmaudit` package (typed), its command and its license, nothing else."""
    names = built.wheel_names()
    assert [n for n in names if not n.startswith(("llmaudit/", f"{DIST_INFO}/"))] == []
    assert [n for n in names if NOT_DISTRIBUTED.search(n)] == []
    assert {n for n in names if n.endswith(".py")} == _package_sources()
    assert "llmaudit/py.typed" in names
    dist_info = {n.removeprefix(f"{DIST_INFO}/") for n in names if n.startswith(f"{DIST_INFO}/")}
    assert dist_info == {"METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE"}
    entry_points = built.wheel_file(f"{DIST_INFO}/entry_points.txt").decode()
    assert "llmaudit = llmaudit.cli:main" in entry_points


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would let the fresh environment see this tree or these settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLMAUDIT_", "PYTHON")) and k not in {"VIRTUAL_ENV", "XDG_DATA_HOME"}
    }
    return {**env, **extra}


def _install(venv: Path, wheel: Path, cwd: Path) -> None:
    """Install *wheel* and its dependencies (from the registry) into *venv*, with this interpreter's pip."""
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin/python")]
    done = _run([*pip, "install", "--quiet", "--no-compile", str(wheel)], cwd, _clean_env())
    if done.returncode == 0:
        return
    probe = _run([*pip, "index", "versions", "httpx"], cwd, _clean_env())
    if probe.returncode != 0:
        reason = "the package registry is unreachable, so the wheel's dependencies cannot be installed"
        _unavailable(f"{reason}:\n{done.stderr.strip()[-2000:]}")
    pytest.fail(f"installing the wheel failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding only the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv)
    assert made.returncode == 0, made.stderr
    _install(venv, built.wheel, venv)
    return venv


def test_wheel_installs_into_a_clean_environment_and_runs_the_demo(installed: Path, tmp_path: Path) -> None:
    """The installed wheel alone (no extras, no development tools) runs `llmaudit --help` and `llmaudit
    demo`, and writes only where LLMAUDIT_STORAGE says: nothing in the home or data directories."""
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    data.mkdir()
    store = tmp_path / "demo.db"
    env = _clean_env(HOME=str(home), LLMAUDIT_STORAGE=f"sqlite:///{store}", XDG_DATA_HOME=str(data))
    python, cli = str(installed / "bin/python"), str(installed / "bin/llmaudit")

    probe = (
        "import importlib.metadata as m, importlib.util as u, llmaudit; print(llmaudit.__file__); "
        "d = m.distribution('llmaudit-sdk'); print(d.version, d.metadata['License-Expression']); "
        "print(sorted(str(f) for f in d.files if f.name == 'LICENSE')); "
        f"print([n for n in {NOT_IN_THE_CORE!r} if u.find_spec(n)])"
    )
    where = _run([python, "-c", probe], tmp_path, env)
    assert where.returncode == 0, where.stderr
    location, version, licenses, dev_tools = where.stdout.splitlines()
    assert Path(location).is_relative_to(installed)
    assert version == f"{__version__} MIT"
    assert licenses == repr([f"{DIST_INFO}/licenses/LICENSE"])
    assert dev_tools == "[]"

    helped = _run([cli, "--help"], tmp_path, env)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: llmaudit" in helped.stdout
    assert "demo" in helped.stdout

    demo = _run([cli, "demo"], tmp_path, env)
    assert demo.returncode == 0, f"{demo.stdout}\n{demo.stderr}"
    recorded = rf"Recorded [1-9]\d* records into sqlite:///{re.escape(str(store))}"
    assert re.search(recorded, demo.stdout), demo.stdout
    verified = _run([cli, "verify"], tmp_path, env)
    assert verified.returncode == 0, f"{verified.stdout}\n{verified.stderr}"
    assert store.stat().st_size > 0
    assert list(home.iterdir()) == []
    assert list(data.iterdir()) == []


def test_make_demo_installs_only_the_package_and_its_viewer(tmp_path: Path) -> None:
    """`make demo` installs the package with the web viewer's extra alone (the demo ends with the
    command that opens the viewer); the other extras and the development tools (the `dev`
    dependency group) are what `make test` installs."""
    if shutil.which("make") is None:
        _unavailable("make is not installed")
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)

    def plan(target: str) -> list[str]:
        done = _run(["make", "-n", target], tmp_path, {**os.environ, "MAKEFLAGS": ""})
        assert done.returncode == 0, done.stderr
        return [line for line in done.stdout.splitlines() if " pip install " in line]

    assert plan("demo") == [".venv/bin/python -m pip install --quiet -e '.[ui]'"]
    installs = plan("unit")
    assert installs[-1].endswith("pip install --quiet -e '.[all]' --group dev")
    assert any("--upgrade 'pip>=25.1'" in line for line in installs)


def test_the_wheel_ships_the_viewers_templates_and_assets(built: Built) -> None:
    """`llmaudit ui` works offline from the wheel alone: every template, the CSS, the script and
    the icon are in it (they are not Python files, so a packaging change could drop them)."""
    ui = ROOT / "src" / "llmaudit" / "ui"
    wanted = {
        f"llmaudit/ui/{path.relative_to(ui).as_posix()}"
        for folder in ("templates", "static")
        for path in (ui / folder).rglob("*")
        if path.is_file()
    }
    assert {
        "llmaudit/ui/static/app.css",
        "llmaudit/ui/static/app.js",
        "llmaudit/ui/templates/base.html",
    } <= wanted
    assert wanted <= set(built.wheel_names())
