"""Mistral (api.mistral.ai): the OpenAI chunk format, usage in the last chunk; plus FIM and agents."""

from __future__ import annotations

from typing import Any

from . import Exchange, Parsed
from ._conversation import Conversation
from ._openai_format import operation_for, parse_openai_format
from ._openai_text import openai_conversation

__all__ = ["MISTRAL"]


class _Mistral:
    name = "mistral"
    hosts = ("api.mistral.ai",)

    def match(self, host: str, path: str) -> str | None:
        return self.shape(path) if host == "api.mistral.ai" else None

    def shape(self, path: str) -> str | None:
        if path.rstrip("/").endswith("/agents/completions"):
            return "agents.completions"
        return operation_for(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        as_format = "chat.completions" if operation == "agents.completions" else operation
        parsed = parse_openai_format(exchange, self.name, as_format)
        return Parsed(
            parsed.provider,
            operation,
            parsed.model,
            parsed.response,
            parsed.input_tokens,
            parsed.output_tokens,
            parsed.total_tokens,
            parsed.notes,
        )

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


MISTRAL = _Mistral()
