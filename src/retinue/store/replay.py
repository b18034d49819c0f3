"""Re-issuing one recorded model request: "why did the agent do that, and would it with other words?"

`replay_call` sends a recorded request again, exactly as it was sent (after
redaction: a secret in the original is sent as its mask) or with edits to the
instructions, to tool descriptions or to the model, and diffs the new answer
against the recorded one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError
from ..messages import ModelRequest, ModelResponse
from ..models.base import Model, model_spec
from ..redact import redact
from .records import ModelCallRecord
from .sqlite import RunStore

ModelResolver = Callable[[str], Model]

# Providers whose bare model string means their official API, and so their key.
_PROVIDERS_WITH_A_HOST = frozenset({"openai", "anthropic"})


@dataclass(slots=True)
class ReplayResult:
    call: ModelCallRecord
    """The recorded call, with its request and response."""
    request: ModelRequest
    """What was sent this time (the recorded request, with any edits)."""
    model_id: str
    """The model it was sent to, as `model_spec` names it (with its server, if not the provider's own)."""
    response: ModelResponse
    diff: str
    """A unified diff from the recorded response to the new one; empty when they say the same."""

    @property
    def changed(self) -> bool:
        return bool(self.diff)


def edit_request(
    request: ModelRequest,
    *,
    instructions: str | None = None,
    tool_descriptions: Mapping[str, str] | None = None,
) -> ModelRequest:
    """A copy of `request` with new instructions and/or new descriptions for some tools."""
    tools = list(request.tools)
    if tool_descriptions:
        names = {schema.name for schema in tools}
        unknown = sorted(set(tool_descriptions) - names)
        if unknown:
            raise ConfigurationError(
                f"The recorded request has no tool named {', '.join(map(repr, unknown))}; "
                f"its tools are: {', '.join(sorted(names)) or 'none'}."
            )
        tools = [
            dataclasses.replace(schema, description=tool_descriptions[schema.name])
            if schema.name in tool_descriptions
            else schema
            for schema in tools
        ]
    return ModelRequest(
        instructions=request.instructions if instructions is None else instructions,
        messages=list(request.messages),
        tools=tools,
        settings=request.settings,
    )


async def replay_call(
    store: RunStore,
    call_id: int,
    *,
    model: Model | str | None = None,
    instructions: str | None = None,
    tool_descriptions: Mapping[str, str] | None = None,
    resolve: ModelResolver | None = None,
) -> ReplayResult:
    """Send recorded model call `call_id` again and compare the answers.

    `model` defaults to the recorded model; a string is resolved with
    `resolve` (by default `retinue.models.resolve.resolve_model`).
    """
    call = store.get_model_call(call_id)
    if call is None:
        raise LookupError(f"There is no recorded model call {call_id}; `retinue show RUN_ID` lists a run's calls.")
    if call.request is None:
        raise LookupError(f"Model call {call_id} was recorded without its request, so it cannot be replayed.")
    if model is None and not call.server_recorded and call.model_id.split(":", 1)[0] in _PROVIDERS_WITH_A_HOST:
        raise ConfigurationError(
            f"model call {call_id} was recorded by an older retinue that stored {call.model_id!r} without the "
            "server it was sent to, which may have been a compatible server rather than the provider's own API. "
            f"Say where to replay it: --model {call.model_id} for the provider's API, or "
            f"--model {call.model_id}@<base_url> for a compatible server."
        )
    request = edit_request(call.request, instructions=instructions, tool_descriptions=tool_descriptions)
    chosen = model if model is not None else call.model_id
    if isinstance(chosen, str):
        if resolve is None:
            from ..models.resolve import resolve_model

            resolve = resolve_model
        chosen = resolve(chosen)
    response = await chosen.request(request)
    return ReplayResult(
        call=call,
        request=request,
        model_id=model_spec(chosen),
        response=response,
        diff=response_diff(call.response, response),
    )


def describe_response(response: ModelResponse | None) -> list[str]:
    """A response as lines for people and for diffing: the answer text, then each tool call."""
    if response is None:
        return ["(no response was recorded: the call failed or never finished)"]
    lines = response.message.text.splitlines() or ([""] if not response.message.tool_calls else [])
    for call in response.message.tool_calls:
        arguments = call.invalid_arguments or json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
        lines.append(f"→ {call.name}({arguments})")
    lines.append(f"[stop: {response.stop_reason}]")
    return [redact(line) for line in lines]


def response_diff(recorded: ModelResponse | None, new: ModelResponse) -> str:
    """A unified text diff of the answers and tool calls (tool call ids are ignored: they always differ)."""
    diff = difflib.unified_diff(
        describe_response(recorded), describe_response(new), "recorded", "replayed", lineterm="", n=3
    )
    return "\n".join(diff)
