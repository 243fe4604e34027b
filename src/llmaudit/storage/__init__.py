"""Storage backends behind one small protocol, chosen by URL.

``open_storage("sqlite:///audit.db")``, ``"jsonl:///var/log/llm"``, ``"postgresql+psycopg://…"``,
``"mysql+pymysql://…"``, ``"memory://"``; more schemes through the ``llmaudit.storage`` entry points
or `register_storage`.

The contract a backend implements is `Storage` (write, read, close); each optional capability is a
runtime-checkable protocol of its own, tested with ``isinstance``: `ChainStore`, `RegistryStore`,
`CheckpointStore`, `MaintainedStore`, `RecordJSONStore`, `SummaryStore`, `ErasureReport`, `SchemaStore`.
docs/storage-backends.md explains each one, and ``llmaudit.testing.check_storage`` runs the
contract suite against a backend.
"""

from ._base import (
    ChainStore,
    CheckpointStore,
    ErasureReport,
    MaintainedStore,
    ProblemHandler,
    Query,
    RecordJSONStore,
    RegistryStore,
    SchemaStore,
    Storage,
    SummaryStore,
    matches,
    redact_url,
    select,
)
from ._registry import (
    ENTRY_POINT_GROUP,
    StorageFactory,
    known_schemes,
    open_storage,
    register_storage,
)
from ._summary import SessionSummary, StatsRow

__all__ = [
    "ENTRY_POINT_GROUP",
    "ChainStore",
    "CheckpointStore",
    "ErasureReport",
    "MaintainedStore",
    "ProblemHandler",
    "Query",
    "RecordJSONStore",
    "RegistryStore",
    "SchemaStore",
    "SessionSummary",
    "StatsRow",
    "Storage",
    "StorageFactory",
    "SummaryStore",
    "known_schemes",
    "matches",
    "open_storage",
    "redact_url",
    "register_storage",
    "select",
]
