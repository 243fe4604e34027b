"""OpenAI (api.openai.com) and Azure OpenAI (*.openai.azure.com deployments and the /openai/v1 API)."""

from __future__ import annotations

from typing import Any

from . import Exchange, Parsed
from ._conversation import Conversation
from ._openai_format import operation_for, parse_openai_format
from ._openai_text import openai_conversation

__all__ = ["AZURE", "OPENAI", "deployment"]

#: Azure OpenAI resources, and Azure API Management gateways (``*.azure-api.net``) in front of them
_AZURE_HOSTS = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
    ".azure-api.net",
)


class _OpenAI:
    name = "openai"
    hosts = ("api.openai.com",)

    def match(self, host: str, path: str) -> str | None:
        if host != "api.openai.com" or not path.startswith("/v1/"):
            return None
        if path.startswith("/v1/files"):
            return "files"
        return operation_for(path)

    def shape(self, path: str) -> str | None:
        return "files" if "/files" in path and operation_for(path) is None else operation_for(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        return parse_openai_format(exchange, self.name, operation)

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


class _Azure:
    name = "azure_openai"
    host_suffixes = _AZURE_HOSTS

    def match(self, host: str, path: str) -> str | None:
        if not host.endswith(_AZURE_HOSTS) or "/openai/" not in path:
            return None
        return operation_for(path)

    def shape(self, path: str) -> str | None:
        return operation_for(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        return parse_openai_format(exchange, self.name, operation, model=deployment(exchange.path))

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


def deployment(path: str) -> str | None:
    """The deployment an Azure-style path names (``/openai/deployments/{name}/...``), or None."""
    parts = path.split("/")
    return parts[parts.index("deployments") + 1] if "deployments" in parts[:-1] else None


OPENAI = _OpenAI()
AZURE = _Azure()
