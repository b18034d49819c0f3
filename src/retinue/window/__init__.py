"""Context engineering: what an agent's model is given, turn after turn, for hundreds of turns.

Give an agent a policy and it keeps every request inside its model's context
window (or a token budget), compacting older turns when the conversation nears
the limit, storing large tool outputs out of the conversation, and stopping
the run with `ContextWindowExceeded` rather than sending a request that cannot
fit::

    agent = Agent(
        "researcher",
        model="anthropic:claude-sonnet-4-5",
        tools=[search, read_page],
        context_policy=Summarize(summarizer=AnthropicModel("claude-haiku-4-5")),
    )

Policies: `Summarize` (a model summarizes older turns), `DropToolOutputs`
(older tool outputs become placeholders), `NoCompaction` (only the window
check and offloading), or any object following `ContextPolicy` (`retinue.window.policy`).
Subclass `CompactingPolicy` and implement `compact` to keep the accounting
and write only the compaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:
    from ..errors import ContextWindowExceeded
    from .budget import (
        DEFAULT_OUTPUT_RESERVE,
        ContextLimit,
        RequestTokens,
        TokenCounter,
        TokenEstimator,
        family_factor,
        request_breakdown,
    )
    from .compacting import CompactingPolicy, CompactionJob, ContextStatus, NoCompaction
    from .conversation import exchanges, head_end, render_transcript
    from .drop_outputs import DropToolOutputs
    from .offloaded import READ_TOOL_NAME, OutputStore
    from .policy import ContextPolicy
    from .summarize import SUMMARY_INSTRUCTIONS, Summarize, summarize_turns

__all__ = [
    "DEFAULT_OUTPUT_RESERVE",
    "READ_TOOL_NAME",
    "SUMMARY_INSTRUCTIONS",
    "CompactingPolicy",
    "CompactionJob",
    "ContextLimit",
    "ContextPolicy",
    "ContextStatus",
    "ContextWindowExceeded",
    "DropToolOutputs",
    "NoCompaction",
    "OutputStore",
    "RequestTokens",
    "Summarize",
    "TokenCounter",
    "TokenEstimator",
    "exchanges",
    "family_factor",
    "head_end",
    "render_transcript",
    "request_breakdown",
    "summarize_turns",
]

# Where each name lives. The package loads a module when one of its names is first asked for: every Agent imports
# the policy protocol, and only agents with a policy need the compaction machinery behind it.
_HOMES = {
    "DEFAULT_OUTPUT_RESERVE": ".budget",
    "READ_TOOL_NAME": ".offloaded",
    "SUMMARY_INSTRUCTIONS": ".summarize",
    "CompactingPolicy": ".compacting",
    "CompactionJob": ".compacting",
    "ContextLimit": ".budget",
    "ContextPolicy": ".policy",
    "ContextStatus": ".compacting",
    "ContextWindowExceeded": "..errors",
    "DropToolOutputs": ".drop_outputs",
    "NoCompaction": ".compacting",
    "OutputStore": ".offloaded",
    "RequestTokens": ".budget",
    "Summarize": ".summarize",
    "TokenCounter": ".budget",
    "TokenEstimator": ".budget",
    "exchanges": ".conversation",
    "family_factor": ".budget",
    "head_end": ".conversation",
    "render_transcript": ".conversation",
    "request_breakdown": ".budget",
    "summarize_turns": ".summarize",
}


__getattr__ = lazy_exports(__name__, _HOMES)
