"""Pinned definitions: a durable run goes on only with the agents it was started with, unless told otherwise.

In one process on both backends, then kill -9: a run killed at seeded points and resumed with changed
instructions is refused, and goes on, with nothing done twice, once the change is allowed.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from retinue import Agent, tool
from retinue.architectures import lead_agent
from retinue.errors import DefinitionChangedError, RunLeasedError
from retinue.journal import submit_run, work
from retinue.journal.definition import changes_between, fingerprint
from retinue.messages import ToolCall
from retinue.testing.postgres_cluster import PostgresCluster
from retinue.testing.scripted import ScriptedModel, call

from .conftest import Backend
from .durable_scenarios import PROMPT, RUN_ID, World, changed_single_agent, single_agent, world_for
from .kill_sweep import AtKill, Child, baseline, check_against_baseline, refuse_uncertain
from .test_journal import Gate, cut_off_inside, gated


def team(gate: Gate, flights_instructions: str = "You book flights.") -> Agent[Any]:
    flights = Agent(
        "flights",
        instructions=flights_instructions,
        model=ScriptedModel([call("pay", item="flight"), "booked"]),
        tools=[gated(gate, idempotent=True)],
        description="Flights.",
    )
    hotels = Agent("hotels", instructions="You find hotels.", model=ScriptedModel(["a hotel"]), description="Hotels.")
    asks = [ToolCall("q0", "ask_flights", {"question": "Book."}), ToolCall("q1", "ask_hotels", {"question": "?"})]
    return lead_agent("lead", specialists=[flights, hotels], model=ScriptedModel([asks, "done"]))


async def test_resuming_with_a_specialist_instructed_otherwise_is_refused_naming_what_changed(backend: Backend) -> None:
    gate = Gate()
    with backend.open() as journal:
        await cut_off_inside(gate, team(gate).start("go", journal=journal, run_id="r"))
    gate.release.set()
    with backend.open() as journal:
        with pytest.raises(DefinitionChangedError, match="the instructions of agent 'flights' changed") as refused:
            await team(Gate(0), "You book cheap flights.").resume("r", journal=journal)
        assert refused.value.changes == ("the instructions of agent 'flights' changed",)
        assert "allow_changed_definition=True" in str(refused.value)
        run = journal.get_run("r")
        assert run is not None and run.lease_owner is None, "refused before it took the run"
        result = await team(Gate(0)).resume("r", journal=journal)  # the definition it started with
    assert result.completed and result.output == "done"


async def test_a_changed_tool_schema_description_or_model_is_named(backend: Backend) -> None:
    @tool(effect="read")
    def look(key: str) -> str:
        """Look a key up."""
        return key

    @tool(effect="read", name="look")
    def look_harder(key: str, depth: int = 1) -> str:
        """Look a key up, deeply."""
        return key

    agent = Agent("a", model=ScriptedModel([call("look", key="x"), "done"]), tools=[look])
    with backend.open() as journal:
        await agent.start("go", journal=journal, run_id="r")
        changed = agent.override(tools=[look_harder], model=ScriptedModel([], name="other"))
        with pytest.raises(DefinitionChangedError) as refused:
            await changed.resume("r", journal=journal)
    assert refused.value.changes == (
        "the model of agent 'a' changed (scripted:test -> scripted:other)",
        "tool 'look' schema changed (agent 'a')",
        "tool 'look' description changed (agent 'a')",
    )


async def test_an_allowed_change_is_recorded_and_pins_the_new_definition(backend: Backend) -> None:
    gate = Gate()
    with backend.open() as journal:
        await cut_off_inside(gate, team(gate).start("go", journal=journal, run_id="r"))
    gate.release.set()
    with backend.open() as journal:
        changed = team(Gate(0), "You book cheap flights.")
        result = await changed.resume("r", journal=journal, allow_changed_definition=True)
        assert result.completed
        first, second = journal.definition_pins("r")
        assert first.changes == () and second.changes == ("the instructions of agent 'flights' changed",)
        assert second.definition == fingerprint(changed)
        assert (await team(Gate(0), "You book cheap flights.").resume("r", journal=journal)).completed
        with pytest.raises(DefinitionChangedError, match="the instructions of agent 'flights' changed"):
            await team(Gate(0)).resume("r", journal=journal)  # pinned to the new one now


async def test_a_queued_run_is_pinned_by_the_worker_that_first_runs_it(backend: Backend) -> None:
    agent = Agent("a", instructions="Be brief.", model=ScriptedModel(["ok"]))
    with backend.open() as journal:
        await submit_run(journal, agent, "go", run_id="r")
        assert journal.pinned_definition("r") is None  # queued by name: no definition yet
    assert await work(backend.location, agent, drain=True) == 1
    with backend.open() as journal:
        pin = journal.pinned_definition("r")
    assert pin is not None and pin.definition == fingerprint(agent)


def test_fingerprints_are_equal_for_equal_definitions_and_say_what_differs() -> None:
    gate = Gate(0)
    assert fingerprint(team(gate)) == fingerprint(team(Gate(0)))  # built twice, defined alike
    changed = fingerprint(team(gate, "Other."))
    assert changes_between(fingerprint(team(gate)), changed) == ("the instructions of agent 'flights' changed",)
    without_hotels = lead_agent("lead", specialists=[], model=ScriptedModel([]))
    changes = changes_between(fingerprint(team(gate)), fingerprint(without_hotels))
    assert "agent 'hotels' is gone" in changes and "tool 'ask_hotels' was removed from agent 'lead'" in changes


# -- kill -9 ------------------------------------------------------------------------------------------

TRIALS = 3
POSTGRES_TRIALS = 2


async def resume_changed(world: World, *, allow: bool, asked: list[Any]) -> Any:
    agent = changed_single_agent(world)
    with world.open_journal() as journal:
        while True:
            try:
                return await agent.start(
                    PROMPT,
                    journal=journal,
                    run_id=RUN_ID,
                    deps=world,
                    approver=refuse_uncertain(asked),
                    allow_changed_definition=allow,
                )
            except RunLeasedError as held:  # on Postgres, until the killed child's lease has run out
                await asyncio.sleep(max(0.0, held.expires_at - time.time()) + 0.01)


async def changed_definition_trials(tmp_path: Path, trials: int, journal_url_for: Any) -> int:
    expected = await baseline("single", tmp_path / "baseline", journal_url_for("baseline"))
    chooser = random.Random("changed-definition-kills")
    refused = 0
    for trial in range(trials):
        world = world_for("single", tmp_path / f"trial-{trial}", journal_url_for(f"trial_{trial}"))
        world.workdir.mkdir()
        Child("single", world).kill_after(chooser.uniform(0.0, expected.seconds * 1.1))
        at_kill = AtKill.of(world)
        with world.open_journal() as journal:
            started = journal.get_run(RUN_ID) is not None
        if started:
            with pytest.raises(DefinitionChangedError, match="the instructions of agent 'planner' changed"):
                await resume_changed(world, allow=False, asked=[])
            refused += 1
        asked: list[Any] = []
        result = await resume_changed(world, allow=True, asked=asked)
        check_against_baseline(result, world, expected, at_kill, asked)
        with world.open_journal() as journal:
            pins = journal.definition_pins(RUN_ID)
        assert pins[-1].definition == fingerprint(changed_single_agent(world))
        assert [pin.changes for pin in pins[1:]] == (
            [("the instructions of agent 'planner' changed",)] if started else []
        )
    return refused


async def test_killed_and_resumed_with_changed_instructions_the_run_is_refused_until_allowed(tmp_path: Path) -> None:
    assert await changed_definition_trials(tmp_path, TRIALS, lambda name: None) >= 1


async def test_killed_and_resumed_with_changed_instructions_on_postgres(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    def database(name: str) -> str:
        return postgres_cluster.create_database(f"definitions_{name}")

    assert await changed_definition_trials(tmp_path, POSTGRES_TRIALS, database) >= 1


def test_the_single_scenario_changed_differs_only_in_its_instructions(tmp_path: Path) -> None:
    world = world_for("single", tmp_path)
    assert changes_between(fingerprint(single_agent(world)), fingerprint(changed_single_agent(world))) == (
        "the instructions of agent 'planner' changed",
    )
