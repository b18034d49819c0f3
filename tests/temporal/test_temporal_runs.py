"""Runs on a real Temporal dev server, served by a worker in this process: what a run gives back, what its
history costs, and the errors that say how to set a run up."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowFailureError

from retinue import Agent, Limits, tool
from retinue.architectures import lead_agent
from retinue.architectures.clones import clone_tool
from retinue.errors import ConfigurationError
from retinue.messages import AssistantMessage, ModelRequest, ToolCall, ToolResult, ToolResultsMessage, UserMessage
from retinue.temporal import DirectoryBlobStore, TemporalRuns, temporal_agent
from retinue.temporal.references import SentReferences
from retinue.testing import ScriptedModel
from retinue.window import DropToolOutputs

from .scenarios import PROMPT, World, agents_for, eventually, read_lines, results_text, runs_for, without_keys


@pytest.fixture
async def client(temporal_address: str) -> AsyncIterator[Client]:
    yield await Client.connect(temporal_address)


def queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def test_a_run_on_temporal_ends_as_the_same_run_without_it(client: Client, tmp_path: Path) -> None:
    plain_world, world = World(tmp_path / "plain", pace=0.02), World(tmp_path / "temporal", pace=0.02)
    (plain,) = agents_for("single", plain_world, on_temporal=False)
    expected = await plain.run(PROMPT, deps=plain_world)

    runs, run_id = runs_for(client, "single", world, queue()), f"same-{uuid.uuid4().hex}"
    async with runs.worker(deps=world):
        result = await runs.run("planner", PROMPT, run_id=run_id)
        assert await runs.start("planner", PROMPT, run_id=run_id) == run_id  # idempotent: it runs nothing more
        assert (await runs.result(run_id)).messages == result.messages

    assert result.completed and result.run_id == run_id
    assert result.output == expected.output
    assert result.messages == expected.messages
    assert (result.turns, result.total_usage) == (expected.turns, expected.total_usage)
    assert without_keys(read_lines(world.effects)) == without_keys(read_lines(plain_world.effects))
    assert len(read_lines(world.served)) == len(read_lines(plain_world.served)) == expected.turns


class Verdict(pydantic.BaseModel):
    city: str
    nights: int


async def test_a_structured_answer_comes_back_as_its_type(client: Client, tmp_path: Path) -> None:
    script = ScriptedModel([ToolCall("v", "final_result", {"city": "Lyon", "nights": 3})])
    agent = Agent("planner", model=script, output_type=Verdict)
    runs = TemporalRuns(client, [agent], store=DirectoryBlobStore(tmp_path), task_queue=queue())
    async with runs.worker():
        result = await runs.run(agent, "Where, and how long?")
    assert result.output == Verdict(city="Lyon", nights=3)


def _long_run_script(request: ModelRequest) -> Any:
    done = sum(isinstance(message, ToolResultsMessage) for message in request.messages)
    prompt = request.messages[0]
    assert isinstance(prompt, UserMessage)
    target = int(prompt.content)  # the prompt is how many pages to read
    return f"Read {done} pages." if done >= target else ToolCall("p", "read_page", {"page": done})


@tool(effect="read", run_in_thread=False)
def read_page(page: int) -> str:
    """Read a page.

    Args:
        page: Which page.
    """
    return f"page {page}: " + "lorem ipsum " * 170  # about 2 KB


async def history_bytes(client: Client, run_id: str) -> int:
    history = await client.get_workflow_handle(run_id).fetch_history()
    return History(events=history.events).ByteSize()


async def test_the_history_grows_with_the_run_not_with_its_square(client: Client, tmp_path: Path) -> None:
    agent = Agent("reader", model=ScriptedModel(_long_run_script), tools=[read_page])
    runs = TemporalRuns(client, [agent], store=DirectoryBlobStore(tmp_path), task_queue=queue())
    async with runs.worker():
        short, long = await asyncio.gather(runs.run(agent, "10"), runs.run(agent, "40"))
        sizes = {result.turns - 1: await history_bytes(client, result.run_id) for result in (short, long)}
    assert (short.output, long.output) == ("Read 10 pages.", "Read 40 pages.")
    assert len(long.messages) == 2 + 2 * 40  # the whole conversation, read back from the blob store
    # Four times the turns: about four times the history (each 2 KB result is in it once), not sixteen.
    assert 3.5 < sizes[40] / sizes[10] < 4.5, sizes
    # Per turn: the 2 KB result once, the response, and the events of two activities and two workflow tasks.
    assert sizes[40] / 40 < 6_000, sizes


async def test_a_specialist_that_is_not_a_temporal_agent_fails_the_run_saying_what_to_do(
    client: Client, tmp_path: Path
) -> None:
    specialist = Agent("flights", model=ScriptedModel(["A flight at 9."]), description="Flights.")
    lead_model = ScriptedModel([ToolCall("q", "ask_flights", {"question": "A flight?"}), "Done."])
    lead = lead_agent("lead", specialists=[specialist], model=lead_model, share_decisions=False)
    runs = TemporalRuns(client, [lead, specialist], store=DirectoryBlobStore(tmp_path), task_queue=queue())
    async with runs.worker():
        with pytest.raises(WorkflowFailureError) as failure:
            await runs.run(lead, "Book a flight.")
    message = str(failure.value.cause)
    assert "'flights' was about to call the model 'scripted:test' inside the workflow" in message
    assert "temporal_agent(specialist)" in message


async def test_an_approval_is_decided_by_a_signal_bound_to_the_call_and_its_arguments(
    client: Client, tmp_path: Path
) -> None:
    world = World(tmp_path, pace=0.02)
    runs = runs_for(client, "approval", world, queue())
    async with runs.worker(deps=world):
        run_id = await runs.start("cashier", PROMPT)
        (request,) = await eventually(lambda: runs.pending_approvals(run_id))
        assert (request.tool, request.arguments, request.uncertain) == ("pay", {"amount": 120}, False)
        forged = dataclasses.replace(request, arguments={"amount": 9000})
        await runs.approve(run_id, forged)  # a decision for other arguments is dropped
        await asyncio.sleep(0.3)
        assert await runs.pending_approvals(run_id) == [request]
        await runs.approve(run_id, request, approved=False, reason="too dear")
        result = await runs.result(run_id)
    assert result.completed
    assert "Not done: the call to 'pay' was not approved (too dear)" in str(result.output)
    assert not any(line.startswith("pay") for line in read_lines(world.effects))


def test_the_workflow_sends_only_what_the_store_does_not_hold() -> None:
    sent = SentReferences()
    prompt, answer = UserMessage("go"), AssistantMessage(tool_calls=[ToolCall("c", "read_page", {"page": 1})])
    results = ToolResultsMessage([ToolResult("c", "read_page", "page 1")])
    assert sent.conversation([prompt]) == (None, [prompt])
    sent.remember([prompt, answer], "head-1")
    assert sent.conversation([prompt, answer, results]) == ("head-1", [results])
    # A conversation rewritten by a context policy holds new objects: sent whole again, never half-matched.
    compacted = [UserMessage("go"), answer, results]
    assert sent.conversation(compacted) == (None, compacted)


@tool(effect="read", timeout=0.3, run_in_thread=False)
async def slow_lookup(key: str) -> str:
    """Look a key up, slowly.

    Args:
        key: What to look up.
    """
    await asyncio.sleep(5)
    return "too late"


def _cloning_script(request: ModelRequest) -> Any:
    prompt = request.messages[0]
    assert isinstance(prompt, UserMessage)
    if "Summary of the conversation so far" in prompt.content:  # a clone, answering its own task
        return f"clone did {prompt.content.rsplit(': ', 1)[1]}"
    if not request.tools:  # the summary call made for the clones
        return "the master looked a key up"
    turn = sum(isinstance(message, ToolResultsMessage) for message in request.messages)
    if turn == 0:
        return ToolCall("a", "slow_lookup", {"key": "k"})
    if turn == 1:
        return [ToolCall("b", "spawn_clone", {"task": "north"}), ToolCall("c", "spawn_clone", {"task": "south"})]
    return results_text(request)


async def test_clones_and_a_tool_timeout_come_out_as_without_temporal(client: Client, tmp_path: Path) -> None:
    master = Agent("master", model=ScriptedModel(_cloning_script), tools=[slow_lookup, clone_tool(inherit="summary")])
    expected = await master.run("Split the work.")
    runs = TemporalRuns(client, [master], store=DirectoryBlobStore(tmp_path), task_queue=queue())
    async with runs.worker():
        result = await runs.run(master, "Split the work.")
    assert result.output == expected.output
    assert "slow_lookup: Error: 'slow_lookup' did not finish within 0.3 seconds" in str(result.output)
    assert "spawn_clone: clone did north\nspawn_clone: clone did south" in str(result.output)
    assert result.total_usage.requests == expected.total_usage.requests == 6  # 3 turns, 1 summary, 2 clones


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"limits": Limits(max_wall_seconds=60)}, "execution_timeout"),
        ({"context_policy": DropToolOutputs()}, "offload_over_chars=None and keep_dropped=False"),
    ],
)
def test_an_agent_that_cannot_be_replayed_on_another_worker_is_refused(options: dict[str, Any], hint: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(hint)):
        temporal_agent(Agent("refused", model=ScriptedModel([]), **options))


def test_retinue_imports_no_temporal_and_the_extra_names_its_pip_install() -> None:
    check = (
        "import sys, retinue, retinue.journal, retinue.architectures\n"
        "assert 'temporalio' not in sys.modules, 'import retinue loaded temporalio'\n"
        "sys.modules['temporalio'] = None  # as if the extra were not installed\n"
        "try:\n    import retinue.temporal\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    shown = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    assert shown.startswith("MissingDependencyError")
    assert "pip install 'retinue[temporal]'" in shown
