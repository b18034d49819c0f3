"""OpenTelemetry export of runs, following the GenAI semantic conventions.

    from retinue.observe import OTelRecorder
    result = await agent.run(prompt, on_event=OTelRecorder())

Each run is an `invoke_agent {agent}` span; each model call a `chat {model}`
span under it; each tool call an `execute_tool {tool}` span under it. A
sub-agent's run nests under the tool call that started it, so a lead, its
specialists and their clones form one trace. A root run nests under whatever
span is current when it starts (an HTTP request, a job).

Prompts, answers and tool arguments are not attributes unless
`capture_content=True` (they may hold personal data); when they are, they are
redacted like everything else retinue writes down.

Needs the `otel` extra: `pip install 'retinue[otel]'`.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import MissingDependencyError
from ..events import (
    ApprovalRequested,
    ApprovalResolved,
    Event,
    ModelRequestSent,
    ModelResponseReceived,
    Notice,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
)
from ..messages import ModelRequest
from ..redact import redact
from ..store.serialize import dumps
from ..usage import Usage

try:
    from opentelemetry import trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("OpenTelemetry export", "otel", exc.name or "opentelemetry") from exc

INSTRUMENTATION_NAME = "retinue"

# The GenAI semantic convention attribute names used here, spelled once.
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the older name of gen_ai.provider.name, still read by many backends
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"


def _nanoseconds(timestamp: float) -> int:
    return int(timestamp * 1_000_000_000)


def split_model_id(model_id: str) -> tuple[str, str]:
    """`anthropic:claude-sonnet-4-5` -> ("anthropic", "claude-sonnet-4-5")."""
    provider, colon, model = model_id.partition(":")
    return (provider, model) if colon else ("", model_id)


class OTelRecorder:
    """An event sink that turns a run's events into OpenTelemetry spans.

    One recorder can watch any number of concurrent runs. Spans carry the
    events' own timestamps, so their durations are the loop's, not the time
    the sink took to see them.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        tracer: Tracer | None = None,
        capture_content: bool = False,
    ) -> None:
        self._tracer = tracer or trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)
        self._capture_content = capture_content
        self._runs: dict[str, Span] = {}
        self._model_calls: dict[tuple[str, int], Span] = {}
        self._tool_calls: dict[tuple[str, str], Span] = {}

    def __call__(self, event: Event) -> None:
        match event:
            case RunStarted():
                self._run_started(event)
            case ModelRequestSent():
                self._model_request(event)
            case ModelResponseReceived():
                self._model_response(event)
            case ToolCallStarted():
                self._tool_started(event)
            case ToolCallFinished():
                self._tool_finished(event)
            case ApprovalRequested() | ApprovalResolved() | Notice():
                self._span_event(event)
            case RunFinished():
                self._run_finished(event)

    def _run_started(self, event: RunStarted) -> None:
        parent: Span | None = None
        if event.parent_run_id is not None:
            if event.parent_tool_call_id is not None:
                parent = self._tool_calls.get((event.parent_run_id, event.parent_tool_call_id))
            parent = parent or self._runs.get(event.parent_run_id)
        provider, model = split_model_id(event.model_id)
        attributes: dict[str, Any] = {
            OPERATION: "invoke_agent",
            AGENT_NAME: event.agent,
            AGENT_ID: event.run_id,
            REQUEST_MODEL: model,
            PROVIDER: provider,
            SYSTEM: provider,
            "retinue.run.depth": event.depth,
        }
        if event.parent_run_id is not None:
            attributes["retinue.run.parent_id"] = event.parent_run_id
        if self._capture_content:
            attributes["retinue.run.prompt"] = redact(event.prompt)
        self._runs[event.run_id] = self._tracer.start_span(
            f"invoke_agent {event.agent}",
            context=trace.set_span_in_context(parent) if parent is not None else None,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_nanoseconds(event.timestamp),
        )

    def _model_request(self, event: ModelRequestSent) -> None:
        parent = self._runs.get(event.run_id)
        provider, model = split_model_id(event.model_id)
        settings = event.request.settings
        attributes: dict[str, Any] = {
            OPERATION: "chat",
            REQUEST_MODEL: model,
            PROVIDER: provider,
            SYSTEM: provider,
            AGENT_NAME: event.agent,
            "retinue.turn": event.turn,
        }
        for name, value in (
            ("gen_ai.request.temperature", settings.temperature),
            ("gen_ai.request.max_tokens", settings.max_tokens),
            ("gen_ai.request.top_p", settings.top_p),
        ):
            if value is not None:
                attributes[name] = value
        if self._capture_content:
            attributes.update(_request_content(event.request))
        self._model_calls[(event.run_id, event.turn)] = self._tracer.start_span(
            f"chat {model}",
            context=trace.set_span_in_context(parent) if parent is not None else None,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=_nanoseconds(event.timestamp),
        )

    def _model_response(self, event: ModelResponseReceived) -> None:
        span = self._model_calls.pop((event.run_id, event.turn), None)
        if span is None:
            return
        response = event.response
        span.set_attributes(_usage_attributes(response.usage))
        span.set_attribute(RESPONSE_MODEL, split_model_id(response.model)[1])
        span.set_attribute(FINISH_REASONS, [response.stop_reason])
        if response.response_id:
            span.set_attribute(RESPONSE_ID, response.response_id)
        if self._capture_content:
            span.set_attribute(OUTPUT_MESSAGES, redact(dumps([response.message])))
        span.end(end_time=_nanoseconds(event.timestamp))

    def _tool_started(self, event: ToolCallStarted) -> None:
        parent = self._runs.get(event.run_id)
        call = event.call
        attributes: dict[str, Any] = {
            OPERATION: "execute_tool",
            TOOL_NAME: call.name,
            TOOL_CALL_ID: call.id,
            TOOL_TYPE: "function",
            AGENT_NAME: event.agent,
        }
        if self._capture_content:
            attributes[TOOL_ARGUMENTS] = redact(call.invalid_arguments or json.dumps(call.arguments, default=str))
        self._tool_calls[(event.run_id, call.id)] = self._tracer.start_span(
            f"execute_tool {call.name}",
            context=trace.set_span_in_context(parent) if parent is not None else None,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_nanoseconds(event.timestamp),
        )

    def _tool_finished(self, event: ToolCallFinished) -> None:
        span = self._tool_calls.pop((event.run_id, event.call.id), None)
        if span is None:
            return
        if self._capture_content:
            span.set_attribute(TOOL_RESULT, redact(event.result.content))
        if event.result.is_error:
            span.set_attribute(ERROR_TYPE, "tool_error")
            # The first line says what went wrong; the rest may be long and is content.
            span.set_status(Status(StatusCode.ERROR, redact(event.result.content.splitlines()[0][:200])))
        span.end(end_time=_nanoseconds(event.timestamp))

    def _span_event(self, event: ApprovalRequested | ApprovalResolved | Notice) -> None:
        span: Span | None
        attributes: dict[str, Any]
        if isinstance(event, Notice):
            span = self._runs.get(event.run_id)
            name = f"retinue.notice.{event.kind}"
            attributes = {"message": redact(event.message)}
        else:
            span = self._tool_calls.get((event.run_id, event.call.id)) or self._runs.get(event.run_id)
            if isinstance(event, ApprovalRequested):
                name, attributes = "retinue.approval.requested", {TOOL_NAME: event.call.name}
            else:
                name = "retinue.approval.resolved"
                attributes = {TOOL_NAME: event.call.name, "approved": event.approved, "reason": redact(event.reason)}
        if span is not None:
            span.add_event(name, attributes, timestamp=_nanoseconds(event.timestamp))

    def _run_finished(self, event: RunFinished) -> None:
        result = event.result
        end_time = _nanoseconds(event.timestamp)
        # Spans a failed or cancelled run left open end with it rather than leak.
        for key in [key for key in self._model_calls if key[0] == event.run_id]:
            self._end_abandoned(self._model_calls.pop(key), result.status, end_time)
        for tool_key in [key for key in self._tool_calls if key[0] == event.run_id]:
            self._end_abandoned(self._tool_calls.pop(tool_key), result.status, end_time)
        span = self._runs.pop(event.run_id, None)
        if span is None:
            return
        span.set_attributes(_usage_attributes(result.total_usage))
        span.set_attribute("retinue.run.status", result.status)
        span.set_attribute("retinue.run.stop_reason", result.stop_reason)
        span.set_attribute("retinue.run.turns", result.turns)
        if result.status in ("error", "cancelled"):
            error_type = type(result.error).__name__ if result.error is not None else result.status
            span.set_attribute(ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, redact(str(result.error or result.status))[:500]))
        if self._capture_content and result.output is not None:
            output = result.output if isinstance(result.output, str) else dumps(result.output)
            span.set_attribute("retinue.run.output", redact(output))
        span.end(end_time=end_time)

    @staticmethod
    def _end_abandoned(span: Span, status: str, end_time: int) -> None:
        span.set_attribute(ERROR_TYPE, status)
        span.set_status(Status(StatusCode.ERROR, f"the run ended ({status}) before this finished"))
        span.end(end_time=end_time)


def _usage_attributes(usage: Usage) -> dict[str, Any]:
    attributes: dict[str, Any] = {INPUT_TOKENS: usage.input_tokens, OUTPUT_TOKENS: usage.output_tokens}
    if usage.cache_read_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
    if usage.cost_usd is not None:
        attributes["retinue.cost_usd"] = usage.cost_usd
    return attributes


def _request_content(request: ModelRequest) -> dict[str, Any]:
    return {
        SYSTEM_INSTRUCTIONS: redact(request.instructions),
        INPUT_MESSAGES: redact(dumps(request.messages)),
    }
