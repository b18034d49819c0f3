"""Tree state: a value kept once for a whole run tree, under a typed key its feature declares.

A feature that keeps something for every run of a tree (the decision record, the sandboxes of its runs)
declares a `TreeState`: a name saying what the value is, and how to make its first value from the root
run's context. `context.tree_state(key)` gives the value. The root and every sub-run see the same one;
separate top-level runs never do. The key carries the value's type, so the type checker knows it at every
use, and a mistyped key is an error at import, not a new, empty value found at run time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import assert_type

import pytest

from retinue import Agent, Message, RunContext, ToolResultsMessage, TreeState, UserMessage, tool
from retinue.architectures import run_sub_agent
from retinue.messages import ModelRequest, ToolCall
from retinue.testing.scripted import ScriptedModel, call

NOTES: TreeState[list[str]] = TreeState("notes taken by the agents of a tree", lambda root: [])


@tool
def take_note(context: RunContext, text: str) -> str:
    """Write a note every agent on this task can read."""
    notes = context.tree_state(NOTES)
    assert_type(notes, list[str])  # the key says what the value is: no cast, no isinstance (mypy checks this)
    notes.append(f"{context.agent.name}: {text}")
    return "Noted."


@tool
def read_notes(context: RunContext) -> str:
    """Read the notes taken so far."""
    return "\n".join(context.tree_state(NOTES)) or "No notes."


def tool_outputs(messages: list[Message]) -> list[str]:
    return [
        result.content for message in messages if isinstance(message, ToolResultsMessage) for result in message.results
    ]


def unrun_agent() -> Agent[str]:
    return Agent("lead", model=ScriptedModel([]))


# --- one value per tree ------------------------------------------------------------------------


async def test_a_sub_run_reads_and_adds_to_the_state_of_its_root() -> None:
    helper_model = ScriptedModel([[call("read_notes"), call("take_note", text="hotel booked")], "Booked."])
    helper = Agent("helper", model=helper_model, tools=[take_note, read_notes])

    @tool
    async def ask_helper(context: RunContext, call: ToolCall, task: str) -> str:
        """Hand a task to the helper."""
        result = await run_sub_agent(helper, task, context, call, kind="sub-agent")
        return str(result.output)

    lead_model = ScriptedModel(
        [
            call("take_note", text="flight on the 3rd"),
            call("ask_helper", task="Book a hotel that fits the notes."),
            call("read_notes"),
            "All booked.",
        ]
    )
    lead = Agent("lead", model=lead_model, tools=[take_note, read_notes, ask_helper])

    result = await lead.run("Plan my trip.")

    assert result.completed
    assert tool_outputs(helper_model.requests[-1].messages)[0] == "lead: flight on the 3rd", "the lead's note"
    assert tool_outputs(result.messages)[-1] == "lead: flight on the 3rd\nhelper: hotel booked", "and the helper's"


def test_every_run_of_a_tree_sees_the_same_value() -> None:
    root = unrun_agent().new_context()
    child = root.child(root.agent, tool_call_id="call_1")
    grandchild = child.child(root.agent, tool_call_id="call_2")

    grandchild.tree_state(NOTES).append("from deep down")

    assert root.tree_state(NOTES) == ["from deep down"]
    assert child.tree_state(NOTES) is root.tree_state(NOTES)


async def test_separate_runs_do_not_share_their_state() -> None:
    def note_the_city_then_read(request: ModelRequest) -> str | ToolCall:
        first = request.messages[0]
        assert isinstance(first, UserMessage)
        replies = {1: call("take_note", text=first.content), 3: call("read_notes")}
        return replies.get(len(request.messages), "done")

    agent = Agent("lead", model=ScriptedModel(note_the_city_then_read), tools=[take_note, read_notes])

    paris = await agent.run("Paris")
    rome = await agent.run("Rome")

    assert tool_outputs(paris.messages)[-1] == "lead: Paris"
    assert tool_outputs(rome.messages)[-1] == "lead: Rome", "not Paris's note: the same agent, another tree"


# --- how the first value is made ---------------------------------------------------------------


def test_the_first_value_is_made_once_per_tree_from_the_root_context() -> None:
    made_from: list[RunContext] = []

    def no_counts_yet(root: RunContext) -> dict[str, int]:
        made_from.append(root)
        return {}

    calls_by_run = TreeState("calls, by run id", no_counts_yet)
    assert_type(calls_by_run, TreeState[dict[str, int]])  # the type comes from the function that makes it
    root = unrun_agent().new_context()
    children = [root.child(root.agent, tool_call_id=f"call_{n}") for n in range(3)]

    for context in [*children, root, *children]:
        counts = context.tree_state(calls_by_run)
        counts[context.run_id] = counts.get(context.run_id, 0) + 1

    assert made_from == [root], "made once, and from the root, though a sub-run asked first"
    assert sorted(root.tree_state(calls_by_run).values()) == [1, 2, 2, 2]
    other_root = unrun_agent().new_context()
    other_root.tree_state(calls_by_run)
    assert made_from == [root, other_root], "another tree gets a value of its own"


def test_runs_asking_from_several_threads_at_once_get_one_value_made_once() -> None:
    # Sync tools run in threads, so the runs of a tree may ask for a new key at the same moment.
    made = 0

    def slowly_made(root: RunContext) -> list[str]:
        nonlocal made
        made += 1
        time.sleep(0.05)  # long enough for every other thread to ask meanwhile
        return []

    notes = TreeState("notes", slowly_made)
    root = unrun_agent().new_context()
    contexts = [root.child(root.agent, tool_call_id=f"call_{n}") for n in range(8)]
    all_asking = threading.Barrier(len(contexts))

    def ask(context: RunContext) -> list[str]:
        all_asking.wait()
        return context.tree_state(notes)

    with ThreadPoolExecutor(len(contexts)) as threads:
        values = list(threads.map(ask, contexts))

    assert made == 1
    assert all(value is root.tree_state(notes) for value in values)


# --- keys ------------------------------------------------------------------------------------


def test_keys_are_told_apart_by_identity_not_by_name() -> None:
    # Two features that chose the same name still keep two values: neither reads nor overwrites the other's.
    ours: TreeState[list[str]] = TreeState("notes taken by the agents of a tree", lambda root: [])
    root = unrun_agent().new_context()

    root.tree_state(NOTES).append("the tools' note")
    root.tree_state(ours).append("our note")

    assert root.tree_state(NOTES) == ["the tools' note"]
    assert root.tree_state(ours) == ["our note"]
    assert repr(ours) == "TreeState(name='notes taken by the agents of a tree')"


# --- types -----------------------------------------------------------------------------------


def test_the_type_checker_knows_the_type_of_every_value(tmp_path: Path) -> None:
    # mypy, with the project's settings, checks this file (its `assert_type` lines) and a tool that puts a
    # number among the notes: only that tool is wrong.
    pytest.importorskip("mypy")
    misuse = tmp_path / "misuse.py"
    misuse.write_text(
        textwrap.dedent(
            """
            from retinue import RunContext, TreeState

            NOTES: TreeState[list[str]] = TreeState("notes", lambda root: [])

            def note_a_number(context: RunContext) -> None:
                context.tree_state(NOTES).append(42)
            """
        )
    )
    repository = Path(__file__).resolve().parents[2]
    mypy = [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--cache-dir", str(tmp_path / "cache")]

    checked = subprocess.run([*mypy, __file__, str(misuse)], cwd=repository, capture_output=True, text=True)

    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert errors == [
        f'{misuse}:7: error: Argument 1 to "append" of "list" has incompatible type "int"; expected "str"  [arg-type]'
    ], checked.stdout
