"""Token accounting before a call: how big the next request is, and how big it may be.

Estimates are offline (no tokenizer download): `retinue.tokens` counts about
four characters per token, a per-provider factor corrects for tokenizers that
split text finer (Claude's), and each run then corrects the factor with the
input tokens the provider actually reported for the previous request. Where
a model can count exactly (a `TokenCounter`, such as Anthropic's
`/v1/messages/count_tokens`), a policy asked for exact counts uses it near
the threshold, where an estimate's error could matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..messages import Message, ModelRequest, ModelSettings
from ..tokens import estimate_message_tokens, estimate_request_tokens, estimate_text_tokens

DEFAULT_OUTPUT_RESERVE = 1024
"""Tokens kept free for the answer when the agent's settings do not say how long it may be."""

# Tokens per chars/4 estimate, by provider. Claude's tokenizer splits English and
# JSON into noticeably more pieces than OpenAI's o200k (commonly 15-25% more), so
# Anthropic starts high; being over rather than under only compacts a little early.
# Everything else starts at 1 and is corrected by the first reported usage.
_FAMILY_FACTORS: dict[str, float] = {"anthropic": 1.2, "openai": 1.0, "local": 1.05}
_MIN_FACTOR, _MAX_FACTOR = 0.5, 4.0
# Below this size a provider's fixed overhead (Anthropic's tool-use system prompt,
# some 300 tokens) dominates the ratio and would skew the factor for large requests.
_MIN_CALIBRATION_TOKENS = 500


@runtime_checkable
class TokenCounter(Protocol):
    """A model that can count a request's input tokens exactly, for example with a provider endpoint.

    An `AnthropicModel` implements it by posting the body it would send (less
    `max_tokens` and `stream`) to `/v1/messages/count_tokens` and returning
    `input_tokens`; policies use it only when created with `exact_token_counts=True`.
    """

    async def count_tokens(self, request: ModelRequest) -> int: ...


def family_factor(model_id: str) -> float:
    """The starting correction of the chars/4 estimate for `provider:model`."""
    return _FAMILY_FACTORS.get(model_id.partition(":")[0], 1.0)


class TokenEstimator:
    """Estimates input tokens for one model, corrected by what its provider reports.

    `factor` multiplies the chars/4 estimate of `retinue.tokens`; `observe`
    moves it halfway towards each measured ratio, so one odd request cannot
    swing it, yet a few requests converge on the provider's real tokenizer.
    """

    __slots__ = ("factor",)

    def __init__(self, model_id: str = "", factor: float | None = None) -> None:
        self.factor = family_factor(model_id) if factor is None else factor

    def raw(self, request: ModelRequest) -> int:
        return estimate_request_tokens(request)

    def request(self, request: ModelRequest) -> int:
        return self.scale(estimate_request_tokens(request))

    def messages(self, messages: list[Message]) -> int:
        return self.scale(sum(estimate_message_tokens(m) for m in messages))

    def message(self, message: Message) -> int:
        return self.scale(estimate_message_tokens(message))

    def text(self, text: str) -> int:
        return self.scale(estimate_text_tokens(text))

    def scale(self, raw_tokens: int) -> int:
        return math.ceil(raw_tokens * self.factor)

    def observe(self, raw_tokens: int, reported_tokens: int) -> None:
        """Learn from a request estimated at `raw_tokens` (unscaled) that the provider billed as `reported_tokens`."""
        if raw_tokens < _MIN_CALIBRATION_TOKENS or reported_tokens <= 0:
            return
        measured = reported_tokens / raw_tokens
        self.factor = min(max((self.factor + measured) / 2, _MIN_FACTOR), _MAX_FACTOR)


@dataclass(frozen=True, slots=True)
class RequestTokens:
    """Estimated tokens of one request, part by part."""

    instructions: int
    tools: int
    messages: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.instructions + self.tools + sum(self.messages)


def request_breakdown(request: ModelRequest, estimator: TokenEstimator) -> RequestTokens:
    """Estimated tokens of the instructions, the tool schemas and each message of `request`."""
    fixed = ModelRequest(instructions="", messages=[], tools=request.tools)
    return RequestTokens(
        instructions=estimator.text(request.instructions),
        tools=estimator.request(fixed),
        messages=tuple(estimator.message(m) for m in request.messages),
    )


@dataclass(frozen=True, slots=True)
class ContextLimit:
    """How many input tokens the next request may take, and where that number comes from.

    `window` is the model's context window (None when unknown), `reserve` the
    tokens kept free for the answer, `budget` an explicit cap set on the policy.
    """

    window: int | None
    reserve: int
    budget: int | None

    @property
    def max_input_tokens(self) -> int | None:
        caps = [cap for cap in (self.window - self.reserve if self.window else None, self.budget) if cap is not None]
        return min(caps) if caps else None

    def describe(self) -> str:
        if self.budget is not None and (self.window is None or self.budget <= self.window - self.reserve):
            return f"the context policy's budget of {self.budget:,} tokens"
        assert self.window is not None
        return f"the {self.window:,}-token context window less {self.reserve:,} tokens reserved for the answer"


def output_reserve(settings: ModelSettings, override: int | None) -> int:
    """Tokens the answer may need: an explicit reserve, else the answer's own cap (with thinking), else a default."""
    if override is not None:
        return override
    if settings.max_tokens is not None:
        return settings.max_tokens
    return DEFAULT_OUTPUT_RESERVE + (settings.thinking_budget_tokens or 0)
