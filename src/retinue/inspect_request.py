"""What the model will see on an agent's next call, rendered for people, with token estimates.

When an agent misbehaves, the first question is what it was actually given.
`preview_request` builds the request the loop would send (instructions, tool
schemas, messages) without sending it, and shows every part with its
estimated size and the total against the model's window.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .messages import AssistantMessage, Message, ToolResultsMessage, UserMessage
from .model_calls import build_request
from .models.base import Model
from .models.windows import context_window_of
from .window.budget import ContextLimit, TokenEstimator, output_reserve, request_breakdown
from .window.compacting import CompactingPolicy

if TYPE_CHECKING:
    from .agent import Agent

_INDENT = "    "


def preview_request(
    agent: Agent[Any],
    prompt_or_messages: str | Sequence[Message],
    *,
    history: Sequence[Message] | None = None,
    model: Model | None = None,
    deps: Any = None,
    max_part_chars: int | None = None,
) -> str:
    """The request `agent` would send next, as readable text with token estimates per part.

    Args:
        agent: The agent whose request to show.
        prompt_or_messages: A prompt (the request of a new run) or a conversation, such as
            `result.messages`, to see the request that would continue it.
        history: Messages before the prompt, as `agent.run(history=...)` takes them.
        model: The model to size the request for; by default the agent's.
        deps: Passed to the run context, for agents whose instructions depend on it.
        max_part_chars: Cut each text longer than this (None shows everything, exactly as sent).

    The context policy is not applied: if it would compact before this call, the preview says so.
    """
    model = model if model is not None else agent.resolved_model()
    items = [UserMessage(prompt_or_messages)] if isinstance(prompt_or_messages, str) else list(prompt_or_messages)
    context = agent.new_context(deps=deps)
    context.messages.extend([*(history or ()), *items])
    context.budget.start_turn()  # the request shown is that of a run's first turn, as the loop builds it
    request = build_request(agent, context, context.messages, last_turn=context.budget.must_answer_now())
    policy = agent.context_policy
    if isinstance(policy, CompactingPolicy):
        limit = policy.limit_for(model, agent.settings)
    else:
        limit = ContextLimit(context_window_of(model), output_reserve(agent.settings, None), None)
    estimator = TokenEstimator(model.model_id)
    tokens = request_breakdown(request, estimator)

    def clip(text: str) -> str:
        if max_part_chars is None or len(text) <= max_part_chars:
            return text
        return f"{text[:max_part_chars]}... [{len(text) - max_part_chars:,} more characters]"

    lines = [f"Next request of agent '{agent.name}' to {model.model_id}", _describe_limit(limit, policy), ""]
    lines.append(f"== Instructions · ~{tokens.instructions:,} tokens ==")
    lines.append(_indented(clip(request.instructions)) if request.instructions else f"{_INDENT}(none)")
    lines.append("")
    lines.append(f"== Tools ({len(request.tools)}) · ~{tokens.tools:,} tokens ==")
    for schema in request.tools:
        size = estimator.text(schema.name + schema.description + json.dumps(schema.parameters))
        lines.append(f"- {schema.name} · ~{size:,} tokens")
        if schema.description:
            lines.append(_indented(clip(schema.description)))
        lines.append(_indented(json.dumps(schema.parameters, indent=2, ensure_ascii=False)))
    lines.append("")
    lines.append(f"== Messages ({len(request.messages)}) · ~{sum(tokens.messages):,} tokens ==")
    for number, (message, size) in enumerate(zip(request.messages, tokens.messages, strict=True), start=1):
        lines.append(f"#{number} {_role(message)} · ~{size:,} tokens")
        lines.extend(_indented(clip(part)) for part in _parts(message))
    lines.append("")
    lines.append(_describe_total(tokens.total, limit, policy))
    return "\n".join(lines)


def _describe_limit(limit: ContextLimit, policy: object) -> str:
    max_input = limit.max_input_tokens
    window = f"window {limit.window:,} tokens" if limit.window else "window unknown"
    parts = [window]
    if max_input is not None:
        parts.append(f"input limit {max_input:,} ({limit.describe()})")
    if isinstance(policy, CompactingPolicy):
        if max_input is not None and policy.compacts:
            parts.append(f"{policy.strategy} compacts above {math.floor(max_input * policy.compact_at):,}")
        elif not policy.compacts:
            parts.append("no compaction")
    elif policy is not None:
        parts.append(f"context policy {type(policy).__name__} (not applied in this preview)")
    else:
        parts.append("no context policy")
    return "; ".join(parts)


def _describe_total(total: int, limit: ContextLimit, policy: object) -> str:
    max_input = limit.max_input_tokens
    if max_input is None:
        return f"== Total: ~{total:,} tokens (window unknown) =="
    line = f"== Total: ~{total:,} of {max_input:,} input tokens ({total / max_input:.1%}) =="
    if total > max_input:
        line += "\nThis request does not fit: the run would stop with ContextWindowExceeded unless compacted."
    if isinstance(policy, CompactingPolicy) and policy.compacts and total > math.floor(max_input * policy.compact_at):
        line += f"\nThe {policy.strategy} policy would compact the conversation before sending this request."
    return line


def _role(message: Message) -> str:
    if isinstance(message, ToolResultsMessage):
        return "tool results"
    return message.role


def _parts(message: Message) -> list[str]:
    if isinstance(message, UserMessage):
        return [message.content]
    if isinstance(message, AssistantMessage):
        parts = []
        for reasoning in message.reasoning:
            if reasoning.redacted_data is not None:
                parts.append("(redacted thinking)")
            else:
                signed = ", signed" if reasoning.signature else ""
                parts.append(f"(thinking{signed}) {reasoning.text}")
        if message.text:
            parts.append(message.text)
        for call in message.tool_calls:
            arguments = call.invalid_arguments if call.invalid_arguments is not None else json.dumps(call.arguments)
            parts.append(f"-> {call.name}({arguments})  [{call.id}]")
        return parts or ["(empty)"]
    return [
        f"<- {result.name} [{result.tool_call_id}]{' (error)' if result.is_error else ''}:\n{result.content}"
        for result in message.results
    ]


def _indented(text: str) -> str:
    return "\n".join(f"{_INDENT}{line}" if line else "" for line in text.splitlines() or [""])
