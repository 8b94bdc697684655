"""The pricing table: versioned, dated, and never inventing a price."""

from __future__ import annotations

import pytest

from agents.ai.pricing import load_pricing
from schemas.ai import Usage


def test_the_table_is_versioned_dated_and_covers_each_providers_current_models() -> None:
    table = load_pricing()
    assert table.version and table.checked and "per million" in table.unit
    for provider, model in [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-5"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("bedrock", "amazon.nova-lite-v1:0"),
        ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0"),
    ]:
        assert table.price(provider, model) is not None, (provider, model)


def test_cost_is_unrounded_and_discounts_cached_input() -> None:
    table = load_pricing()
    usage = Usage(input_tokens=1000, output_tokens=500, cached_tokens=200)
    # gpt-4o-mini: $0.15 in, $0.075 cached in, $0.60 out per million tokens.
    assert table.cost("openai", "gpt-4o-mini", usage) == pytest.approx(
        (800 * 0.15 + 200 * 0.075 + 500 * 0.60) / 1_000_000, rel=1e-12
    )


@pytest.mark.parametrize(
    ("provider", "model", "family"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("anthropic", "claude-opus-4-20250514", "claude-opus-4"),
        ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-5-haiku"),
    ],
)
def test_a_dated_snapshot_gets_its_familys_price(provider: str, model: str, family: str) -> None:
    table = load_pricing()
    assert table.price(provider, model) == table.providers[provider][family]


@pytest.mark.parametrize(("provider", "model"), [("openai", "o3-mini"), ("openai", "my-local-llama"), ("echo", "x")])
def test_an_unknown_model_costs_none(provider: str, model: str) -> None:
    assert load_pricing().cost(provider, model, Usage(input_tokens=10, output_tokens=10)) is None
