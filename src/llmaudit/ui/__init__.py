"""The web viewer (``llmaudit ui``): a read-only, local web application over any store.

`create_app(storage_url)` returns the ASGI application (Starlette): the sessions list, a session's
conversation, a record, the dashboard and the integrity report, server-rendered with Jinja2 and
shipped with every asset it uses (CSS, one small script, icons), so it works offline and fetches
nothing from another origin. Mount it inside your own application behind your own login, or run it
with ``llmaudit ui``.

Modules: `app` (routes, pages, headers, token, error pages), `queries` (every read the pages make,
through `llmaudit.open`), `render` (conversation tree, JSON as escaped HTML, formatting), `charts`
(the dashboard's SVG geometry). An edge of the package: it imports the read side and never the
writer; it never writes to the store. Needs the ``ui`` extra (``pip install 'llmaudit-sdk[ui]'``).
"""

from __future__ import annotations

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by tests/test_optional_imports.py
    raise ImportError(
        f"llmaudit.ui needs the web viewer's dependencies ({exc.name} is missing): "
        "pip install 'llmaudit-sdk[ui]'"
    ) from exc

from .app import create_app

__all__ = ["create_app"]
