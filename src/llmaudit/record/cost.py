"""Cost in US dollars from the maintained price table of the ``genai-prices`` package (Pydantic's).

Runs on the writer thread. Only a known model with known usage gets a price; anything else is None,
never a guess: unknown model, unknown provider, local servers (Ollama, vLLM, LM Studio: free), or no
token counts. The table ships inside the package (no network); a model's lookup is cached, and its
prices are taken for the record's date. Flat per-token prices are applied directly; tiered ones
(by context length) go through the package's calculation. Input tokens are priced at the plain input
rate: records do not yet split out cached input tokens, so a cache discount is not applied.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

__all__ = ["cost_usd"]

#: llmaudit's provider names -> genai-prices provider ids (None: no price, e.g. a local server).
_PROVIDERS: dict[str, str | None] = {
    "openai": "openai",
    "azure_openai": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "cohere": "cohere",
    "mistral": "mistral",
    "groq": "groq",
    "together": "together",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "openrouter": "openrouter",
    "fireworks": "fireworks",
    "ollama": None,
    # a provider's format on a host llmaudit does not know: no price unless the user maps the host
    "openai_compatible": None,
    "anthropic_compatible": None,
    "gemini_compatible": None,
}
_MISSING = object()
_cache: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()
_CACHE_LIMIT = 4096


def _lookup(provider_id: str, model: str) -> Any:
    """(provider, model) objects of genai-prices, or None; cached."""
    key = (provider_id, model)
    found = _cache.get(key, _MISSING)
    if found is not _MISSING:
        return found
    try:
        from genai_prices import data_snapshot  # noqa: PLC0415 - heavy (pydantic): writer thread only

        found = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        found = None
    except Exception:  # noqa: BLE001 - a price table problem must never cost a record
        found = None
    with _lock:
        if len(_cache) < _CACHE_LIMIT:
            _cache[key] = found
    return found


#: id(ModelPrice) -> (that object, its flat (input, output) rates per million tokens as floats, or None
#: when tiered); the object is kept so that its id cannot be reused by another
_rates: dict[int, tuple[Any, tuple[float, float] | None]] = {}


def _flat_rates(prices: Any) -> tuple[float, float] | None:
    """*prices*' flat input and output rates as floats (None for tiered prices), computed once per
    price object: the package hands back the same objects for as long as a price holds."""
    known = _rates.get(id(prices))
    if known is not None and known[0] is prices:
        return known[1]
    rates = (prices.input_mtok, prices.output_mtok)
    flat = None
    if all(rate is None or isinstance(rate, Decimal) for rate in rates):
        flat = (float(rates[0] or 0), float(rates[1] or 0))
    if len(_rates) < _CACHE_LIMIT:
        _rates[id(prices)] = (prices, flat)
    return flat


def cost_usd(
    provider: str | None,
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    at: datetime | None = None,
) -> float | None:
    """The price of one call, or None when it cannot be known."""
    if provider is None or model is None or input_tokens is None:
        return None
    provider_id = _PROVIDERS.get(provider)
    if provider_id is None:
        return None
    found = _lookup(provider_id, model)
    if found is None:
        return None
    try:
        found_provider, found_model = found
        prices = found_model.get_prices(at or datetime.now(timezone.utc))
        flat = _flat_rates(prices)
        if flat is not None:
            # flat per-token prices (most models): far cheaper than the package's own calculation
            in_rate, out_rate = flat
            return round((input_tokens * in_rate + (output_tokens or 0) * out_rate) / 1e6, 12)
        from genai_prices import Usage  # noqa: PLC0415

        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens or 0)
        result = found_model.calc_price(usage, found_provider, genai_request_timestamp=at)
        return float(result.total_price)
    except Exception:  # noqa: BLE001 - a price we cannot compute: no guess
        return None
