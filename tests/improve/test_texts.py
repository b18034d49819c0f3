"""The texts of an agent tree by path: read from the travel app's three architectures, replaced, and really sent."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from retinue import Agent
from retinue.architectures import clone_tool, lead_agent, specialist
from retinue.errors import ConfigurationError
from retinue.improve import text_sites, tree_texts, with_texts
from retinue.messages import ModelRequest, ToolResultsMessage, UserMessage
from retinue.testing.scripted import Reply, ScriptedModel, call
from retinue_travel.assistant import ARCHITECTURES, LEAD_INSTRUCTIONS, MASTER_INSTRUCTIONS, build_assistant
from retinue_travel.world import TravelWorld


@pytest.fixture
def world() -> Iterator[TravelWorld]:
    world = TravelWorld(seed=0)
    yield world
    world.close()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_text_round_trips_and_each_can_be_replaced_alone(world: TravelWorld, architecture: str) -> None:
    agent = build_assistant(architecture, world)
    texts = tree_texts(agent)

    assert with_texts(agent, texts) is agent  # nothing to change: the very same tree
    rewritten = with_texts(agent, {path: f"{text} [edited]" for path, text in texts.items()})
    assert tree_texts(rewritten) == {path: f"{text} [edited]" for path, text in texts.items()}
    assert tree_texts(agent) == texts  # the original is untouched
    for path in texts:
        one = tree_texts(with_texts(agent, {path: "new"}))
        assert one == {**texts, path: "new"}


def test_the_lead_tree_lists_the_specialists_and_their_tools_by_path(world: TravelWorld) -> None:
    texts = tree_texts(build_assistant("lead", world))

    assert texts["travel-lead.instructions"] == LEAD_INSTRUCTIONS
    assert "travel-lead.tool.ask_flights" in texts and "travel-lead.tool.book_flight" in texts
    assert texts["travel-lead/flights.instructions"].startswith("You are the flights specialist.")
    assert {"travel-lead/flights.tool.search_flights", "travel-lead/hotels.tool.search_hotels"} <= set(texts)


def test_the_clones_and_script_trees_are_one_agent_with_its_tools(world: TravelWorld) -> None:
    clones = text_sites(build_assistant("clones", world))
    script = tree_texts(build_assistant("script", world))

    assert {site.agent_path for site in clones} == {"travel-master"}
    assert [site.tool for site in clones if site.kind == "tool"][-1] == "spawn_clone"
    assert set(script) >= {"travel-scripter.instructions", "travel-scripter.tool.run_python"}
    assert "host_api.book_flight" in script["travel-scripter.tool.run_python"]  # host APIs are described there


async def test_a_specialist_runs_with_its_new_instructions_and_the_lead_shows_its_new_tool_text() -> None:
    seen: dict[str, ModelRequest] = {}

    def reply(request: ModelRequest) -> Reply:
        if request.instructions.startswith("Lead"):
            seen["lead"] = request
            if isinstance(request.messages[-1], ToolResultsMessage):
                return "Flight XY1 it is."
            return call("ask_flights", question="A flight to Oslo?")
        seen["flights"] = request
        return "XY1 at 9:00."

    model = ScriptedModel(reply)
    flights = Agent(name="flights", instructions="Old flights text.", description="Ask about flights.", model=model)
    lead = lead_agent("lead", specialists=[flights], instructions="Lead the trip.", model=model)
    patched = with_texts(
        lead,
        {
            "lead.instructions": "Lead the trip, in short.",
            "lead.tool.ask_flights": "The flights expert.",
            "lead/flights.instructions": "New flights text.",
        },
    )

    result = await patched.run("Book me a flight to Oslo.")

    assert result.output == "Flight XY1 it is."
    assert seen["lead"].instructions == "Lead the trip, in short."
    assert [schema.description for schema in seen["lead"].tools if schema.name == "ask_flights"] == [
        "The flights expert."
    ]
    assert seen["flights"].instructions == "New flights text."
    assert tree_texts(lead)["lead/flights.instructions"] == "Old flights text."  # the original tree is untouched


async def test_clones_copy_the_masters_new_instructions() -> None:
    instructions: list[str] = []

    def reply(request: ModelRequest) -> Reply:
        instructions.append(request.instructions)
        first = request.messages[0]
        if isinstance(first, UserMessage) and first.content == "Plan it." and len(request.messages) == 1:
            return call("spawn_clone", task="Find a hotel.")
        return "Done."

    master = Agent(name="master", instructions=MASTER_INSTRUCTIONS, model=ScriptedModel(reply), tools=[clone_tool()])
    patched = with_texts(master, {"master.instructions": "New master text: use a clone."})

    result = await patched.run("Plan it.")

    assert result.completed
    assert instructions == ["New master text: use a clone."] * 3  # the master, its clone, the master again


def test_an_unknown_path_is_refused_with_the_paths_there_are() -> None:
    agent = Agent(name="solo", instructions="Hi.")

    with pytest.raises(
        ConfigurationError, match=r"no text at 'solo\.tool\.nope'; its texts are at: solo\.instructions"
    ):
        with_texts(agent, {"solo.tool.nope": "x"})


def test_two_different_agents_at_one_path_are_refused() -> None:
    first = specialist(Agent(name="helper", instructions="One."))
    second = dataclasses.replace(specialist(Agent(name="helper", instructions="Two.")), name="ask_helper_too")
    lead = Agent(name="lead", tools=[first, second])

    with pytest.raises(ConfigurationError, match="two different texts of this agent tree have the path 'lead/helper"):
        tree_texts(lead)
