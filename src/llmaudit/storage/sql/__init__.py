"""SQL storage through SQLAlchemy 2 Core: SQLite (embedded default), PostgreSQL, MySQL/MariaDB.

``SQLStorage("sqlite:///audit.db")`` (or ``open_storage`` with any SQLAlchemy URL) stores records in
one table with a column per record field. The package is split by concern, so that a change to one
touches one module:

- ``schema``: the tables, their column types and indexes (describes; never connects);
- ``migrations``: the schema version and the steps between versions (schema only, never records);
- ``engine``: URL normalisation, engine creation and driver options, driver errors told apart;
- ``store``: `SQLStorage` itself: writes, reads, chain heads, registry, erasure and pruning;
- ``statements``: the idempotent insert (compiled for ``executemany``) and the head upsert;
- ``query``: a `Query` as a ``WHERE`` clause; ``summaries``: `stats` and `sessions` pushed down
  into the database;
- ``sqlite``: what only SQLite needs (file modes, pragmas and WAL, checkpoints, percentiles).

Only `SQLStorage` and `DEFAULT_TABLE` are the public surface; the submodules are private.
"""

from .schema import DEFAULT_TABLE
from .store import SQLStorage

__all__ = ["DEFAULT_TABLE", "SQLStorage"]
