"""The public surface is curated: this list changes only on purpose."""

from __future__ import annotations

import ast
from pathlib import Path

import llmaudit

SRC = Path(llmaudit.__file__).parent

PUBLIC = [
    "AsyncAuditTransport",
    "AuditTransport",
    "instrument",
    "is_instrumented",
    "providers",
    "transports",
    "uninstrument",
    "SCHEMA_VERSION",
    "AuditError",
    "AuditRecord",
    "Auditor",
    "ConfigurationError",
    "ContextThreadPoolExecutor",
    "LLMAuditError",
    "NullAuditor",
    "Query",
    "Reader",
    "Redactor",
    "Rule",
    "open",
    "Storage",
    "StorageError",
    "StorageNotFoundError",
    "StorageUnavailableError",
    "WriterStats",
    "__version__",
    "audited",
    "configure",
    "current_session",
    "flush",
    "get_auditor",
    "open_storage",
    "propagate",
    "register_storage",
    "session",
    "shutdown",
    "stats",
    "verify_proof",
]


def test_exported_names_are_exactly_the_curated_list() -> None:
    """Adding or removing a public name is a deliberate act (update this test and the docs)."""
    assert sorted(llmaudit.__all__) == sorted(PUBLIC)
    for name in llmaudit.__all__:
        assert hasattr(llmaudit, name), name


def test_every_public_callable_is_documented() -> None:
    """Every exported object is documented, so `help(llmaudit.X)` is useful."""
    for name in llmaudit.__all__:
        obj = getattr(llmaudit, name)
        if callable(obj):
            assert obj.__doc__, f"llmaudit.{name} has no docstring"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.add("." * node.level + (node.module or ""))
    return found


def _absolute(path: Path, relative: str) -> str:
    """The absolute name of the module that *relative* (``..x.y``) names from the file *path*."""
    level = len(relative) - len(relative.lstrip("."))
    package = path.relative_to(SRC.parent).with_suffix("").parts[:-level]
    return ".".join((*package, *filter(None, relative[level:].split("."))))


def test_storage_imports_nothing_above_it() -> None:
    """Data flows one way: storage (its sql/ package included) sits below the writer and the read
    side and knows nothing about them: it imports the record, the chain and the errors only."""
    allowed = ("llmaudit.storage", "llmaudit.record", "llmaudit.integrity", "llmaudit._errors")
    for path in (SRC / "storage").rglob("*.py"):
        for module in _imports(path):
            assert _absolute(path, module).startswith(allowed), (path, module)


def test_the_pipeline_imports_no_stage_above_it_and_its_parts_point_one_way() -> None:
    """The pipeline sits below capture, read and the edges; inside it, the settings do not take their
    defaults from the writer, signal handling knows no auditor, and the queue, the record pipeline and
    the sink know no writer or runner."""
    above = ("..capture", "..read", "..cli", "..web", "..transports")
    for path in (SRC / "pipeline").glob("*.py"):
        for module in _imports(path):
            assert not module.startswith(above), (path, module)
    assert not _imports(SRC / "pipeline" / "settings.py") & {".writer", ".auditor", ".process_runner"}
    assert not _imports(SRC / "pipeline" / "signals.py") & {".auditor", ".writer", ".settings"}
    for part in ("queue.py", "pipeline.py", "sink.py", "limits.py", "stats.py"):
        assert not _imports(SRC / "pipeline" / part) & {".writer", ".auditor", ".process_runner"}, part


def test_record_and_codec_import_nothing_above_them() -> None:
    """The record and its encoding are the bottom of the stack (below them only `record.frozen`, the
    dataclass helper, which imports nothing of ours)."""
    assert _imports(SRC / "record" / "frozen.py") == set()
    assert _imports(SRC / "record" / "model.py") == {".frozen"}
    assert _imports(SRC / "record" / "codec.py") <= {".model"}
    assert _imports(SRC / "_errors.py") == set()


def test_the_testing_helpers_and_the_storage_contract_are_public() -> None:
    """``llmaudit.testing`` and the storage protocols are public API too: their names change only on
    purpose (update this test, the README and docs/storage-backends.md)."""
    import llmaudit.storage
    import llmaudit.testing

    assert sorted(llmaudit.testing.__all__) == ["CONTRACT_RULES", "capture_records", "check_storage"]
    capabilities = {"ChainStore", "ErasureReport", "MaintainedStore", "RecordJSONStore", "RegistryStore"}
    capabilities |= {"SchemaStore", "Storage", "SummaryStore"}
    assert capabilities <= set(llmaudit.storage.__all__)
    for name in capabilities:
        assert getattr(llmaudit.storage, name).__doc__, name
