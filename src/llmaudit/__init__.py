"""llmaudit: record every LLM API call into a local, tamper-evident audit log.

The public API is exactly ``__all__`` below (locked by ``tests/test_public_api.py``); everything in an
underscored module is private.
"""

from typing import TYPE_CHECKING

from . import providers, transports
from ._errors import (
    AuditError,
    ConfigurationError,
    LLMAuditError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
)
from ._version import __version__
from .capture.decorator import audited
from .capture.instrument import instrument, is_instrumented, uninstrument
from .capture.session import ContextThreadPoolExecutor, current_session, propagate, session
from .integrity.proofs import check_proof as verify_proof
from .pipeline.auditor import Auditor, NullAuditor, configure, flush, get_auditor, shutdown, stats
from .pipeline.stats import WriterStats
from .read.reader import Reader, open
from .record.model import SCHEMA_VERSION, AuditRecord
from .redact.redactor import Redactor, Rule
from .storage import Query, Storage, open_storage, register_storage

if TYPE_CHECKING:  # transports of both httpx branches, for type checkers (see capture/typed.py)
    from .capture.typed import AsyncAuditTransport, AuditTransport
else:
    from .capture.transport import AsyncAuditTransport, AuditTransport

__all__ = [
    "SCHEMA_VERSION",
    "AsyncAuditTransport",
    "AuditError",
    "AuditRecord",
    "AuditTransport",
    "Auditor",
    "ConfigurationError",
    "ContextThreadPoolExecutor",
    "LLMAuditError",
    "NullAuditor",
    "Query",
    "Reader",
    "Redactor",
    "Rule",
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
    "instrument",
    "is_instrumented",
    "open",
    "open_storage",
    "propagate",
    "providers",
    "register_storage",
    "session",
    "shutdown",
    "stats",
    "transports",
    "uninstrument",
    "verify_proof",
]
