"""OpenAI-compatible APIs: hosted ones by host (Groq, Together, DeepSeek, xAI, OpenRouter, Fireworks)
and any other server (vLLM, LM Studio, llama.cpp, …) by its ``/v1/...`` path."""

from __future__ import annotations

from typing import Any

from . import Exchange, Parsed
from ._conversation import Conversation
from ._openai_format import operation_for, parse_openai_format
from ._openai_text import openai_conversation

__all__ = ["GENERIC", "HOSTED"]


class _Hosted:
    def __init__(self, name: str, host: str) -> None:
        self.name, self.host = name, host

    def match(self, host: str, path: str) -> str | None:
        return operation_for(path) if host == self.host else None

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        return parse_openai_format(exchange, self.name, operation)

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


class _Generic:
    """Any host serving the OpenAI paths under a ``/v1/`` prefix."""

    name = "openai_compatible"

    def match(self, host: str, path: str) -> str | None:
        if "/v1/" not in path:
            return None
        operation = operation_for(path)
        return (
            operation if operation in ("chat.completions", "completions", "embeddings", "responses") else None
        )

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        return parse_openai_format(exchange, self.name, operation)

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


HOSTED = (
    _Hosted("groq", "api.groq.com"),
    _Hosted("together", "api.together.xyz"),
    _Hosted("deepseek", "api.deepseek.com"),
    _Hosted("xai", "api.x.ai"),
    _Hosted("openrouter", "openrouter.ai"),
    _Hosted("fireworks", "api.fireworks.ai"),
)
GENERIC = _Generic()
