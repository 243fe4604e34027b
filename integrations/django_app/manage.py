#!/usr/bin/env python
"""The test project's manage.py: ``python integrations/django_app/manage.py llmaudit stats``."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: `integrations` imports
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integrations.django_app.project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
