"""Durable-run scenarios for the kill tests: agents whose every effect and model call is counted in files.

Run as a script, it is the child process that gets killed:

    python durable_scenarios.py SCENARIO WORKDIR [POSTGRES_URL]

It prints "ready" once imported, then starts the run `RUN_ID` of SCENARIO durably, journalled in
WORKDIR/journal.sqlite or in the Postgres database at POSTGRES_URL (in the "approval" scenario, calls that
need approval wait for a decision: the child ends with the run "waiting"). Every model request served is a
line of WORKDIR/served.log and every effect of a write tool a line of WORKDIR/effects.log, each written with
O_APPEND before the call returns, so a kill -9 loses none of them. The models reply by what the request
holds (not by a position in a script), so a resumed process, whose model starts afresh, answers as the
killed one would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retinue import Agent, IdempotencyKey, RunContext, tool
from retinue.approvals import Approver, decide_later
from retinue.architectures import lead_agent
from retinue.journal import Journal, SQLiteJournal
from retinue.messages import AssistantMessage, ModelRequest, ModelResponse, ToolCall, ToolResultsMessage
from retinue.models.base import TextSink
from retinue.result import RunResult
from retinue.testing.scripted import Reply, ScriptedModel

RUN_ID = "durable-run-1"
PROMPT = "Plan the trip."
POSTGRES_LEASE_SECONDS = 0.5  # short: a resume after kill -9 waits for the dead child's lease to run out


def append_line(path: Path, line: str) -> None:
    """One line, in one write with O_APPEND: whole even if the process is killed right after."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@dataclass(frozen=True)
class World:
    """What the tools act on (passed as `deps`): the effects file, and how long a write takes."""

    workdir: Path
    write_seconds: float = 0.01
    journal_url: str | None = None  # a Postgres journal's; else the SQLite one in the workdir

    @property
    def effects(self) -> Path:
        return self.workdir / "effects.log"

    @property
    def served(self) -> Path:
        return self.workdir / "served.log"

    @property
    def journal(self) -> Path:
        return self.workdir / "journal.sqlite"

    def open_journal(self) -> Journal:
        if self.journal_url is not None:
            from retinue.journal import PostgresJournal

            return PostgresJournal(self.journal_url, lease_seconds=POSTGRES_LEASE_SECONDS)
        return SQLiteJournal(self.journal)


@tool(effect="read", run_in_thread=False)
async def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: What to look up.
    """
    await asyncio.sleep(0.005)
    return f"{key} is {len(key) * 7}"


@tool(effect="write", idempotent=True)
async def book(context: RunContext, key: IdempotencyKey, item: str) -> str:
    """Book an item; booking it again with the same key changes nothing.

    Args:
        item: What to book.
    """
    world: World = context.deps
    if not any(line.endswith(f" {key}") for line in read_lines(world.effects)):
        append_line(world.effects, f"book {item} {key}")
    await asyncio.sleep(world.write_seconds)
    return f"booked {item}"


@tool(effect="write")
async def charge(context: RunContext, item: str) -> str:
    """Charge the card for an item (not idempotent: each call charges again).

    Args:
        item: What to pay for.
    """
    world: World = context.deps
    append_line(world.effects, f"charge {item}")
    await asyncio.sleep(world.write_seconds)
    return f"charged {item}"


@tool(effect="write", requires_approval=True)
async def pay(context: RunContext, item: str) -> str:
    """Pay for an item, once someone approves it (not idempotent: each call pays again).

    Args:
        item: What to pay for.
    """
    world: World = context.deps
    append_line(world.effects, f"pay {item}")
    await asyncio.sleep(world.write_seconds)
    return f"paid {item}"


class CountingModel(ScriptedModel):
    """A scripted model that notes every request it serves in a file, before it answers."""

    def __init__(self, world: World, script: Callable[[ModelRequest], Reply], *, latency: float, name: str) -> None:
        super().__init__(script, name=name, latency=latency, cost_per_call=0.001)
        self.world = world

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        response = await super().request(request, on_text)
        append_line(self.world.served, f"{self.name} {_turn(request)}")
        return response


def _turn(request: ModelRequest) -> int:
    return sum(isinstance(message, AssistantMessage) for message in request.messages)


def _results_text(request: ModelRequest) -> str:
    """Every tool result the model has read, one per line: the final answer, so that it shows any divergence."""
    lines = []
    for message in request.messages:
        if isinstance(message, ToolResultsMessage):
            lines.extend(f"{result.name}: {result.content}" for result in message.results)
    return "\n".join(lines)


def _turns_script(turns: list[list[tuple[str, dict[str, Any]]]]) -> Callable[[ModelRequest], Reply]:
    def reply(request: ModelRequest) -> Reply:
        turn = _turn(request)
        if turn < len(turns):
            # The same ids every turn, as some providers do: entries must be keyed by turn as well.
            return [ToolCall(f"c{index}", name, arguments) for index, (name, arguments) in enumerate(turns[turn])]
        return _results_text(request)

    return reply


SINGLE_TURNS: list[list[tuple[str, dict[str, Any]]]] = [
    [("lookup", {"key": "a"}), ("lookup", {"key": "bb"})],
    [("book", {"item": "flight"})],
    [("charge", {"item": "flight"})],
    [("lookup", {"key": "ccc"})],
    [("book", {"item": "hotel"}), ("charge", {"item": "hotel"})],
    [("book", {"item": "car"})],
]

CUT_OFF_TURNS: list[list[tuple[str, dict[str, Any]]]] = [
    [("book", {"item": "car"})],
    [("charge", {"item": "car"})],
]


def single_agent(world: World) -> Agent[Any]:
    model = CountingModel(world, _turns_script(SINGLE_TURNS), latency=0.01, name="single")
    return Agent("planner", model=model, tools=[lookup, book, charge])


def cut_off_agent(world: World) -> Agent[Any]:
    model = CountingModel(world, _turns_script(CUT_OFF_TURNS), latency=0.005, name="cut-off")
    return Agent("cut-off", model=model, tools=[book, charge])


def _specialist_script(steps: list[tuple[str, dict[str, Any]]], name: str) -> Callable[[ModelRequest], Reply]:
    def reply(request: ModelRequest) -> Reply:
        turn = _turn(request)
        if turn < len(steps):
            tool_name, arguments = steps[turn]
            return [ToolCall("s0", tool_name, arguments)]
        return f"{name} done:\n{_results_text(request)}"

    return reply


def _lead_script(request: ModelRequest) -> Reply:
    if _turn(request) == 0:
        return [
            ToolCall("q0", "ask_flights", {"question": "Find a flight."}),
            ToolCall("q1", "ask_hotels", {"question": "Find a hotel."}),
        ]
    return _results_text(request)


def team(world: World) -> Agent[Any]:
    """A lead asking two specialists at once: a slow one and a fast one, both booking and deciding."""
    flights = Agent(
        "flights",
        instructions="You book flights.",
        model=CountingModel(
            world,
            _specialist_script(
                [("book", {"item": "flight"}), ("record_decision", {"topic": "city", "value": "Lyon"})], "flights"
            ),
            latency=0.03,
            name="flights",
        ),
        tools=[book],
        description="Flights.",
    )
    hotels = Agent(
        "hotels",
        instructions="You book hotels.",
        model=CountingModel(
            world,
            _specialist_script(
                [("record_decision", {"topic": "city", "value": "Paris"}), ("book", {"item": "hotel"})], "hotels"
            ),
            latency=0.003,
            name="hotels",
        ),
        tools=[book],
        description="Hotels.",
    )
    lead_model = CountingModel(world, _lead_script, latency=0.005, name="lead")
    return lead_agent("lead", specialists=[flights, hotels], model=lead_model)


APPROVAL_TURNS: list[list[tuple[str, dict[str, Any]]]] = [
    [("lookup", {"key": "a"}), ("pay", {"item": "flight"})],
    [("book", {"item": "hotel"})],
    [("pay", {"item": "hotel"}), ("lookup", {"key": "bb"})],
]


def approval_agent(world: World) -> Agent[Any]:
    """Two turns whose payments wait for a person, the first beside a lookup, the second after a booking."""
    model = CountingModel(world, _turns_script(APPROVAL_TURNS), latency=0.01, name="approval")
    return Agent("payer", model=model, tools=[lookup, book, pay])


def changed_single_agent(world: World) -> Agent[Any]:
    """The single agent with other instructions: not the definition its runs were started with."""
    return single_agent(world).override(instructions="Plan the trip, cheaply.")


SCENARIOS: dict[str, Callable[[World], Agent[Any]]] = {
    "single": single_agent,
    "cut-off": cut_off_agent,
    "team": team,
    "approval": approval_agent,
}

# Who approves in each scenario's child: nobody is there in "approval", so its calls wait for a decision.
APPROVERS: dict[str, Approver] = {"approval": decide_later()}


def world_for(scenario: str, workdir: Path, journal_url: str | None = None) -> World:
    return World(workdir, write_seconds=0.4 if scenario == "cut-off" else 0.01, journal_url=journal_url)


async def start(scenario: str, world: World, journal: Journal | None = None) -> RunResult[Any]:
    agent = SCENARIOS[scenario](world)
    with contextlib.closing(journal or world.open_journal()) as opened:
        return await agent.start(PROMPT, journal=opened, run_id=RUN_ID, deps=world, approver=APPROVERS.get(scenario))


def main() -> None:
    scenario, workdir = sys.argv[1], Path(sys.argv[2])
    world = world_for(scenario, workdir, sys.argv[3] if len(sys.argv) > 3 else None)
    journal = world.open_journal()  # before "ready": the kill points span the run, not connecting
    print("ready", flush=True)
    result = asyncio.run(start(scenario, world, journal))
    print(result.status, flush=True)


if __name__ == "__main__":
    main()
