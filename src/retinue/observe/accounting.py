"""Tokens and dollars per agent, from the event stream."""

from __future__ import annotations

from ..events import Event, ModelResponseReceived
from ..usage import Usage


class UsageByAgent:
    """An event sink that sums each agent's model usage: `agent.run(..., on_event=meter)`; then `meter.by_agent`.

    Clones and specialists appear under their own names, so the cost of each
    part of a multi-agent run is visible.
    """

    def __init__(self) -> None:
        self.by_agent: dict[str, Usage] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, ModelResponseReceived):
            usage = self.by_agent.get(event.agent)
            if usage is None:
                usage = self.by_agent[event.agent] = Usage()
            usage.add(event.response.usage)

    def total(self) -> Usage:
        total = Usage()
        for usage in self.by_agent.values():
            total.add(usage)
        return total
