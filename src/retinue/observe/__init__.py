"""Observers: event sinks that watch runs without changing them.

    from retinue.observe import UsageByAgent
    meter = UsageByAgent()
    result = await agent.run(prompt, on_event=meter)
    meter.by_agent                    # each agent's Usage, clones and specialists under their own names

- `LiveView` (`live_view`): the agent tree on a terminal, or one log line per happening elsewhere.
- `UsageByAgent` (`accounting`): tokens and dollars per agent.
- `OTelRecorder` (`otel`): OpenTelemetry spans following the GenAI conventions; needs the `otel` extra.
- `PrefixStabilityMeter` (`prefix_stability`): how much of each request a provider's prompt cache can reuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .accounting import UsageByAgent
from .live_view import LiveView
from .prefix_stability import PrefixStabilityMeter

if TYPE_CHECKING:
    from .otel import OTelRecorder

__all__ = ["LiveView", "OTelRecorder", "PrefixStabilityMeter", "UsageByAgent"]


def __getattr__(name: str) -> Any:
    # OTelRecorder needs the otel extra: import it (and opentelemetry) only when it is asked for.
    if name == "OTelRecorder":
        from .otel import OTelRecorder

        return OTelRecorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
