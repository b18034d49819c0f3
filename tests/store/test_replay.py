"""Replaying a recorded model call, as recorded or edited, and diffing the answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from retinue.errors import ConfigurationError
from retinue.messages import AssistantMessage, ModelRequest, ToolCall
from retinue.store import ModelCallRecord, RunStore, replay_call
from retinue.testing.scripted import Reply, ScriptedModel

from .trace_samples import SampleRun


@pytest.fixture
async def recorded(tmp_path: Path) -> Any:
    with RunStore(tmp_path / "runs.sqlite") as store:
        sample = SampleRun()
        result = await sample.run(store.recorder())
        store.flush()
        tree = store.get_run_tree(result.run_id)
        assert tree is not None
        calls = [step for step in tree.steps if isinstance(step, ModelCallRecord)]
        yield store, sample, calls


async def test_a_replay_sends_the_recorded_request_exactly(recorded: Any) -> None:
    store, sample, calls = recorded
    replayer = ScriptedModel([ToolCall("other_id", "get_weather", {"city": "Paris"})], name="replayer")
    result = await replay_call(store, calls[0].id, model=replayer)
    assert replayer.requests == [sample.lead_model.requests[0]]
    assert result.model_id == "scripted:replayer"
    # Same tool and arguments; the call id differs, as it always does, and is not a difference.
    assert result.diff == "" and not result.changed


async def test_a_replay_diffs_the_new_answer_against_the_recorded_one(recorded: Any) -> None:
    store, _sample, calls = recorded
    replayer = ScriptedModel([AssistantMessage(text="I would rather ask first.\nWhich dates?")])
    result = await replay_call(store, calls[0].id, model=replayer)
    assert result.changed
    lines = result.diff.splitlines()
    assert lines[:2] == ["--- recorded", "+++ replayed"]
    assert '-→ get_weather({"city": "Paris"})' in lines
    assert "+I would rather ask first." in lines and "+Which dates?" in lines
    assert "-[stop: tool_use]" in lines and "+[stop: end_turn]" in lines


async def test_a_replay_can_change_the_instructions_and_tool_descriptions(recorded: Any) -> None:
    store, sample, calls = recorded
    seen: list[ModelRequest] = []

    def reply(request: ModelRequest) -> Reply:
        seen.append(request)
        return "ok"

    await replay_call(
        store,
        calls[1].id,
        model=ScriptedModel(reply),
        instructions="Only answer in French.",
        tool_descriptions={"consult": "Never use this."},
    )
    (sent,) = seen
    original = sample.lead_model.requests[1]
    assert sent.instructions == "Only answer in French."
    assert sent.messages == original.messages
    descriptions = {schema.name: schema.description for schema in sent.tools}
    assert descriptions["consult"] == "Never use this."
    assert descriptions["get_weather"] == next(s.description for s in original.tools if s.name == "get_weather")

    with pytest.raises(ConfigurationError, match="no tool named 'nope'"):
        await replay_call(store, calls[1].id, model=ScriptedModel(["x"]), tool_descriptions={"nope": "?"})


async def test_a_replay_resolves_model_strings_and_the_recorded_model(recorded: Any) -> None:
    store, _sample, calls = recorded
    asked: list[str] = []

    def resolve(spec: str) -> ScriptedModel:
        asked.append(spec)
        return ScriptedModel(["fine"], name=spec.replace(":", "-"))

    await replay_call(store, calls[0].id, resolve=resolve)
    await replay_call(store, calls[0].id, model="openai:gpt-4.1", resolve=resolve)
    assert asked == ["scripted:lead", "openai:gpt-4.1"]
    with pytest.raises(LookupError, match="no recorded model call 999"):
        await replay_call(store, 999, resolve=resolve)
