"""The app's configuration: ``INSTALLED_APPS += ["llmaudit.contrib.django"]``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["LLMAuditConfig"]


class LLMAuditConfig(AppConfig):  # type: ignore[misc]
    """Registers the system checks and, once Django is ready, configures llmaudit from
    ``settings.LLMAUDIT`` (writing to the project's database unless it says otherwise)."""

    name = "llmaudit.contrib.django"
    label = "llmaudit"
    verbose_name = "LLM audit log"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks  # noqa: PLC0415 - Django's registries are ready now
        from .conf import configure_from_settings, wants_configure  # noqa: PLC0415

        checks.register()
        if wants_configure():
            configure_from_settings()
