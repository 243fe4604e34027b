"""Which optional capabilities each built-in backend has, as the writer and the reader find them
(``isinstance`` on the runtime-checkable protocols of ``llmaudit.storage``): a member renamed or
dropped would silently turn a capability off (no more pushed-down summaries, no idle checkpoint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmaudit.storage import (
    ChainStore,
    ErasureReport,
    MaintainedStore,
    RecordJSONStore,
    RegistryStore,
    SchemaStore,
    Storage,
    SummaryStore,
    open_storage,
)

CAPABILITIES = {
    "ChainStore": ChainStore,
    "RegistryStore": RegistryStore,
    "MaintainedStore": MaintainedStore,
    "RecordJSONStore": RecordJSONStore,
    "SummaryStore": SummaryStore,
    "ErasureReport": ErasureReport,
    "SchemaStore": SchemaStore,
}
EXPECTED = {
    "memory": {"ChainStore", "RegistryStore"},
    "jsonl": {"ChainStore", "RegistryStore", "RecordJSONStore"},
    "sqlite": {
        "ChainStore",
        "RegistryStore",
        "MaintainedStore",
        "SummaryStore",
        "ErasureReport",
        "SchemaStore",
    },
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_built_in_backend_has_exactly_its_capabilities(kind: str, tmp_path: Path) -> None:
    url = {"memory": "memory://", "jsonl": f"jsonl://{tmp_path}/log", "sqlite": f"sqlite:///{tmp_path}/a.db"}
    store = open_storage(url[kind])
    try:
        assert isinstance(store, Storage)
        found = {name for name, capability in CAPABILITIES.items() if isinstance(store, capability)}
        assert found == EXPECTED[kind]
        if isinstance(store, RecordJSONStore):
            assert store.writes_record_json is True
    finally:
        store.close()
