"""Scenarios for the Temporal tests: agent trees whose every effect and paid model call is a line in a file.

Run as a script, it is a worker process the tests kill with SIGKILL:

    python scenarios.py SCENARIO ADDRESS TASK_QUEUE WORKDIR

It serves the scenario's agents on TASK_QUEUE of the Temporal server at ADDRESS, prints "ready" once it
polls, and runs until it is killed. Every model request is a line of WORKDIR/served.log when the model
starts on it (it is paid from then on), and every effect of a write tool a line of WORKDIR/effects.log, each
written with O_APPEND, so a kill loses none. The models reply by what the request holds, not by a position
in a script, so a worker that takes a run over answers as the killed one would have.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from retinue import Agent, IdempotencyKey, RunContext, tool
from retinue.architectures import lead_agent
from retinue.messages import AssistantMessage, ModelRequest, ModelResponse, ToolCall, ToolResultsMessage
from retinue.models.base import TextSink
from retinue.testing.scripted import Reply, ScriptedModel

PROMPT = "Plan the trip."
HEARTBEAT = timedelta(seconds=1)  # a killed worker's calls move on after this


def append_line(path: Path, line: str) -> None:
    """One line, in one write with O_APPEND: whole even if the process is killed right after."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def without_keys(effects: list[str]) -> list[str]:
    """Effects without their idempotency keys, which derive from the run id (each run's own)."""
    return [line.rsplit(" ", 1)[0] if line.startswith(("book", "pay")) else line for line in effects]


async def eventually(check: Callable[[], Awaitable[Any]], *, seconds: float = 30.0) -> Any:
    """The first true value `check` gives, asking every few milliseconds (it reads a file or the server)."""
    async with asyncio.timeout(seconds):
        while not (value := await check()):  # noqa: ASYNC110 - what is awaited is outside this process
            await asyncio.sleep(0.01)
    return value


@dataclass(frozen=True)
class World:
    """What the tools act on (the worker's `deps`): the files of effects and of paid model calls."""

    workdir: Path
    pace: float = 1.0  # how slow its models and writes are; a kill lands mid-call at 1.0

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def write_seconds(self) -> float:
        return 0.15 * self.pace  # a write goes on this long after its effect

    @property
    def effects(self) -> Path:
        return self.workdir / "effects.log"

    @property
    def served(self) -> Path:
        return self.workdir / "served.log"

    @property
    def blobs(self) -> Path:
        return self.workdir / "blobs"


@tool(effect="read", run_in_thread=False)
async def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: What to look up.
    """
    await asyncio.sleep(0.01)
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


@tool(effect="write", idempotent=True, requires_approval=True)
async def pay(context: RunContext, key: IdempotencyKey, amount: int) -> str:
    """Pay an amount, once a person has approved it.

    Args:
        amount: How much, in euros.
    """
    world: World = context.deps
    if not any(line.endswith(f" {key}") for line in read_lines(world.effects)):
        append_line(world.effects, f"pay {amount} {key}")
    return f"paid {amount}"


class CountingModel(ScriptedModel):
    """A scripted model that notes every request in a file as it starts on it (from then on it is paid)."""

    def __init__(
        self,
        world: World,
        script: Callable[[ModelRequest], Reply],
        *,
        latency: float,
        name: str,
        waits_for: dict[int, str] | None = None,
    ) -> None:
        super().__init__(script, name=name, cost_per_call=0.001)
        self.world = world
        self.pause = latency * world.pace
        self.waits_for = waits_for or {}
        """Turn -> the start of an effect line that turn's reply waits for, so agents interleave in one order."""

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        turn = _turn(request)
        append_line(self.world.served, f"{self.name} {turn}")
        await asyncio.sleep(self.pause)
        if (effect := self.waits_for.get(turn)) is not None:
            await eventually(lambda: _has_effect(self.world, effect))
        return await super().request(request, on_text)


async def _has_effect(world: World, start: str) -> bool:
    return any(line.startswith(start) for line in read_lines(world.effects))


def _turn(request: ModelRequest) -> int:
    return sum(isinstance(message, AssistantMessage) for message in request.messages)


def results_text(request: ModelRequest) -> str:
    """Every tool result the model has read, one per line: the final answer, so that it shows any divergence."""
    lines = []
    for message in request.messages:
        if isinstance(message, ToolResultsMessage):
            lines.extend(f"{result.name}: {result.content}" for result in message.results)
    return "\n".join(lines)


Turns = list[list[tuple[str, dict[str, Any]]]]


def turns_script(turns: Turns) -> Callable[[ModelRequest], Reply]:
    def reply(request: ModelRequest) -> Reply:
        turn = _turn(request)
        if turn < len(turns):
            # The same ids every turn, as some providers do: nothing may be keyed by the call id alone.
            return [ToolCall(f"c{index}", name, arguments) for index, (name, arguments) in enumerate(turns[turn])]
        return results_text(request)

    return reply


SINGLE_TURNS: Turns = [
    [("lookup", {"key": "a"}), ("lookup", {"key": "bb"})],
    [("book", {"item": "flight"})],
    [("charge", {"item": "flight"})],
    [("lookup", {"key": "ccc"})],
    [("book", {"item": "hotel"}), ("charge", {"item": "hotel"})],
    [("book", {"item": "car"})],
]


def single(world: World, wrap: Callable[[Agent[Any]], Agent[Any]]) -> list[Agent[Any]]:
    model = CountingModel(world, turns_script(SINGLE_TURNS), latency=0.1, name="single")
    return [Agent("planner", model=model, tools=[lookup, book, charge])]


def approval(world: World, wrap: Callable[[Agent[Any]], Agent[Any]]) -> list[Agent[Any]]:
    turns: Turns = [[("lookup", {"key": "fare"})], [("pay", {"amount": 120})], [("book", {"item": "seat"})]]
    model = CountingModel(world, turns_script(turns), latency=0.05, name="approval")
    return [Agent("cashier", model=model, tools=[lookup, pay, book])]


def _specialist_script(steps: list[tuple[str, dict[str, Any]]], name: str) -> Callable[[ModelRequest], Reply]:
    def reply(request: ModelRequest) -> Reply:
        turn = _turn(request)
        if turn < len(steps):
            tool_name, arguments = steps[turn]
            return [ToolCall("s0", tool_name, arguments)]
        return f"{name} done:\n{results_text(request)}"

    return reply


def _lead_script(request: ModelRequest) -> Reply:
    if _turn(request) == 0:
        return [
            ToolCall("q0", "ask_flights", {"question": "Find a flight."}),
            ToolCall("q1", "ask_hotels", {"question": "Find a hotel."}),
        ]
    return results_text(request)


def team(world: World, wrap: Callable[[Agent[Any]], Agent[Any]]) -> list[Agent[Any]]:
    """A lead asking two specialists at once, a slow one and a fast one, both booking and deciding.

    `wrap` makes each specialist a temporal agent before the lead is built around it (or leaves it, for the
    run without Temporal); the lead is the first agent.
    """
    flights_steps = [("book", {"item": "flight"}), ("record_decision", {"topic": "city", "value": "Lyon"})]
    flights = Agent(
        "flights",
        instructions="You book flights.",
        # Its decision waits until the hotels specialist has made its own (and booked): the conflict note it
        # reads is then the same in every run, however a loaded machine schedules the two.
        model=CountingModel(
            world,
            _specialist_script(flights_steps, "flights"),
            latency=0.2,
            name="flights",
            waits_for={1: "book hotel"},
        ),
        tools=[book],
        description="Flights.",
    )
    hotels_steps = [("record_decision", {"topic": "city", "value": "Paris"}), ("book", {"item": "hotel"})]
    hotels = Agent(
        "hotels",
        instructions="You book hotels.",
        model=CountingModel(world, _specialist_script(hotels_steps, "hotels"), latency=0.02, name="hotels"),
        tools=[book],
        description="Hotels.",
    )
    flights, hotels = wrap(flights), wrap(hotels)
    lead_model = CountingModel(world, _lead_script, latency=0.02, name="lead")
    return [lead_agent("lead", specialists=[flights, hotels], model=lead_model), flights, hotels]


SCENARIOS: dict[str, Callable[[World, Callable[[Agent[Any]], Agent[Any]]], list[Agent[Any]]]] = {
    "single": single,
    "approval": approval,
    "team": team,
}


def agents_for(scenario: str, world: World, *, on_temporal: bool = True) -> list[Agent[Any]]:
    """The agents of `scenario`, the root first: as temporal agents, or as plain ones."""
    from retinue.temporal import temporal_agent

    return SCENARIOS[scenario](world, temporal_agent if on_temporal else (lambda agent: agent))


def runs_for(client: Any, scenario: str, world: World, task_queue: str) -> Any:
    from retinue.temporal import DirectoryBlobStore, TemporalRuns

    store = DirectoryBlobStore(world.blobs)
    agents = agents_for(scenario, world)
    return TemporalRuns(client, agents, store=store, task_queue=task_queue, heartbeat_timeout=HEARTBEAT)


async def serve(scenario: str, address: str, task_queue: str, workdir: Path) -> None:
    from temporalio.client import Client

    world = World(workdir)
    runs = runs_for(await Client.connect(address), scenario, world, task_queue)
    async with runs.worker(deps=world):
        print("ready", flush=True)
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    try:
        asyncio.run(serve(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
    finally:
        # Temporal's runtime can abort the interpreter as it exits; this process ends by a kill anyway.
        os._exit(1)
