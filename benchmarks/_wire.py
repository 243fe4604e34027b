"""The OpenAI-format answers the transport benchmarks serve (one copy for every benchmark), built from
the wire formats the test suites share (tests/wire.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.wire

from tests.wire import chat_completion

#: A 1 KB-class chat completion, as api.openai.com sends it.
COMPLETION = json.dumps(
    chat_completion("Hello! " * 20, id="chatcmpl-bench", prompt_tokens=250, completion_tokens=40, full=False)
).encode()
