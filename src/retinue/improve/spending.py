"""What an optimisation has spent, episodes and dollars, and when it must stop.

Dollars are counted from the events of every run the optimisation makes (episodes, their sub-agents, the
reflection model): each `ModelResponseReceived` carries the priced usage of one model call sent through
`send_request`. So the count is what the trace store records, call for call.

Limits are checked before a batch of episodes or a reflection call starts: once the spend reaches
`max_cost_usd`, nothing new starts. What is under way finishes, so the spend can pass the limit by at most one
batch of episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..events import Event, ModelResponseReceived


class SearchStopped(Exception):
    """The optimisation must stop: a limit is reached, or it cannot go on (`reason` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Spending:
    """Episodes run and dollars spent so far, against the optimisation's limits (None: no limit).

    Feed it every event of the optimisation's runs (it is an event sink). `reserve` arguments keep part of
    the budget back for later (the held-out gate): the search may not use it.
    """

    max_rollouts: int | None = None
    max_cost_usd: float | None = None
    rollouts: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    unpriced: set[str] = field(default_factory=set)  # models whose calls have no known price
    rollout_cost_usd: float = 0.0  # the part spent by episodes, to estimate what more episodes will cost

    def __call__(self, event: Event) -> None:
        if not isinstance(event, ModelResponseReceived):
            return
        self.model_calls += 1
        cost = event.response.usage.cost_usd
        if cost is None:
            self.unpriced.add(event.response.model)
        else:
            self.cost_usd += cost

    @property
    def known_cost(self) -> float | None:
        """Dollars spent, or None when some call's price is unknown (then it was more than `cost_usd`)."""
        return None if self.unpriced else self.cost_usd

    def cost_per_rollout(self) -> float:
        return self.rollout_cost_usd / self.rollouts if self.rollouts else 0.0

    def start_rollouts(self, count: int, *, reserve: int = 0) -> None:
        """Count `count` episodes about to start; SearchStopped if they do not fit the limits."""
        self.check_cost(reserve=reserve)
        if self.max_rollouts is not None and self.rollouts + count > self.max_rollouts - reserve:
            kept = f" ({reserve} kept for the held-out gate)" if reserve else ""
            raise SearchStopped(
                f"the budget of {self.max_rollouts} episodes is used up: {self.rollouts} run, the next batch "
                f"needs {count}{kept}"
            )
        self.rollouts += count

    def check_cost(self, *, reserve: int = 0) -> None:
        """SearchStopped when no more may be spent: the limit is reached, or spending cannot be known."""
        if self.max_cost_usd is None:
            return
        if self.unpriced:
            raise SearchStopped(
                f"the price of {', '.join(sorted(self.unpriced))} is unknown, so the --max-cost of "
                f"${self.max_cost_usd:.2f} cannot be kept: give the model a price, or leave --max-cost out"
            )
        kept = self.cost_per_rollout() * reserve
        if self.cost_usd + kept >= self.max_cost_usd:
            estimate = f" with ~${kept:.4f} kept for the held-out gate" if reserve else ""
            raise SearchStopped(
                f"the cost limit of ${self.max_cost_usd:.4f} is reached: ${self.cost_usd:.4f} spent{estimate}"
            )

    def stop_reason(self, *, reserve: int = 0, next_batch: int = 1) -> str | None:
        """Why no further batch of `next_batch` episodes may start, or None when one may."""
        try:
            self.check_cost(reserve=reserve)
        except SearchStopped as stop:
            return stop.reason
        if self.max_rollouts is not None and self.rollouts + next_batch > self.max_rollouts - reserve:
            kept = f", and {reserve} are kept for the held-out gate" if reserve else ""
            return (
                f"the budget of {self.max_rollouts} episodes cannot hold another step: {self.rollouts} run, the next "
                f"needs up to {next_batch}{kept}"
            )
        return None
