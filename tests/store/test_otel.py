"""OpenTelemetry spans follow the GenAI semantic conventions and nest like the agent tree."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from retinue import Agent, tool
from retinue.observe import OTelRecorder
from retinue.redact import MASK
from retinue.testing.scripted import ScriptedModel, call

from .trace_samples import SampleRun

KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def _parent_of(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in spans if s.context is not None and s.context.span_id == span.parent.span_id)


async def test_a_multi_agent_run_becomes_one_trace_of_nested_genai_spans(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    result = await SampleRun().run(OTelRecorder(provider))
    spans = exporter.get_finished_spans()
    assert sorted(span.name for span in spans) == sorted(
        ["invoke_agent lead", "invoke_agent researcher"]
        + ["chat lead"] * 4
        + ["chat researcher"]
        + ["execute_tool get_weather", "execute_tool consult", "execute_tool book_flight"]
    )
    assert len({span.context.trace_id for span in spans if span.context is not None}) == 1

    (lead,) = _by_name(spans, "invoke_agent lead")
    assert lead.parent is None
    assert lead.attributes is not None
    assert lead.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert lead.attributes["gen_ai.agent.name"] == "lead"
    assert lead.attributes["gen_ai.agent.id"] == result.run_id
    assert lead.attributes["gen_ai.usage.input_tokens"] == result.total_usage.input_tokens

    for chat in _by_name(spans, "chat lead"):
        assert _parent_of(chat, spans) is lead
        assert chat.attributes is not None
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == "lead"
        assert chat.attributes["gen_ai.provider.name"] == "scripted"
        assert isinstance(chat.attributes["gen_ai.usage.input_tokens"], int)
        assert isinstance(chat.attributes["gen_ai.usage.output_tokens"], int)
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert chat.kind == trace.SpanKind.CLIENT
    first_chat = min(_by_name(spans, "chat lead"), key=lambda span: span.start_time or 0)
    assert first_chat.attributes is not None
    assert first_chat.attributes["gen_ai.response.finish_reasons"] == ("tool_use",)

    (consult,) = _by_name(spans, "execute_tool consult")
    assert _parent_of(consult, spans) is lead
    assert consult.attributes is not None
    assert consult.attributes["gen_ai.operation.name"] == "execute_tool"
    assert consult.attributes["gen_ai.tool.name"] == "consult"
    assert str(consult.attributes["gen_ai.tool.call.id"]).startswith("call_")

    (researcher,) = _by_name(spans, "invoke_agent researcher")
    assert _parent_of(researcher, spans) is consult
    (researcher_chat,) = _by_name(spans, "chat researcher")
    assert _parent_of(researcher_chat, spans) is researcher
    # Children sit inside their parents in time, as the events said.
    assert consult.start_time is not None and researcher.start_time is not None
    assert consult.start_time <= researcher.start_time
    assert researcher.end_time is not None and consult.end_time is not None
    assert researcher.end_time <= consult.end_time

    (booking,) = _by_name(spans, "execute_tool book_flight")
    assert [event.name for event in booking.events] == ["retinue.approval.requested", "retinue.approval.resolved"]


async def test_failures_set_an_error_status(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    @tool
    def flaky() -> str:
        """Always fails."""
        raise RuntimeError("disk full")

    agent = Agent("a", model=ScriptedModel([call("flaky"), RuntimeError("provider down")]), tools=[flaky])
    result = await agent.run("go", on_event=OTelRecorder(provider))
    assert result.status == "error"
    spans = exporter.get_finished_spans()
    (tool_span,) = _by_name(spans, "execute_tool flaky")
    assert tool_span.status.status_code == StatusCode.ERROR
    (run_span,) = _by_name(spans, "invoke_agent a")
    assert run_span.status.status_code == StatusCode.ERROR
    assert run_span.attributes is not None and run_span.attributes["error.type"] == "RuntimeError"
    # The model call that raised never got a response; it still ends, as an error, with its run.
    failed_chat = max(_by_name(spans, "chat test"), key=lambda span: span.start_time or 0)
    assert failed_chat.status.status_code == StatusCode.ERROR


async def test_content_is_left_out_unless_asked_for_and_then_redacted(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    await SampleRun(secret=KEY).run(OTelRecorder(provider))
    for span in exporter.get_finished_spans():
        assert span.attributes is not None
        assert "gen_ai.tool.call.arguments" not in span.attributes
        assert "gen_ai.input.messages" not in span.attributes
    exporter.clear()

    await SampleRun(secret=KEY).run(OTelRecorder(provider, capture_content=True))
    spans = exporter.get_finished_spans()
    every_value = " ".join(str(value) for span in spans for value in (span.attributes or {}).values())
    assert KEY not in every_value
    (booking,) = _by_name(spans, "execute_tool book_flight")
    assert booking.attributes is not None
    assert f"sk-ant-{MASK}" in str(booking.attributes["gen_ai.tool.call.arguments"])
    assert "ZX81" in str(booking.attributes["gen_ai.tool.call.result"])
    first_chat = min(_by_name(spans, "chat lead"), key=lambda span: span.start_time or 0)
    assert first_chat.attributes is not None
    assert str(first_chat.attributes["gen_ai.system_instructions"]).endswith(f"sk-ant-{MASK}.")


async def test_a_root_run_nests_under_the_callers_current_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as outer:
        await Agent("a", model=ScriptedModel(["hi"])).run("go", on_event=OTelRecorder(provider))
    spans: Any = exporter.get_finished_spans()
    (run_span,) = _by_name(spans, "invoke_agent a")
    assert run_span.parent is not None and run_span.parent.span_id == outer.get_span_context().span_id
