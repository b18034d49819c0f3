"""ScriptedModel: a model that answers from a script, for tests without a network.

Give it a list of replies (used in order) or a function of the request (for
logic that depends on what the agent sent, such as concurrent clones). A reply
is a string (a final answer), a `ToolCall` or a list of them (a tool-use turn),
an `AssistantMessage`, a full `ModelResponse`, or an exception to raise.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from ..errors import ScriptExhaustedError
from ..messages import AssistantMessage, ModelRequest, ModelResponse, StopReason, ToolCall
from ..models.base import TextSink
from ..tokens import estimate_request_tokens, estimate_text_tokens
from ..usage import Usage

Reply: TypeAlias = str | ToolCall | list[ToolCall] | AssistantMessage | ModelResponse | BaseException
ReplyFunction: TypeAlias = Callable[[ModelRequest], Reply | Awaitable[Reply]]

_call_ids = itertools.count(1)


def call(tool_name: str, /, **arguments: Any) -> ToolCall:
    """A tool call for a script: `call("get_weather", city="Paris", date="2026-12-01")`."""
    return ToolCall(id=f"call_{next(_call_ids)}", name=tool_name, arguments=arguments)


class ScriptedModel:
    """A `Model` that replies from a script and records every request it was sent.

    Usage is estimated from the request and reply text (about four characters
    per token), so token limits behave as they would with a real model; the
    cost is zero, or `cost_per_call` dollars when given, to test dollar limits.
    """

    def __init__(
        self,
        script: Sequence[Reply] | ReplyFunction,
        *,
        name: str = "test",
        latency: float = 0.0,
        cost_per_call: float = 0.0,
    ) -> None:
        self._function: ReplyFunction | None = None
        self._replies: list[Reply] = []
        if callable(script):
            self._function = script
        else:
            self._replies = list(script)
        self._position = 0
        self.name = name
        self.latency = latency
        self.cost_per_call = cost_per_call
        self.requests: list[ModelRequest] = []

    @property
    def model_id(self) -> str:
        return f"scripted:{self.name}"

    @property
    def remaining(self) -> int:
        """Replies not used yet (0 for a function script)."""
        return len(self._replies) - self._position

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        self.requests.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = await self._next_reply(request)
        if isinstance(reply, BaseException):
            raise reply
        response = self._as_response(reply, request)
        if on_text is not None and response.message.text:
            for piece in _pieces(response.message.text):
                on_text(piece)
        return response

    async def _next_reply(self, request: ModelRequest) -> Reply:
        if self._function is not None:
            reply = self._function(request)
            if inspect.isawaitable(reply):
                return await reply
            return reply
        if self._position >= len(self._replies):
            raise ScriptExhaustedError(
                f"ScriptedModel '{self.name}' was asked for reply {self._position + 1} but its script has "
                f"{len(self._replies)}. Add replies to the script, or check why the agent made an extra call.",
                provider="scripted",
            )
        reply = self._replies[self._position]
        self._position += 1
        return reply

    def _as_response(self, reply: Reply, request: ModelRequest) -> ModelResponse:
        if isinstance(reply, ModelResponse):
            return reply
        message: AssistantMessage
        if isinstance(reply, str):
            message = AssistantMessage(text=reply)
        elif isinstance(reply, ToolCall):
            message = AssistantMessage(tool_calls=[reply])
        elif isinstance(reply, list):
            message = AssistantMessage(tool_calls=list(reply))
        elif isinstance(reply, AssistantMessage):
            message = reply
        else:
            raise TypeError(f"ScriptedModel cannot reply with {reply!r}")
        output_chars = message.text + "".join(c.name + str(c.arguments) for c in message.tool_calls)
        usage = Usage(
            input_tokens=estimate_request_tokens(request),
            output_tokens=estimate_text_tokens(output_chars),
            requests=1,
            cost_usd=self.cost_per_call,
        )
        stop: StopReason = "tool_use" if message.tool_calls else "end_turn"
        return ModelResponse(message=message, usage=usage, model=self.model_id, stop_reason=stop)


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]
