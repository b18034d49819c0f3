"""Limits on a run, and the budget that enforces them across a tree of agents.

Every run has a `Budget`. A sub-agent's budget is chained to its parent's, so
the tokens and dollars a clone spends count against the master and the root:
a tree of agents cannot overspend what the root was given. The turn limit is
per agent; tokens, dollars and wall time apply to the whole subtree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .errors import ConfigurationError
from .usage import Usage

LimitName: TypeAlias = Literal["max_turns", "max_input_tokens", "max_output_tokens", "max_cost_usd", "max_wall_seconds"]


@dataclass(frozen=True, slots=True)
class Limits:
    """When to stop a run that has not answered yet. None means no limit.

    `answer_on_last_turn` sends the last turn `max_turns` allows with tool_choice "none", so the model must
    answer with what it has instead of being cut off mid-task (the tools stay in the request, so the
    prompt cache still hits).
    """

    max_turns: int | None = 50
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_cost_usd: float | None = None
    max_wall_seconds: float | None = None
    answer_on_last_turn: bool = False

    def __post_init__(self) -> None:
        # A limit that can never be reached (nan, inf, 0 turns) would silently mean "no limit" or "no run".
        for name in ("max_turns", "max_input_tokens", "max_output_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigurationError(
                    f"Limits({name}={value!r}): give a whole number of at least 1, or None for no limit."
                )
        for name in ("max_cost_usd", "max_wall_seconds"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigurationError(
                    f"Limits({name}={value!r}): give a finite number greater than 0, or None for no limit."
                )


@dataclass(frozen=True, slots=True)
class LimitReached:
    """Which limit stopped a run, and whose limit it was."""

    limit: LimitName
    agent: str
    value: float
    used: float

    def describe(self) -> str:
        return f"{self.limit} of agent '{self.agent}' reached ({self.used:g} used, limit {self.value:g})"


class Budget:
    """The running totals of one agent run, charged upward to its ancestors."""

    __slots__ = ("agent", "limits", "own_usage", "parent", "started_at", "turns", "usage")

    def __init__(self, agent: str, limits: Limits, parent: Budget | None = None) -> None:
        self.agent = agent
        self.limits = limits
        self.parent = parent
        self.usage = Usage()  # this run and every sub-agent under it
        self.own_usage = Usage()  # this run's own model calls
        self.turns = 0
        self.started_at = time.monotonic()

    def charge(self, usage: Usage) -> None:
        self.own_usage.add(usage)
        budget: Budget | None = self
        while budget is not None:
            budget.usage.add(usage)
            budget = budget.parent

    def check(self) -> LimitReached | None:
        """The first limit already reached by this run or an ancestor, checked before each model call."""
        limits = self.limits
        if limits.max_turns is not None and self.turns >= limits.max_turns:
            return LimitReached("max_turns", self.agent, limits.max_turns, self.turns)
        budget: Budget | None = self
        while budget is not None:
            reached = budget._check_shared()
            if reached is not None:
                return reached
            budget = budget.parent
        return None

    def _check_shared(self) -> LimitReached | None:
        limits, usage = self.limits, self.usage
        if limits.max_input_tokens is not None and usage.input_tokens >= limits.max_input_tokens:
            return LimitReached("max_input_tokens", self.agent, limits.max_input_tokens, usage.input_tokens)
        if limits.max_output_tokens is not None and usage.output_tokens >= limits.max_output_tokens:
            return LimitReached("max_output_tokens", self.agent, limits.max_output_tokens, usage.output_tokens)
        if limits.max_cost_usd is not None and usage.cost_usd is not None and usage.cost_usd >= limits.max_cost_usd:
            return LimitReached("max_cost_usd", self.agent, limits.max_cost_usd, usage.cost_usd)
        if limits.max_wall_seconds is not None:
            elapsed = time.monotonic() - self.started_at
            if elapsed >= limits.max_wall_seconds:
                return LimitReached("max_wall_seconds", self.agent, limits.max_wall_seconds, elapsed)
        return None

    def deadline(self) -> tuple[float, Budget] | None:
        """The earliest wall-clock deadline (monotonic) over this run and its ancestors, and whose it is."""
        earliest: tuple[float, Budget] | None = None
        budget: Budget | None = self
        while budget is not None:
            if budget.limits.max_wall_seconds is not None:
                at = budget.started_at + budget.limits.max_wall_seconds
                if earliest is None or at < earliest[0]:
                    earliest = (at, budget)
            budget = budget.parent
        return earliest
