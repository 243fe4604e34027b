"""`LLMRequest`: an unmanaged model over llmaudit's records table, the ORM's read side of the log.

llmaudit's writer fills the table (background, batched, hash-chained); the ORM only reads it. Every
write through the ORM (``save``, ``delete``, ``QuerySet.update``, ``delete``, ``bulk_create``,
``bulk_update``, ``create``) raises `ReadOnlyError`: an audit log is append-only, and erasing a
person's data goes through ``forget`` (the admin action, ``manage.py llmaudit forget``), which keeps
the chain verifiable. The columns are llmaudit's own: timestamps are UTC (naive in SQLite and MySQL,
which Django reads as UTC with ``USE_TZ = True``), payloads are JSON (``json``, not ``jsonb``, on
PostgreSQL: key lookups work, ``__contains`` does not).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from django.db import models
from django.db.models import F, Q

from ...read.reader import Reader
from ...read.summary import StatsRow
from ...record.codec import record_from_dict
from ...record.model import AGGREGATE_SOURCE, FUNCTION_SOURCE, AuditRecord
from ...storage import Query, matches
from .conf import database_alias, shown_url, storage_url, table_name

__all__ = ["LLMRequest", "LLMRequestQuerySet", "ReadOnlyError"]


_EVERYTHING = Query()


class ReadOnlyError(TypeError):
    """A write through the ORM to the append-only audit log."""

    def __init__(self, action: str) -> None:
        super().__init__(
            f"LLMRequest is llmaudit's append-only audit log: {action} through the ORM is refused. "
            "llmaudit's writer adds records; to erase a person's data use forget (the admin action "
            "'Forget selected sessions' or `manage.py llmaudit forget`), which keeps the log verifiable"
        )


class RecordJSONField(models.JSONField):  # type: ignore[misc]
    """A JSON column as llmaudit writes it: PostgreSQL's ``json`` reaches Django already decoded
    (Django decodes ``jsonb`` itself), the other databases hand back the text."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or not isinstance(value, (str, bytes, bytearray)):
            return value
        return super().from_db_value(value, expression, connection)


#: The fields the summaries read (`Reader.stats`, `Reader.sessions`): never the payloads.
_SUMMARY_FIELDS = (
    "id",
    "created_at",
    "session_key",
    "user",
    "client",
    "provider",
    "operation",
    "model",
    "source",
    "is_aggregation",
    "status_code",
    "error",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "duration_ms",
)


class _QuerySetStore:
    """A read-only llmaudit `Storage` over a queryset, so that `Reader` computes its summaries over
    exactly the queryset's rows with its reference rules (the numbers ``llmaudit stats`` gives)."""

    def __init__(self, queryset: LLMRequestQuerySet) -> None:
        self._queryset = queryset
        self.url = shown_url(storage_url())

    def read(self, query: Query = _EVERYTHING, *, on_problem: Any = None) -> Iterator[AuditRecord]:
        rows = self._queryset.order_by("created_at", "id").values(*_SUMMARY_FIELDS)
        for row in rows.iterator(chunk_size=2000):
            record = record_from_dict({**row, "source": row["source"] or "manual"})
            if matches(record, query):
                yield record

    def write(self, records: Sequence[AuditRecord]) -> None:
        raise ReadOnlyError("writing")

    def close(self) -> None:
        """Nothing to close: the queryset's connection is Django's."""


class LLMRequestQuerySet(models.QuerySet):  # type: ignore[misc]
    """The common questions about the log, and no writes."""

    def for_session(self, session_key: str) -> LLMRequestQuerySet:
        """The records of one session (llmaudit's key: ``session_key_for(django_key)`` for a Django
        session bound by the middleware)."""
        return self.filter(session_key=session_key)  # type: ignore[no-any-return]

    def errors(self) -> LLMRequestQuerySet:
        """Failed calls: an exception was recorded, or the HTTP status is 400 or more."""
        return self.filter(Q(error__isnull=False) | Q(status_code__gte=400))  # type: ignore[no-any-return]

    def aggregations(self) -> LLMRequestQuerySet:
        """Rolled-up summary records (``is_aggregation``, or made by ``llmaudit aggregate``)."""
        return self.filter(Q(is_aggregation=True) | Q(source=AGGREGATE_SOURCE))  # type: ignore[no-any-return]

    def calls(self) -> LLMRequestQuerySet:
        """LLM calls: neither aggregations nor ``@audited`` function records."""
        kind = Q(is_aggregation=True) | Q(source__in=(AGGREGATE_SOURCE, FUNCTION_SOURCE))
        return self.exclude(kind)  # type: ignore[no-any-return]

    def stats(self, by: str | Sequence[str] = ("client", "model"), **options: Any) -> list[StatsRow]:
        """`llmaudit.Reader.stats` over this queryset's records: the same rows, numbers and order as
        ``llmaudit stats`` gives for the same records (``by`` from ``client``, ``model``,
        ``provider``, ``operation``, ``user``, ``session_key``, ``source``, ``day``; the options
        ``kind=`` and ``include_aggregations=`` as there)."""
        names = (by,) if isinstance(by, str) else tuple(by)
        return Reader(_QuerySetStore(self), owns=False).stats(names, **options)

    def sessions(self, **options: Any) -> list[Any]:
        """`llmaudit.Reader.sessions` over this queryset's records (``limit=``)."""
        return Reader(_QuerySetStore(self), owns=False).sessions(**options)

    def update(self, **kwargs: Any) -> int:
        raise ReadOnlyError("update()")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ReadOnlyError("delete()")

    def bulk_create(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise ReadOnlyError("bulk_create()")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise ReadOnlyError("bulk_update()")

    def create(self, **kwargs: Any) -> Any:
        raise ReadOnlyError("create()")

    def get_or_create(self, *args: Any, **kwargs: Any) -> Any:
        raise ReadOnlyError("get_or_create()")

    def update_or_create(self, *args: Any, **kwargs: Any) -> Any:
        raise ReadOnlyError("update_or_create()")

    def _raw_delete(self, using: Any) -> int:
        raise ReadOnlyError("delete()")


class LLMRequestManager(models.Manager.from_queryset(LLMRequestQuerySet)):  # type: ignore[misc]
    """Reads the alias that holds the records; ``updated_at`` is ``created_at`` (never updated)."""

    def get_queryset(self) -> LLMRequestQuerySet:
        queryset = super().get_queryset().using(database_alias())
        return queryset.annotate(updated_at=F("created_at"))  # type: ignore[no-any-return]


def _text(limit: int, **kwargs: Any) -> Any:
    return models.CharField(max_length=limit, null=True, blank=True, **kwargs)


class LLMRequest(models.Model):  # type: ignore[misc]
    """One audited LLM call (or ``@audited`` function record, or aggregation), as llmaudit wrote it.

    The fields are `llmaudit.AuditRecord`'s, under its names; ``parent`` is the enclosing
    ``@audited`` record (``parent_id``), ``children`` the records under it, ``updated_at`` equals
    ``created_at`` (a record is never updated; the seed's ``TimestampedModel`` had both).
    """

    id = models.CharField(primary_key=True, max_length=36)
    created_at = models.DateTimeField(db_index=True)
    schema_version = models.IntegerField(null=True)
    session_key = _text(255, db_index=True)
    parent_session_key = _text(255)
    user = _text(255, db_index=True)
    tags = RecordJSONField(null=True)
    metadata = RecordJSONField(null=True)
    client = _text(255, db_index=True)
    provider = _text(64)
    operation = _text(128)
    model = _text(255, db_index=True)
    method = _text(16)
    url = models.TextField(null=True)
    headers = RecordJSONField(null=True)
    request = RecordJSONField(null=True)
    response = RecordJSONField(null=True)
    input_text = models.TextField(null=True)
    output_text = models.TextField(null=True)
    tool_calls = RecordJSONField(null=True)
    status_code = models.IntegerField(null=True, verbose_name="status")
    error = models.TextField(null=True)
    is_stream = models.BooleanField(default=False)
    incomplete = models.BooleanField(default=False)
    is_aggregation = models.BooleanField(default=False)
    duration_ms = models.FloatField(null=True, verbose_name="latency (ms)")
    ttft_ms = models.FloatField(null=True, verbose_name="time to first token (ms)")
    input_tokens = models.BigIntegerField(null=True)
    output_tokens = models.BigIntegerField(null=True)
    total_tokens = models.BigIntegerField(null=True, verbose_name="tokens")
    cost_usd = models.FloatField(null=True, verbose_name="cost (USD)")
    source = _text(32)
    parent = models.ForeignKey(
        "self",
        null=True,
        db_column="parent_id",
        db_constraint=False,
        db_index=True,
        on_delete=models.DO_NOTHING,
        related_name="children",
    )
    attempt = models.IntegerField(null=True)
    notes = RecordJSONField(null=True)
    writer_id = _text(64)
    seq = models.BigIntegerField(null=True)
    prev_hash = _text(128)
    hash = _text(128)

    objects: ClassVar[Any] = LLMRequestManager()

    class Meta:
        managed = False
        db_table = table_name()
        base_manager_name = "objects"
        ordering = ("-created_at", "-id")
        get_latest_by = "created_at"
        verbose_name = "LLM request"
        verbose_name_plural = "LLM request history"
        default_permissions = ("view",)
        permissions = (("forget_llmrequest", "Can forget (erase) the records of sessions"),)

    def __str__(self) -> str:
        what = " ".join(str(v) for v in (self.client or self.provider, self.model) if v) or self.source
        return f"{what} at {self.created_at:%Y-%m-%d %H:%M:%S} ({self.id})"

    @property
    def kind(self) -> str:
        """``call``, ``function`` or ``aggregation`` (see `llmaudit.record.model.record_kind`)."""
        if self.is_aggregation or self.source == AGGREGATE_SOURCE:
            return "aggregation"
        return "function" if self.source == FUNCTION_SOURCE else "call"

    @property
    def is_error(self) -> bool:
        return self.error is not None or (self.status_code or 0) >= 400

    def save(self, *args: Any, **kwargs: Any) -> None:
        raise ReadOnlyError("save()")

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ReadOnlyError("delete()")
