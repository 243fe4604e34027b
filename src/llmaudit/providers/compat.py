"""OpenAI-compatible APIs: hosted ones by host (Groq, Together, DeepSeek, xAI, OpenRouter, Fireworks),
gateways that forward to one provider (Helicone's proxies, Cloudflare AI Gateway), and any other
server (vLLM, LM Studio, llama.cpp, LiteLLM proxy, corporate gateways, ...) by its path's shape
(``openai_compatible``, matched by `_shapes`)."""

from __future__ import annotations

from typing import Any

from . import Exchange, Parsed, Provider
from ._conversation import Conversation
from ._openai_format import operation_for, parse_openai_format
from ._openai_text import openai_conversation
from .anthropic import ANTHROPIC
from .cohere import COHERE
from .gemini import GEMINI
from .mistral import MISTRAL
from .openai import AZURE, OPENAI, deployment

__all__ = ["GATEWAYS", "GENERIC", "HOSTED"]


class _Hosted:
    def __init__(self, name: str, host: str) -> None:
        self.name, self.host = name, host
        self.hosts = (host,)

    def match(self, host: str, path: str) -> str | None:
        return operation_for(path) if host == self.host else None

    def shape(self, path: str) -> str | None:
        return operation_for(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        return parse_openai_format(exchange, self.name, operation)

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


class _Generic:
    """The OpenAI format on a host llmaudit does not know: recorded, not priced (a local server is
    free, and a gateway's prices are not known) unless the user maps the host to a provider."""

    name = "openai_compatible"

    def match(self, host: str, path: str) -> str | None:
        return None  # matched by its shape on any host (`_shapes`), after every provider's hosts

    def shape(self, path: str) -> str | None:
        return operation_for(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        # Azure-style paths (an AzureOpenAI client behind a gateway) name the model's deployment
        return parse_openai_format(exchange, self.name, operation, model=deployment(exchange.path))

    def conversation(self, operation: str, request: Any, response: Any) -> Conversation:
        return openai_conversation(operation, request, response)


class _Forwarder:
    """A gateway host that forwards to one provider (Helicone's ``oai.helicone.ai``): recorded and
    priced as that provider."""

    def __init__(self, host: str, to: Any) -> None:
        self.name, self.host, self._to = f"{to.name} via {host}", host, to
        self.hosts = (host,)

    def match(self, host: str, path: str) -> str | None:
        return self._to.shape(path) if host == self.host else None

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        return self._to.parse(exchange, operation)  # type: ignore[no-any-return]


class _CloudflareGateway:
    """Cloudflare AI Gateway: ``gateway.ai.cloudflare.com/v1/{account}/{gateway}/{provider}/...``;
    the provider segment says whose API (and prices) the rest of the path is."""

    name = "cloudflare_ai_gateway"
    host = "gateway.ai.cloudflare.com"
    hosts = (host,)

    def _target(self, path: str) -> Any:
        parts = path.split("/", 6)  # "", "v1", account, gateway, provider, rest
        return _CLOUDFLARE.get(parts[4]) if len(parts) > 5 and parts[1] == "v1" else None

    def match(self, host: str, path: str) -> str | None:
        if host != self.host:
            return None
        target = self._target(path)
        return None if target is None else target.shape(path)

    def parse(self, exchange: Exchange, operation: str) -> Parsed:
        return self._target(exchange.path).parse(exchange, operation)  # type: ignore[no-any-return]


HOSTED = (
    _Hosted("groq", "api.groq.com"),
    _Hosted("together", "api.together.xyz"),
    _Hosted("deepseek", "api.deepseek.com"),
    _Hosted("xai", "api.x.ai"),
    _Hosted("openrouter", "openrouter.ai"),
    _Hosted("fireworks", "api.fireworks.ai"),
)
GENERIC = _Generic()
_BY_NAME: dict[str, Any] = {p.name: p for p in HOSTED}
_CLOUDFLARE: dict[str, Any] = {
    "openai": OPENAI,
    "azure-openai": AZURE,
    "anthropic": ANTHROPIC,
    "google-ai-studio": GEMINI,
    "mistral": MISTRAL,
    "cohere": COHERE,
    "groq": _BY_NAME["groq"],
    "deepseek": _BY_NAME["deepseek"],
    "openrouter": _BY_NAME["openrouter"],
    "grok": _BY_NAME["xai"],
}
#: gateway hosts whose provider is known (not named in mappings: map a host to the provider itself)
GATEWAYS: tuple[Provider, ...] = (
    _Forwarder("oai.helicone.ai", OPENAI),
    _Forwarder("anthropic.helicone.ai", ANTHROPIC),
    _CloudflareGateway(),
)
