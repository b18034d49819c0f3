"""Token counts and dollars, per model call and summed per run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    """What one or more model calls consumed.

    `input_tokens` counts every prompt token, cached or not; `cache_read_tokens`
    and `cache_write_tokens` say how many of them hit or filled a prompt cache.
    `cost_usd` is None when any call's price was unknown: an unknown price is
    never reported as free. `estimated` is True when some call's provider
    reported no token counts and the loop charged an offline estimate instead:
    missing usage is never counted as zero.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    cost_usd: float | None = 0.0
    estimated: bool = False

    def add(self, other: Usage) -> None:
        """Add `other` into this usage in place."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.requests += other.requests
        self.estimated = self.estimated or other.estimated
        if self.cost_usd is None or other.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += other.cost_usd

    def __add__(self, other: Usage) -> Usage:
        total = self.copy()
        total.add(other)
        return total

    def copy(self) -> Usage:
        return Usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.reasoning_tokens,
            self.requests,
            self.cost_usd,
            self.estimated,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def headline(self) -> dict[str, int | float | None]:
        """The counts people read first (requests, tokens in and out, dollars), as JSON-ready data."""
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
        }

    def describe(self) -> str:
        """A one-line summary for people: tokens and dollars."""
        about = "~" if self.estimated else ""  # some counts are offline estimates
        cost = "unknown cost" if self.cost_usd is None else f"{about}${self.cost_usd:.4f}"
        cached = f" ({self.cache_read_tokens} cached)" if self.cache_read_tokens else ""
        return (
            f"{self.requests} requests, {about}{self.input_tokens} input tokens{cached}, "
            f"{about}{self.output_tokens} output tokens, {cost}"
        )
