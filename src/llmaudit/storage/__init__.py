"""Storage backends behind one small protocol, chosen by URL.

``open_storage("sqlite:///audit.db")``, ``"jsonl:///var/log/llm"``, ``"postgresql+psycopg://…"``,
``"mysql+pymysql://…"``, ``"memory://"``; more schemes through the ``llmaudit.storage`` entry points.
"""

from ._base import Query, Storage, matches, redact_url, select
from ._registry import (
    ENTRY_POINT_GROUP,
    StorageFactory,
    known_schemes,
    open_storage,
    register_storage,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Query",
    "Storage",
    "StorageFactory",
    "known_schemes",
    "matches",
    "open_storage",
    "redact_url",
    "register_storage",
    "select",
]
