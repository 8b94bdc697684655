"""What a call cost, from the versioned pricing table in ``pricing.json``.

A model is found by its exact name, else as a dated snapshot of a listed name (``gpt-4o-mini-2024-07-18``,
``claude-3-5-haiku-20241022``, ``anthropic.claude-3-5-haiku-20241022-v1:0``); Bedrock's cross-region
prefixes (``us.``, ``eu.`` ...) are ignored. ``o3-mini`` is not a snapshot of ``o3``: it is unknown. A
model the table does not know costs ``None``: never an invented number.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from schemas.ai import Usage

_SNAPSHOT = re.compile(r"(-(\d{4}-\d{2}-\d{2}|\d{8}|latest))?(-v\d+)?(:\d+)?")
_REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")


class Price(BaseModel):
    """USD per million tokens; cached input tokens cost ``cached_input`` when the provider discounts them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float
    output: float
    cached_input: float | None = None


class PricingTable(BaseModel):
    """The table as stored: a version, the date it was checked, and prices by provider and model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    checked: str
    source: str
    unit: str
    providers: dict[str, dict[str, Price]]

    def price(self, provider: str, model: str) -> Price | None:
        """The price of ``model``, or None when the table does not list it (nor a family it belongs to)."""
        prices = self.providers.get(provider, {})
        if provider == "bedrock":
            model = next((model[len(p) :] for p in _REGION_PREFIXES if model.startswith(p)), model)
        if model in prices:
            return prices[model]
        family = max(
            (name for name in prices if model.startswith(name) and _SNAPSHOT.fullmatch(model[len(name) :])),
            key=len,
            default=None,
        )
        return prices[family] if family is not None else None

    def cost(self, provider: str, model: str, usage: Usage) -> float | None:
        """The unrounded USD cost of ``usage`` on ``model``, or None for an unknown model."""
        price = self.price(provider, model)
        if price is None:
            return None
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_rate = price.cached_input if price.cached_input is not None else price.input
        return (
            (usage.input_tokens - cached) * price.input + cached * cached_rate + usage.output_tokens * price.output
        ) / 1_000_000


@lru_cache(maxsize=4)
def load_pricing(path: Path | None = None) -> PricingTable:
    """The pricing table shipped with awe, or the one at ``path`` (``AWE_PRICING_FILE``)."""
    text = path.read_text() if path is not None else resources.files("agents.ai").joinpath("pricing.json").read_text()
    return PricingTable.model_validate(json.loads(text))
