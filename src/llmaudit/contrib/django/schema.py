"""llmaudit's tables under ``manage.py migrate``: the app's migrations call these, and they call
llmaudit's own schema code (what ``llmaudit db upgrade`` runs), so that either of them may run first
and both leave the same schema version.

The tables are created and upgraded through `SQLStorage` on its own connection to the database the
migration runs on (its ``settings_dict``, so a test database is the one changed); only the alias that
holds the records (``LLMAUDIT["DATABASE"]``) is touched. Going backwards drops the records table and
the tables beside it, which is what migrating an app back to zero means: the records are gone.
"""

from __future__ import annotations

from typing import Any

from .conf import database_alias, open_sql_store, storage_url

__all__ = ["drop_tables", "upgrade_tables"]


def _url(schema_editor: Any) -> str | None:
    connection = schema_editor.connection
    if connection.alias != database_alias():
        return None
    return storage_url(connection.settings_dict)


def upgrade_tables(apps: Any, schema_editor: Any) -> None:
    """Create llmaudit's tables, or bring them to this llmaudit's schema version."""
    url = _url(schema_editor)
    if url is None:
        return
    store = open_sql_store(url)  # opening creates a fresh schema, and migrates an older one
    try:
        store.upgrade()
    finally:
        store.close()


def drop_tables(apps: Any, schema_editor: Any) -> None:
    """Drop the records table and the tables llmaudit keeps beside it (schema, chain, registry)."""
    from ..._errors import StorageNotFoundError  # noqa: PLC0415
    from ...storage.sql import SQLStorage  # noqa: PLC0415

    url = _url(schema_editor)
    if url is None:
        return
    try:
        store = SQLStorage(url, create=False)
    except StorageNotFoundError:
        return
    try:
        names = [t.name for t in reversed(store.table.metadata.sorted_tables)]
    finally:
        store.close()
    for name in names:
        schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(name)}")
