"""OpenAI (api.openai.com) and Azure OpenAI (*.openai.azure.com deployments and the /openai/v1 API)."""

from __future__ import annotations

from typing import Any

from . import Exchange, Parsed
from ._conversation import Conversation
from ._openai_format import operation_for, parse_openai_format
from ._openai_text import openai_conversation

__all__ = ["AZURE", "OPENAI"]

_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


class _OpenAI:
    name = "openai"

    def match(self, host: str, path: str) -> str | None:
        if host != "api.openai.com" or not path.startswith("/v1/"):
            return None
        if path.startswith("/v1/files"):
            return "files"
        return operation_for(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        return parse_openai_format(exchange, self.name, operation)

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


class _Azure:
    name = "azure_openai"

    def match(self, host: str, path: str) -> str | None:
        if not host.endswith(_AZURE_HOSTS) or "/openai/" not in path:
            return None
        return operation_for(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        parts = exchange.path.split("/")
        deployment = parts[parts.index("deployments") + 1] if "deployments" in parts[:-1] else None
        return parse_openai_format(exchange, self.name, operation, model=deployment)

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


OPENAI = _OpenAI()
AZURE = _Azure()
