"""Model requests: where a run's requests are built and sent.

The loop builds each turn's request here and sends it here. Context policies measure the same request before
it goes out, clones send their summary calls here, and compaction sends its calls here too. So what a policy
measures is what the loop sends, and every model call is charged to the run and announced.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .events import ModelRequestSent, ModelResponseReceived
from .messages import Message, ModelRequest, ModelResponse, ToolSchema, reply_asked
from .models.base import Model, TextSink, model_spec
from .models.pricing import price_of
from .tokens import estimate_message_tokens, estimate_request_tokens
from .usage import Usage

if TYPE_CHECKING:
    from .agent import Agent
    from .run_context import RunContext
    from .tools import Tool


@dataclass(frozen=True, slots=True)
class ToolOffer:
    """The tools a run shows its model, with one schema list shared by all its requests (the stable prefix).

    When nobody can approve actions (the `unattended` approver), tools that need approval are left out and
    `unavailable_note` tells the model about them. It can then plan without them instead of retrying calls
    that would be refused.
    """

    by_name: dict[str, Tool]
    schemas: list[ToolSchema]
    unavailable_note: str = ""

    @classmethod
    def of(cls, tools: Sequence[Tool], *, attended: bool) -> ToolOffer:
        unavailable = [] if attended else [t.name for t in tools if t.requires_approval]
        offered = [t for t in tools if t.name not in unavailable]
        note = ""
        if unavailable:
            note = (
                f"\n\nNobody is attending this session to approve actions, so these are unavailable: "
                f"{', '.join(unavailable)}. Say what you would do with them instead."
            )
        return cls({t.name: t for t in offered}, [t.schema for t in offered], note)


def build_request(
    agent: Agent[Any], context: RunContext, messages: Sequence[Message], *, last_turn: bool = False
) -> ModelRequest:
    """The request `agent` sends with `messages` in the run `context`.

    `last_turn` means the run must answer now: this is the last turn `max_turns` allows and the limits set
    `answer_on_last_turn`. The tools stay in the request, so the prompt cache still hits, but the model
    may not call them. A turn replying to an answer check that wants a tool called must call one, and one that wants
    an answer must answer (`SendBack.reply_with`).
    """
    offer = agent.offered_tools(context.approver)
    settings = agent.settings
    reply = "an answer" if last_turn else reply_asked(messages)
    if reply != "anything" and offer.schemas:
        settings = dataclasses.replace(settings, tool_choice="none" if reply == "an answer" else "required")
    return ModelRequest(
        instructions=agent.instructions_for(context) + offer.unavailable_note,
        messages=list(messages),
        tools=offer.schemas,
        settings=settings,
    )


async def send_request(
    context: RunContext,
    model: Model,
    request: ModelRequest,
    on_text: TextSink | None = None,
    *,
    purpose: str = "turn",
) -> ModelResponse:
    """Send one request for the run in `context`, charge it to the run's budget, and announce it with events.

    Every model call of a run goes through here: the loop's own turns, and the calls made on its behalf
    (summaries, compaction). So no cost goes unseen. In a durable run, each response is journalled (with its
    purpose) before it is returned; a resumed run gets the recorded response back instead of calling the
    model, charged as replayed (it counts against the limits, and cost nothing this time) and not announced
    again (the trace already has it).
    """
    turn = context.budget.turns
    journal = context.journal
    slot = journal.model_slot(turn, purpose)
    replayed = journal.replayed_response(turn, slot)
    if replayed is not None:
        context.budget.charge(replayed.usage, replayed=True)
        return replayed
    context.announce(ModelRequestSent, turn, model_spec(model), request, purpose)
    sent = time.perf_counter()
    response = await model.request(request, on_text)
    response.usage = _with_missing_usage_estimated(response.usage, request, response, model)
    context.budget.charge(response.usage)
    await journal.record_response(turn, slot, response)  # before any of its tools can run
    context.announce(ModelResponseReceived, turn, response, time.perf_counter() - sent, purpose)
    return response


def _with_missing_usage_estimated(usage: Usage, request: ModelRequest, response: ModelResponse, model: Model) -> Usage:
    """`usage`, with an offline estimate for the token counts the provider did not report.

    A provider that sends no usage (an OpenAI-compatible server without `usage`, a stream cut short) would
    otherwise be charged 0 tokens and $0, and no token or dollar limit could ever stop the run.
    """
    message = response.message
    missing_input = usage.input_tokens == 0  # every real request has input tokens
    missing_output = usage.output_tokens == 0 and bool(message.text or message.tool_calls)
    if not (missing_input or missing_output):
        return usage
    estimate = usage.copy()
    estimate.estimated = True
    if missing_input:
        estimate.input_tokens = estimate_request_tokens(request)
    if missing_output:
        estimate.output_tokens = estimate_message_tokens(message)
    price = price_of(model)
    estimate.cost_usd = None if price is None else price.cost(estimate)
    return estimate
