"""Cost from the genai-prices table: known models priced, anything unknown left null, never guessed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from genai_prices import Usage, calc_price

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.cost import cost_usd

AT = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("provider", "genai_provider", "model", "tokens"),
    [
        ("openai", "openai", "gpt-4o-mini-2024-07-18", (1200, 345)),
        ("anthropic", "anthropic", "claude-sonnet-4-5-20250929", (5000, 1000)),
        ("gemini", "google", "gemini-2.5-pro", (1000, 100)),  # tiered price, below the tier
        ("gemini", "google", "gemini-2.5-pro", (300_000, 100)),  # above it: the higher rate
        ("mistral", "mistral", "mistral-large-latest", (10, 0)),
        ("groq", "groq", "llama-3.3-70b-versatile", (777, 77)),
    ],
)
def test_known_models_cost_what_the_price_table_says(
    provider: str, genai_provider: str, model: str, tokens: tuple[int, int]
) -> None:
    expected = calc_price(
        Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        model_ref=model,
        provider_id=genai_provider,
        genai_request_timestamp=AT,
    ).total_price
    assert cost_usd(provider, model, *tokens, at=AT) == pytest.approx(float(expected), rel=1e-9)


def test_the_tier_changes_the_price_per_token() -> None:
    small = cost_usd("gemini", "gemini-2.5-pro", 100_000, 0, at=AT)
    large = cost_usd("gemini", "gemini-2.5-pro", 300_000, 0, at=AT)
    assert small is not None and large is not None and large / 3 > small  # not linear


@pytest.mark.parametrize(
    ("provider", "model", "tokens"),
    [
        ("openai", "gpt-imaginary-9", (10, 10)),  # unknown model
        ("ollama", "llama3.2", (10, 10)),  # a local server is free, not unknown-priced
        ("openai_compatible", "gpt-4o-mini", (10, 10)),  # whose server? no guess
        ("unknown", "gpt-4o-mini", (10, 10)),
        (None, "gpt-4o-mini", (10, 10)),
        ("openai", None, (10, 10)),
        ("openai", "gpt-4o-mini", (None, 10)),  # no usage
    ],
)
def test_unknown_gives_null(provider: str | None, model: str | None, tokens: tuple[int | None, int]) -> None:
    assert cost_usd(provider, model, *tokens, at=AT) is None
