"""Dollar cost of a model call, from the price table in `prices.json`.

The table is data, not code, so updating a price is a one-line change. Models
running on the user's own hardware (`local:`, `scripted`) cost nothing; any
other model missing from the table has an unknown cost (None), never zero.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..usage import Usage

# The dates (and "-latest") providers append to a model name for one snapshot of it.
_SNAPSHOT_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$")
_FREE_PROVIDERS = frozenset({"local", "scripted", "function", "replay"})


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        cache_read_price = self.input if self.cache_read is None else self.cache_read
        cache_write_price = self.input if self.cache_write is None else self.cache_write
        uncached = max(usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens, 0)
        return (
            uncached * self.input
            + usage.cache_read_tokens * cache_read_price
            + usage.cache_write_tokens * cache_write_price
            + usage.output_tokens * self.output
        ) / 1_000_000


def without_snapshot_suffix(model_id: str) -> str:
    """The listed model a dated snapshot belongs to: `anthropic:claude-sonnet-4-5-20250929` -> `...-4-5`."""
    return _SNAPSHOT_SUFFIX.sub("", model_id)


@cache
def _price_table() -> dict[str, Price]:
    raw = json.loads((Path(__file__).parent / "prices.json").read_text())
    return {key: Price(**entry) for key, entry in raw.items() if not key.startswith("_")}


def price_for(model_id: str) -> Price | None:
    """The price of `provider:model`, accepting dated snapshots of a listed model."""
    provider = model_id.partition(":")[0]
    if provider in _FREE_PROVIDERS:
        return Price(0.0, 0.0, 0.0, 0.0)
    table = _price_table()
    if model_id in table:
        return table[model_id]
    return table.get(without_snapshot_suffix(model_id))


def price_of(model: object) -> Price | None:
    """The price a model instance charges: its own `price` (a self-hosted model's), else the table's."""
    own = getattr(model, "price", None)
    if isinstance(own, Price):
        return own
    model_id = getattr(model, "model_id", "")
    return price_for(model_id) if isinstance(model_id, str) else None


def cost_of(model_id: str, usage: Usage) -> float | None:
    """Dollars for `usage` on `model_id`, or None when the price is unknown."""
    price = price_for(model_id)
    return None if price is None else price.cost(usage)
