"""llmaudit's tables, made by llmaudit's own schema code (`schema.upgrade_tables`), and the unmanaged
`LLMRequest` over them. A llmaudit release that changes the schema adds a migration running the same
`schema.upgrade_tables`, so ``migrate`` and ``llmaudit db upgrade`` stay interchangeable."""

from typing import Any, ClassVar

import django.db.models.deletion
from django.db import migrations, models

import llmaudit.contrib.django.models
from llmaudit.contrib.django import conf, schema


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True
    # the tables are made on llmaudit's own connection: Django must hold no transaction open meanwhile
    atomic = False

    dependencies: ClassVar[list[Any]] = []

    operations: ClassVar[list[Any]] = [
        migrations.RunPython(schema.upgrade_tables, schema.drop_tables, elidable=False),
        migrations.CreateModel(
            name="LLMRequest",
            fields=[
                ("id", models.CharField(max_length=36, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(db_index=True)),
                ("schema_version", models.IntegerField(null=True)),
                ("session_key", models.CharField(blank=True, db_index=True, max_length=255, null=True)),
                ("parent_session_key", models.CharField(blank=True, max_length=255, null=True)),
                ("user", models.CharField(blank=True, db_index=True, max_length=255, null=True)),
                ("tags", llmaudit.contrib.django.models.RecordJSONField(null=True)),
                ("metadata", llmaudit.contrib.django.models.RecordJSONField(null=True)),
                ("client", models.CharField(blank=True, db_index=True, max_length=255, null=True)),
                ("provider", models.CharField(blank=True, max_length=64, null=True)),
                ("operation", models.CharField(blank=True, max_length=128, null=True)),
                ("model", models.CharField(blank=True, db_index=True, max_length=255, null=True)),
                ("method", models.CharField(blank=True, max_length=16, null=True)),
                ("url", models.TextField(null=True)),
                ("headers", llmaudit.contrib.django.models.RecordJSONField(null=True)),
                ("request", llmaudit.contrib.django.models.RecordJSONField(null=True)),
                ("response", llmaudit.contrib.django.models.RecordJSONField(null=True)),
                ("input_text", models.TextField(null=True)),
                ("output_text", models.TextField(null=True)),
                ("tool_calls", llmaudit.contrib.django.models.RecordJSONField(null=True)),
                ("status_code", models.IntegerField(null=True, verbose_name="status")),
                ("error", models.TextField(null=True)),
                ("is_stream", models.BooleanField(default=False)),
                ("incomplete", models.BooleanField(default=False)),
                ("is_aggregation", models.BooleanField(default=False)),
                ("duration_ms", models.FloatField(null=True, verbose_name="latency (ms)")),
                ("ttft_ms", models.FloatField(null=True, verbose_name="time to first token (ms)")),
                ("input_tokens", models.BigIntegerField(null=True)),
                ("output_tokens", models.BigIntegerField(null=True)),
                ("total_tokens", models.BigIntegerField(null=True, verbose_name="tokens")),
                ("cost_usd", models.FloatField(null=True, verbose_name="cost (USD)")),
                ("source", models.CharField(blank=True, max_length=32, null=True)),
                (
                    "parent",
                    models.ForeignKey(
                        db_column="parent_id",
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="children",
                        to="llmaudit.llmrequest",
                    ),
                ),
                ("attempt", models.IntegerField(null=True)),
                ("notes", llmaudit.contrib.django.models.RecordJSONField(null=True)),
                ("writer_id", models.CharField(blank=True, max_length=64, null=True)),
                ("seq", models.BigIntegerField(null=True)),
                ("prev_hash", models.CharField(blank=True, max_length=128, null=True)),
                ("hash", models.CharField(blank=True, max_length=128, null=True)),
            ],
            options={
                "verbose_name": "LLM request",
                "verbose_name_plural": "LLM request history",
                "db_table": conf.table_name(),
                "ordering": ("-created_at", "-id"),
                "permissions": (("forget_llmrequest", "Can forget (erase) the records of sessions"),),
                "get_latest_by": "created_at",
                "managed": False,
                "default_permissions": ("view",),
                "base_manager_name": "objects",
            },
        ),
    ]
