"""litellm (on the httpx branch) through llmaudit.instrument(), mocked with respx: no client code change."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import respx

import llmaudit
from integrations.sdks.conftest import FAKE_KEY, Recorder

pytestmark = [
    pytest.mark.integration,
    # litellm fetches a remote price map at import; offline, it warns and falls back to its bundled copy
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

COMPLETION = {
    "id": "chatcmpl-lite1",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "via litellm"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}


@pytest.fixture
def instrumented(recorder: Recorder) -> Iterator[Recorder]:
    llmaudit.instrument(auditor=recorder.auditor)
    yield recorder
    llmaudit.uninstrument()


@respx.mock
def test_litellm_openai_call_is_recorded_through_instrument(instrumented: Recorder) -> None:
    """litellm builds its own httpx client; instrument() still records its LLM call."""
    respx.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=COMPLETION)
    )
    result = litellm.completion(
        model="openai/gpt-4o-mini", api_key=FAKE_KEY, messages=[{"role": "user", "content": "hi"}]
    )
    assert result.choices[0].message.content == "via litellm"
    records = instrumented.records()
    assert len(records) == 1
    assert (records[0].provider, records[0].total_tokens) == ("openai", 9)
