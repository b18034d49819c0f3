"""Limits on a run, and the budget that enforces them across a tree of agents.

Every run has a `Budget`. A sub-agent's budget is chained to its parent's, so
the tokens and dollars a clone spends count against the master and the root:
a tree of agents cannot overspend what the root was given. The turn limit is
per agent; tokens, dollars, wall time and the number of sub-runs apply to the
whole subtree, and the depth limit to every branch of it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from .errors import ConfigurationError
from .models.pricing import price_of
from .usage import Usage

if TYPE_CHECKING:
    from .models.base import Model

LimitName: TypeAlias = Literal[
    "max_turns",
    "max_input_tokens",
    "max_output_tokens",
    "max_cost_usd",
    "max_wall_seconds",
    "max_depth",
    "max_sub_runs",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """When to stop a run that has not answered yet. None means no limit.

    `answer_on_last_turn` sends the last turn `max_turns` allows with tool_choice "none", so the model must
    answer with what it has instead of being cut off mid-task (the tools stay in the request, so the
    prompt cache still hits).

    `max_depth` and `max_sub_runs` bound the tree of sub-agents (specialists, clones, any `run_sub_agent`)
    under this run, so an agent that delegates to copies of itself cannot fork without end. A sub-run
    deeper than `max_depth` levels below this run ends at once with that limit, before any model call, and
    its caller hears why; the rest of the tree goes on. Past `max_sub_runs` sub-runs in all, the tree has
    spent its budget like one out of tokens: every run in it stops before its next model call. Both are on
    by default: 8 levels is far deeper than any designed tree (a lead and its specialists are 1, a clone
    of a clone 2), and 200 runs leave a lead room to consult a few specialists on each of its 50 turns,
    while a tree forking three ways passes it within five levels.
    """

    max_turns: int | None = 50
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_cost_usd: float | None = None
    max_wall_seconds: float | None = None
    max_depth: int | None = 8
    max_sub_runs: int | None = 200
    answer_on_last_turn: bool = False

    def __post_init__(self) -> None:
        # A limit that can never be reached (nan, inf, 0 turns) would silently mean "no limit" or "no run".
        for name in ("max_turns", "max_input_tokens", "max_output_tokens"):
            value = getattr(self, name)
            if value is not None and not _is_whole_number(value, at_least=1):
                raise ConfigurationError(
                    f"Limits({name}={value!r}): give a whole number of at least 1, or None for no limit."
                )
        # 0 is a real limit here: an agent that must work alone.
        for name in ("max_depth", "max_sub_runs"):
            value = getattr(self, name)
            if value is not None and not _is_whole_number(value, at_least=0):
                raise ConfigurationError(
                    f"Limits({name}={value!r}): give a whole number of at least 0 (0: no sub-agents), "
                    "or None for no limit."
                )
        for name in ("max_cost_usd", "max_wall_seconds"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigurationError(
                    f"Limits({name}={value!r}): give a finite number greater than 0, or None for no limit."
                )


def _is_whole_number(value: object, *, at_least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= at_least


@dataclass(frozen=True, slots=True)
class LimitReached:
    """Which limit stopped a run, and whose limit it was."""

    limit: LimitName
    agent: str
    value: float
    used: float

    def describe(self) -> str:
        if self.limit == "max_depth":
            used = f"a sub-agent {self.used:g} levels below it"
        elif self.limit == "max_sub_runs":
            used = f"{self.used:g} sub-agent runs started"
        else:
            used = f"{self.used:g} used"
        return f"{self.limit} of agent '{self.agent}' reached ({used}, limit {self.value:g})"


class Budget:
    """The running totals of one agent run, charged upward to its ancestors."""

    __slots__ = ("agent", "limits", "own_usage", "parent", "replayed_usage", "started_at", "sub_runs", "turns", "usage")

    def __init__(self, agent: str, limits: Limits, parent: Budget | None = None) -> None:
        """A budget with a `parent` is a sub-run's: it counts as one more sub-run of every ancestor."""
        self.agent = agent
        self.limits = limits
        self.parent = parent
        self.usage = Usage()  # this run and every sub-agent under it
        self.own_usage = Usage()  # this run's own model calls
        # The part of `usage` replayed from a journal: paid for by an earlier process, free this time. It still
        # counts against the limits, so a run cannot escape them by being restarted.
        self.replayed_usage = Usage()
        self.turns = 0
        self.sub_runs = 0  # runs started anywhere under this one
        self.started_at = time.monotonic()
        ancestor = parent
        while ancestor is not None:
            ancestor.sub_runs += 1
            ancestor = ancestor.parent

    def start_turn(self) -> None:
        """Count one more model turn of this run: `check` stops the run once `max_turns` are taken."""
        self.turns += 1

    def must_answer_now(self) -> bool:
        """Whether this turn must be answered without tools: `answer_on_last_turn`, on the last of `max_turns`."""
        limits = self.limits
        return limits.answer_on_last_turn and self.turns == limits.max_turns

    def require_known_price(self, model: Model) -> None:
        """Refuse `model` when this run or an ancestor has a dollar limit and the model's price is unknown.

        Its calls would cost an unknown amount, so that limit could never stop the run.
        """
        if price_of(model) is not None:
            return
        budget: Budget | None = self
        while budget is not None:
            if budget.limits.max_cost_usd is not None:
                raise ConfigurationError(
                    f"Agent '{budget.agent}' has a dollar limit, but the price of '{model.model_id}' is unknown. "
                    "Give the model a price (for example OpenAIModel(..., price=Price(input=..., output=...))) "
                    "or use a token limit instead."
                )
            budget = budget.parent

    def charge(self, usage: Usage, *, replayed: bool = False) -> None:
        """Count a model call's `usage` against this run and its ancestors; `replayed` if it came from a journal."""
        self.own_usage.add(usage)
        budget: Budget | None = self
        while budget is not None:
            budget.usage.add(usage)
            if replayed:
                budget.replayed_usage.add(usage)
            budget = budget.parent

    def charge_replayed_sub_runs(self, count: int, usage: Usage) -> None:
        """Count `count` sub-runs that spent `usage`, replayed from a journal, against this run and its ancestors.

        A resumed run replays a finished call that had started sub-agents without running them again; their
        runs and spending still count, so the tree cannot exceed its limits by being restarted.
        """
        budget: Budget | None = self
        while budget is not None:
            budget.sub_runs += count
            budget.usage.add(usage)
            budget.replayed_usage.add(usage)
            budget = budget.parent

    def check(self) -> LimitReached | None:
        """The first limit already reached by this run or an ancestor, checked before each model call."""
        limits = self.limits
        if limits.max_turns is not None and self.turns >= limits.max_turns:
            return LimitReached("max_turns", self.agent, limits.max_turns, self.turns)
        budget: Budget | None = self
        levels_below = 0  # how far below `budget` this run is
        while budget is not None:
            reached = budget._check_shared(levels_below)
            if reached is not None:
                return reached
            budget = budget.parent
            levels_below += 1
        return None

    def _check_shared(self, levels_below: int) -> LimitReached | None:
        """The first limit of this budget's that stops a run `levels_below` levels under it."""
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
        # A sub-run is counted as it starts, before its first check: the one that takes the count past the cap
        # is the first refused, so `>`, not `>=` as for tokens.
        if limits.max_sub_runs is not None and self.sub_runs > limits.max_sub_runs:
            return LimitReached("max_sub_runs", self.agent, limits.max_sub_runs, self.sub_runs)
        if limits.max_depth is not None and levels_below > limits.max_depth:
            return LimitReached("max_depth", self.agent, limits.max_depth, levels_below)
        return None

    def wall_deadline(self) -> float | None:
        """When (on the `time.monotonic()` clock) the first wall-time limit of this run or an ancestor runs out."""
        deadline = self._first_deadline()
        return None if deadline is None else deadline[0]

    def wall_limit(self) -> LimitReached:
        """The wall-time limit that ran out at `wall_deadline()`, and whose it was."""
        deadline = self._first_deadline()
        assert deadline is not None, "a wall-time limit ran out, but this run has none"
        owner = deadline[1]
        seconds = owner.limits.max_wall_seconds or 0.0
        return LimitReached("max_wall_seconds", owner.agent, seconds, time.monotonic() - owner.started_at)

    def _first_deadline(self) -> tuple[float, Budget] | None:
        earliest: tuple[float, Budget] | None = None
        budget: Budget | None = self
        while budget is not None:
            if budget.limits.max_wall_seconds is not None:
                at = budget.started_at + budget.limits.max_wall_seconds
                if earliest is None or at < earliest[0]:
                    earliest = (at, budget)
            budget = budget.parent
        return earliest
