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
check and offloading), or any object following `retinue.context_policy.ContextPolicy`.
Subclass `CompactingPolicy` and implement `compact` to keep the accounting
and write only the compaction.
"""

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
from .summarize import SUMMARY_INSTRUCTIONS, Summarize, summarize_turns
from .workspace import READ_TOOL_NAME, OutputStore

__all__ = [
    "DEFAULT_OUTPUT_RESERVE",
    "READ_TOOL_NAME",
    "SUMMARY_INSTRUCTIONS",
    "CompactingPolicy",
    "CompactionJob",
    "ContextLimit",
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
