"""The viewer's ASGI application: routes, pages, security headers, token check and error pages.

`create_app` returns a Starlette application that serves server-rendered HTML (Jinja2, autoescaped
everywhere) over one store, read-only. Every page's data comes from `queries.Store`; every recorded
string is shown as text (`render.visible` runs on every value a template prints). Each response
carries a strict Content-Security-Policy (no inline script or style, nothing from another origin)
and the usual hardening headers. A failure to read the store is a page that says what is wrong,
never a traceback.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._errors import (
    ConfigurationError,
    LLMAuditError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
)
from .._version import __version__
from ..read.summary import Tally
from ..record.codec import dumps, record_to_dict
from ..storage import redact_url
from . import charts, render
from .queries import RANGES, SPLITS, Filters, Store

__all__ = ["CONTENT_SECURITY_POLICY", "TOKEN_COOKIE", "create_app"]

logger = logging.getLogger("llmaudit")

_HERE = Path(__file__).parent
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
#: The cookie a ``?token=`` sets, so that the token leaves the address bar after the first visit.
TOKEN_COOKIE = "llmaudit_token"  # noqa: S105 - the cookie's name, not a secret
_RAW_FIELDS = ("request", "response", "headers", "metadata", "input_text", "output_text")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Guard:
    """Adds the security headers to every response and, with a token, lets through only requests
    that carry it (``Authorization: Bearer``, the cookie, or ``?token=`` once, which sets the
    cookie and redirects to the same page without it)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"server"]
                names = {h[0].lower() for h in headers}
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in names)
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        if self.token is not None:
            verdict = self._check(scope)
            if verdict is not None:
                await verdict(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)

    def _check(self, scope: Scope) -> Response | None:
        assert self.token is not None
        request = Request(scope)
        expected = self.token.encode()
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), expected):
            return None
        if hmac.compare_digest(request.cookies.get(TOKEN_COOKIE, "").encode(), expected):
            return None
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given.encode(), expected):
            rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"]
            # the path includes the mount point already (as Starlette and uvicorn give it)
            target = scope["path"] + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict", path="/")
            return response
        body = (
            "<!doctype html><meta charset=utf-8><title>llmaudit: token needed</title>"
            "<h1>A token is needed</h1><p>This viewer was started with <code>--token</code>: open the "
            "address it printed (with <code>?token=</code>), or send <code>Authorization: Bearer "
            "TOKEN</code>.</p>"
        )
        return Response(body, status_code=401, media_type="text/html", headers={"www-authenticate": "Bearer"})


def _finalize(value: Any) -> Any:
    """What every ``{{ … }}`` prints: None as nothing, text cleaned (`render.visible`) before
    Jinja escapes it; `Markup` built by `render` as it is."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return render.visible(value)
    return value


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=render.money,
        number=render.number,
        duration=render.duration,
        ts=render.timestamp,
        span=render.span,
        pct=lambda v: render.NONE if v is None else f"{v:.1%}",
    )
    env.globals.update(
        version=__version__, ranges=[name for name, _ in RANGES], splits=SPLITS, fn_text=_compact
    )
    return env


class _Viewer:
    """The pages, over one `Store`."""

    def __init__(self, store: Store, *, live_interval_s: float = 3.0) -> None:
        self.store = store
        self.env = _environment()
        self.live_interval_s = live_interval_s

    # -- helpers -----------------------------------------------------------------------------------

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        base = request.scope.get("root_path", "")

        def link(path: str, params: dict[str, Any] | None = None) -> str:
            query = urlencode({k: v for k, v in (params or {}).items() if v is not None and v != ""})
            return f"{base}{path}{'?' + query if query else ''}"

        html = self.env.get_template(name).render(
            request=request,
            link=link,
            static=lambda path: f"{base}/static/{path}",
            store_url=self.store.shown_url,
            active=context.pop("active", ""),
            **context,
        )
        return Response(html.encode("utf-8", "replace"), status_code=status, media_type="text/html")

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)

    # -- pages -----------------------------------------------------------------------------------

    def sessions(self, request: Request) -> Response:
        filters = Filters.parse(request.query_params)
        cursor = request.query_params.get("before")
        page = self.store.sessions_page(filters, cursor, self.now())
        fragment = request.url.path.endswith("/rows")
        return self.page(
            request,
            "_session_rows.html" if fragment else "sessions.html",
            active="sessions",
            filters=filters,
            params=filters.params(),
            page=page,
            cursor=cursor,
            suggestions={} if fragment else self.store.suggestions(),
            live_interval_ms=int(self.live_interval_s * 1000),
        )

    def latest(self, request: Request) -> Response:
        filters = Filters.parse(request.query_params)
        return JSONResponse({"marker": self.store.latest_marker(filters, self.now())})

    def conversation(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        records, cut = self.store.conversation(key)
        if not records:
            return self.page(
                request,
                "error.html",
                404,
                title="No such session",
                message=f"No session {key!r} in this store.",
            )
        tally = Tally()
        for r in records:
            tally.add(r)
        turns = render.build_turns(records)
        covered = [i for t in _walk(turns) for i in t.covers]
        known = set(self.store.records_by_id(covered[:1000])) if covered else set()
        return self.page(
            request,
            "conversation.html",
            active="sessions",
            key=key,
            turns=turns,
            tally=tally,
            records=records,
            cut=cut,
            known=known,
            clients=sorted({r.client for r in records if r.client}),
            models=sorted(tally.models),
        )

    def record(self, request: Request) -> Response:
        record_id = request.query_params.get("id", "")
        record = self.store.record(record_id)
        if record is None:
            return self.page(
                request,
                "error.html",
                404,
                title="No such record",
                message=f"No record {record_id!r} in this store.",
            )
        data = record_to_dict(record)
        payloads = {}
        for name in ("request", "response"):
            html, cut = render.json_html(data[name])
            payloads[name] = (html, cut)
        headers_html, _ = render.json_html(data["headers"])
        fields = [(k, v) for k, v in data.items() if k not in ("request", "response", "headers")]
        found_markers = [
            (f"{name}.{path}" if path else name, what)
            for name in ("request", "response", "metadata", "headers")
            for path, what in render.markers(data[name])
        ]
        parent = self.store.record(record.parent_id) if record.parent_id else None
        return self.page(
            request,
            "record.html",
            active="sessions",
            r=record,
            payloads=payloads,
            headers_html=headers_html,
            fields=[(k, _field_text(v)) for k, v in fields],
            markers=found_markers,
            chain=self.store.chain_status(record),
            parent=parent,
        )

    def raw(self, request: Request) -> Response:
        record = self.store.record(request.query_params.get("id", ""))
        name = request.query_params.get("field", "request")
        if record is None or name not in _RAW_FIELDS:
            raise HTTPException(404, "no such record or field")
        value = getattr(record, name)
        body = _pretty(value).encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode()
        # text/plain, never rendered: nosniff (sent on every response) keeps the browser from guessing
        return Response(body, media_type="text/plain; charset=utf-8")

    def dashboard(self, request: Request) -> Response:
        filters = Filters.parse(request.query_params)
        if (
            "range" not in request.query_params
            and filters.range == "all"
            and not request.query_params.get("since")
        ):
            filters = Filters.parse({**request.query_params, "range": "all"})
        split = request.query_params.get("split", "model")
        d = self.store.dashboard(filters, split, self.now())
        return self.page(
            request,
            "dashboard.html",
            active="dashboard",
            filters=filters,
            params=filters.params(),
            d=d,
            charts=_charts(d),
            suggestions=self.store.suggestions(),
        )

    def integrity(self, request: Request) -> Response:
        report, problems = self.store.verify()
        return self.page(
            request,
            "integrity.html",
            active="integrity",
            report=report,
            totals=report.totals(),
            problems=problems[:100],
            more_problems=max(0, len(problems) - 100),
        )

    def export(self, request: Request) -> Response:
        fmt = "csv" if request.url.path.endswith(".csv") else "jsonl"
        filters = Filters.parse(request.query_params)
        chunks = self.store.export(filters, fmt, self.now())
        stamp = self.now().strftime("%Y%m%dT%H%M%SZ")
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        return StreamingResponse(
            chunks,
            media_type=media,
            headers={"content-disposition": f'attachment; filename="llmaudit-{stamp}.{fmt}"'},
        )

    # -- errors ----------------------------------------------------------------------------------

    def failure(self, request: Request, exc: Exception) -> Response:
        """The page for a store that cannot be read: what is wrong, in one sentence, no traceback."""
        if isinstance(exc, StorageNotFoundError):
            status, title = 404, "No store there"
            hint = "Check the storage URL (-s / LLMAUDIT_STORAGE): the viewer never creates a store."
        elif isinstance(exc, StorageUnavailableError):
            status, title = 503, "The store cannot be reached"
            hint = "The database is down or unreachable: the page works again once it is back."
        elif isinstance(exc, ConfigurationError):
            status, title = 400, "The store cannot be opened"
            hint = "The storage URL or a filter is not valid."
        else:
            status, title = 500, "The store cannot be read"
            hint = "The store answered with an error."
        logger.warning("llmaudit ui: %s: %s", request.url.path, exc)
        return self.page(request, "error.html", status, title=title, message=redact_url(str(exc)), hint=hint)

    def unexpected(self, request: Request, exc: Exception) -> Response:
        logger.exception("llmaudit ui: unexpected error on %s", request.url.path)
        return self.page(
            request,
            "error.html",
            500,
            title="Something went wrong",
            message=f"The viewer failed on this page ({type(exc).__name__}); the details are in its log.",
        )

    def not_found(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        detail = exc.detail if isinstance(exc, HTTPException) else "not found"
        return self.page(request, "error.html", status, title=f"{status}", message=str(detail))


def _walk(turns: list[render.Turn]) -> list[render.Turn]:
    out: list[render.Turn] = []
    stack = list(reversed(turns))
    while stack:
        turn = stack.pop()
        out.append(turn)
        stack.extend(reversed(turn.children))
    return out


def _compact(value: Any, limit: int = 4000) -> str:
    """A function's arguments or return value as one line of JSON, cut at *limit* characters."""
    text = dumps(value).decode()
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit:,} more characters)"


def _pretty(value: Any) -> str:
    """A stored value as indented JSON text (compact past the depth Python's encoder can indent)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError):
        return dumps(value).decode()


def _field_text(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return dumps(value).decode() if value else render.NONE
    return render.NONE if value is None or value == "" else str(value)


def _charts(d: Any) -> list[charts.Chart]:
    starts = [b.start for b in d.buckets]
    names = d.series_names
    calls = [(name, [float(b.by.get(name, 0)) for b in d.buckets]) for name in names]
    others = [float(sum(v for k, v in b.by.items() if k not in names)) for b in d.buckets]
    if any(others):
        calls.append(("other", others))
    if not calls:
        calls = [("calls", [0.0 for _ in d.buckets])]

    def total(attr: str) -> list[float]:
        return [float(getattr(b.total, attr) or 0) if b.total else 0.0 for b in d.buckets]

    tokens = [
        (
            "tokens",
            [float((b.total.input_tokens + b.total.output_tokens) if b.total else 0) for b in d.buckets],
        )
    ]
    rate = [("error rate", [b.total.error_rate if b.total and b.total.calls else None for b in d.buckets])]
    latency = [
        ("p50", [b.total.p50_ms if b.total else None for b in d.buckets]),
        ("p95", [b.total.p95_ms if b.total else None for b in d.buckets]),
    ]
    w = d.width
    return [
        charts.bar_chart(f"Calls by {d.split}", starts, w, calls, lambda v: f"{v:,.4g}"),
        charts.bar_chart("Tokens", starts, w, tokens, lambda v: f"{v:,.0f}"),
        charts.bar_chart("Cost", starts, w, [("cost", total("cost_usd"))], lambda v: f"${v:.2g}"),
        charts.line_chart("Error rate", starts, w, rate, lambda v: f"{v:.0%}"),
        charts.line_chart("Latency p50 / p95", starts, w, latency, render.duration),
    ]


def create_app(
    storage_url: str | None = None,
    *,
    token: str | None = None,
    allowed_hosts: list[str] | None = None,
    chain_key: str | None = None,
    live_interval_s: float = 3.0,
) -> Starlette:
    """The viewer as an ASGI application over the store at *storage_url* (default
    ``LLMAUDIT_STORAGE``, else the embedded store), read-only.

    Mount it inside your own application behind your own login, e.g. with Starlette or FastAPI
    ``app.mount("/llm-audit", create_app("postgresql+psycopg://…"))``.

    Args:
        storage_url: any storage URL ``llmaudit.open`` takes. The store is opened on the first
            request, and again after a failed attempt (a database that was down is picked up).
        token: when given, every request must carry it (``Authorization: Bearer``, the cookie
            set by a first ``?token=`` visit).
        allowed_hosts: the ``Host`` headers accepted (e.g. ``["127.0.0.1", "localhost"]``, which
            stops DNS-rebinding pages from reading a viewer bound to loopback); None accepts any.
        chain_key: the chain's HMAC key for the integrity checks (default ``LLMAUDIT_CHAIN_KEY``).
        live_interval_s: how often the sessions list's live mode polls.
    """
    if storage_url is None:
        from ..pipeline.settings import default_storage_url  # noqa: PLC0415 - only without a URL

        storage_url = os.environ.get("LLMAUDIT_STORAGE") or default_storage_url()
    store = Store(storage_url, chain_key_text=chain_key)
    viewer = _Viewer(store, live_interval_s=live_interval_s)

    async def failure(request: Request, exc: Exception) -> Response:
        return viewer.failure(request, exc)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return viewer.unexpected(request, exc)

    async def not_found(request: Request, exc: Exception) -> Response:
        return viewer.not_found(request, exc)

    routes = [
        Route("/", viewer.sessions, name="sessions"),
        Route("/sessions/rows", viewer.sessions, name="session_rows"),
        Route("/api/latest", viewer.latest, name="latest"),
        Route("/session", viewer.conversation, name="conversation"),
        Route("/record", viewer.record, name="record"),
        Route("/record/raw", viewer.raw, name="raw"),
        Route("/dashboard", viewer.dashboard, name="dashboard"),
        Route("/integrity", viewer.integrity, name="integrity"),
        Route("/export.jsonl", viewer.export, name="export_jsonl"),
        Route("/export.csv", viewer.export, name="export_csv"),
        Mount("/static", app=StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    middleware = [Middleware(_Guard, token=token)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        LLMAuditError: failure,
        StorageError: failure,
        HTTPException: not_found,
        Exception: unexpected,
    }

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)
    app.state.store = store
    return app
