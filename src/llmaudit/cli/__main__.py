"""``python -m llmaudit.cli``: the same as the ``llmaudit`` command."""

import sys

from . import main

sys.exit(main())
