"""The Django app's suite (``suite/``) runs in a process of its own per database (see
``test_django_app.py``): Django is configured once per process, and the other integration tests
configure it their own way. A plain ``pytest`` run collects only the driver."""

import os

if os.environ.get("DJANGO_SETTINGS_MODULE") != "integrations.django_app.project.settings":
    collect_ignore = ["suite"]
