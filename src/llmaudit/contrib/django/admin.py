"""The read-only admin of the audit log ("LLM request history").

Nobody adds, changes or deletes a record here (the permissions say no to everyone, superusers
included); a record's page shows its conversation as messages, then its request and response JSON.
Every recorded string is untrusted input and is escaped wherever it is shown. Two actions: "Verify
selected" (the hash chain, for everyone who may view) and "Forget selected sessions" (erasure through
llmaudit's ``forget``, which keeps the log verifiable), for users with the ``llmaudit.forget_llmrequest``
permission only. ``session/<key>/`` shows one session's records, oldest first, as one conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.contrib import admin, messages
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from ..._errors import LLMAuditError
from ...providers import conversation as read_conversation
from ...read.reader import open as open_log
from .conf import options, storage_url
from .models import LLMRequest

__all__ = ["LLMRequestAdmin", "StatusClassFilter", "render_conversation"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _display(**options: Any) -> Callable[[_F], _F]:
    """`admin.display`, typed (Django ships no type information)."""
    return admin.display(**options)  # type: ignore[no-any-return]


def _action(**options: Any) -> Callable[[_F], _F]:
    """`admin.action`, typed."""
    return admin.action(**options)  # type: ignore[no-any-return]


#: Longest JSON text shown on a record's page; the rest is cut (the CLI's ``show`` prints it all).
JSON_LIMIT_CHARS = 200_000


class StatusClassFilter(admin.SimpleListFilter):  # type: ignore[misc]
    """HTTP status by class (2xx, 4xx, 5xx), and calls that failed without one."""

    title = "status"
    parameter_name = "status_class"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("2xx", "2xx"), ("3xx", "3xx"), ("4xx", "4xx"), ("5xx", "5xx"), ("none", "no status")]

    def queryset(self, request: Any, queryset: Any) -> Any:
        value = self.value()
        if value == "none":
            return queryset.filter(status_code__isnull=True)
        if value and value[0].isdigit():
            low = int(value[0]) * 100
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset


def _parts(parts: Any) -> Any:
    rows = []
    for part in parts:
        label = part.role if part.kind == "text" else f"{part.role} · {part.kind.replace('_', ' ')}"
        if part.name:
            label = f"{label} · {part.name}"
        rows.append((part.kind, label, part.text))
    return format_html_join(
        "",
        '<div class="llmaudit-message llmaudit-{}"><div class="llmaudit-role">{}</div>'
        '<div class="llmaudit-text">{}</div></div>',
        rows,
    )


def render_conversation(record: LLMRequest) -> str:
    """The record's conversation as escaped HTML messages (its flat text when the provider's
    JSON cannot be read)."""
    try:
        found = read_conversation(record.provider, record.operation, record.request, record.response)
    except Exception:  # noqa: BLE001 - recorded JSON is untrusted: an odd shape falls back to the text
        found = None
    if found is not None and (found.input or found.output):
        return format_html(  # type: ignore[no-any-return]
            '<div class="llmaudit-conversation">{}{}</div>', _parts(found.input), _parts(found.output)
        )
    if record.input_text or record.output_text:
        return format_html(  # type: ignore[no-any-return]
            '<div class="llmaudit-conversation"><pre class="llmaudit-text">{}</pre>'
            '<pre class="llmaudit-text">{}</pre></div>',
            record.input_text or "",
            record.output_text or "",
        )
    return format_html("<p>{}</p>", "No conversation to show (see the JSON below).")  # type: ignore[no-any-return]


def _json(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    if len(text) > JSON_LIMIT_CHARS:
        text = text[:JSON_LIMIT_CHARS] + f"\n… cut at {JSON_LIMIT_CHARS:,} characters"
    return format_html('<pre class="llmaudit-json">{}</pre>', text)  # type: ignore[no-any-return]


def _chain_key() -> str | None:
    key = options().get("chain_key")
    return str(key) if key else None


class LLMRequestAdmin(admin.ModelAdmin):  # type: ignore[misc]
    list_display = (
        "created_at",
        "session",
        "user",
        "client",
        "model",
        "status_code",
        "total_tokens",
        "cost_usd",
        "duration_ms",
    )
    list_filter = ("client", "provider", "model", StatusClassFilter, "is_aggregation")
    date_hierarchy = "created_at"
    search_fields = ("session_key", "user", "=id")
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over the whole log on every page is not free
    actions = ("verify_selected", "forget_selected_sessions")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("id", "created_at"),
                    ("session_key", "user"),
                    ("client", "provider", "operation", "model"),
                    ("status_code", "error"),
                    ("input_tokens", "output_tokens", "total_tokens", "cost_usd"),
                    ("duration_ms", "ttft_ms", "is_stream", "incomplete"),
                    ("source", "parent", "attempt", "is_aggregation"),
                    ("tags", "metadata"),
                    ("method", "url"),
                )
            },
        ),
        ("Conversation", {"fields": ("conversation",)}),
        ("Request", {"fields": ("request_json",)}),
        ("Response", {"fields": ("response_json",)}),
        (
            "Integrity",
            {"classes": ("collapse",), "fields": (("writer_id", "seq"), "prev_hash", "hash", "notes")},
        ),
    )
    readonly_fields = ("conversation", "request_json", "response_json")

    class Media:
        css: ClassVar[dict[str, tuple[str, ...]]] = {"all": ("llmaudit/admin.css",)}

    # -- read-only: nobody adds, changes or deletes an audit record ------------------------------

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_forget_permission(self, request: Any) -> bool:
        return bool(request.user.has_perm("llmaudit.forget_llmrequest"))

    # -- columns and the record's page -----------------------------------------------------------

    @_display(description="session key", ordering="session_key")
    def session(self, obj: LLMRequest) -> str:
        if not obj.session_key:
            return "-"
        url = reverse("admin:llmaudit_llmrequest_session", args=[obj.session_key])
        return format_html('<a href="{}">{}</a>', url, obj.session_key)  # type: ignore[no-any-return]

    @_display(description="conversation")
    def conversation(self, obj: LLMRequest) -> str:
        return render_conversation(obj)

    @_display(description="request JSON")
    def request_json(self, obj: LLMRequest) -> str:
        return _json(obj.request)

    @_display(description="response JSON")
    def response_json(self, obj: LLMRequest) -> str:
        return _json(obj.response)

    # -- one session -----------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.session_view)
        mine = [path("session/<path:session_key>/", view, name="llmaudit_llmrequest_session")]
        return mine + list(super().get_urls())

    def session_view(self, request: Any, session_key: str) -> TemplateResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied  # noqa: PLC0415

            raise PermissionDenied
        records = list(self.get_queryset(request).for_session(session_key).order_by("created_at", "id"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Session {session_key}",
            "session_key": session_key,
            "records": [(r, render_conversation(r)) for r in records],
            "totals": self.get_queryset(request).for_session(session_key).stats(by=()),
        }
        return TemplateResponse(request, "admin/llmaudit/session.html", context)

    # -- actions ---------------------------------------------------------------------------------

    @_action(description="Verify selected records (hash chain)", permissions=["view"])
    def verify_selected(self, request: Any, queryset: Any) -> None:
        selected = set(queryset.values_list("id", flat=True))
        try:
            with open_log(storage_url()) as log:
                report = log.verify(_chain_key())
        except LLMAuditError as exc:
            self.message_user(request, f"Verification could not run: {exc}", messages.ERROR)
            return
        at_fault = set(report.unchained)
        for writer in report.writers.values():
            at_fault.update(writer.modified, writer.reordered, writer.inserted)
        failed = sorted(selected & at_fault)
        totals = report.totals()
        if failed:
            shown = ", ".join(failed[:10])
            self.message_user(
                request,
                f"{len(failed)} of the {len(selected)} selected records FAIL verification: {shown}",
                messages.ERROR,
            )
        elif report.ok:
            self.message_user(
                request,
                f"The {len(selected)} selected records verify, and so does the whole log "
                f"({totals['verified']} records from {totals['writers']} writers).",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                f"The log FAILS verification ({totals['modified']} modified, {totals['missing']} "
                f"missing, {totals['reordered']} reordered, {totals['inserted']} inserted); none of the "
                "selected records is among those named. Run `manage.py llmaudit verify` for the report.",
                messages.WARNING,
            )

    @_action(description="Forget selected sessions (erase their data)", permissions=["forget"])
    def forget_selected_sessions(self, request: Any, queryset: Any) -> None:
        keys = sorted(set(queryset.filter(~Q(session_key=None)).values_list("session_key", flat=True)))
        if not keys:
            self.message_user(request, "None of the selected records has a session key.", messages.WARNING)
            return
        erased = 0
        try:
            with open_log(storage_url()) as log:
                for key in keys:
                    result = log.forget(session=key, key=_chain_key())
                    erased += result.erased
                    for caveat in result.unguaranteed:
                        self.message_user(request, f"Not guaranteed: {caveat}", messages.WARNING)
        except LLMAuditError as exc:
            self.message_user(request, f"Forget stopped: {exc}", messages.ERROR)
            return
        self.message_user(
            request,
            f"Erased {erased} records of {len(keys)} sessions; the log still verifies.",
            messages.SUCCESS,
        )


admin.site.register(LLMRequest, LLMRequestAdmin)
