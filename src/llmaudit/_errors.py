"""llmaudit's exception tree, in one place.

```
LLMAuditError                     base of everything llmaudit raises on purpose
 ├── ConfigurationError           a bad option, URL or environment variable (also a ValueError)
 ├── VerificationError            a proof cannot be made (no signed checkpoint covers the record), or
 │                                a proof or checkpoint file is malformed
 ├── StorageError                 a backend refused an operation; the URL in the message has no password
 │    ├── StorageUnavailableError the backend cannot be reached now; the writer retries and spills
 │    └── StorageNotFoundError    the read side was pointed at a store that does not exist (it never
 │                                creates one: a typo in a URL must not look like an empty log)
 └── AuditError                   strict mode only: a call whose record could be neither written nor spilled
```

Driver exceptions (SQLAlchemy, OS errors) are translated into these at the storage boundary, so a user
mistake never shows a traceback from deep inside a driver.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "ConfigurationError",
    "LLMAuditError",
    "StorageError",
    "StorageNotFoundError",
    "StorageUnavailableError",
    "VerificationError",
]


class LLMAuditError(Exception):
    """Base class of every exception that llmaudit raises on purpose."""


class ConfigurationError(LLMAuditError, ValueError):
    """An option, storage URL or ``LLMAUDIT_*`` variable is invalid."""


class VerificationError(LLMAuditError):
    """A proof cannot be made or read: no signed checkpoint covers the record, or the file given is
    not a proof or checkpoint."""


class StorageError(LLMAuditError):
    """A storage backend refused an operation (the record or the request is at fault)."""


class StorageUnavailableError(StorageError):
    """The storage backend cannot be reached right now; retrying later may succeed."""


class AuditError(LLMAuditError):
    """Raised only with ``strict=True``: the record could be neither written nor spilled."""


class StorageNotFoundError(StorageError):
    """The read side was asked to open a store that does not exist (no SQLite file, no JSONL
    directory, no llmaudit table in the database). Reading never creates a store.

    Attributes:
        url: the storage URL (password removed) that names the missing store.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url
