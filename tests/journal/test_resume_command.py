"""`retinue resume RUN_ID --agent MODULE:NAME`: a durable run resumed from the command line."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from retinue.cli import main

from .conftest import Backend

AGENT_MODULE = '''
import os

from retinue import Agent, tool
from retinue.testing.scripted import ScriptedModel, call

@tool(effect="read")
def look(key: str) -> str:
    """Look a key up."""
    return key.upper()

@tool(requires_approval=True)
def pay(item: str) -> str:
    """Pay for an item."""
    return "paid " + item

def make_agent():
    instructions = os.environ.get("LOOKER_INSTRUCTIONS", "")
    model = ScriptedModel([call("look", key="x"), "found X"])
    return Agent("looker", instructions=instructions, model=model, tools=[look])

def make_payer():
    return Agent("payer", model=ScriptedModel([call("pay", item="car"), "paid"]), tools=[pay])

agent = make_agent()
'''


@pytest.fixture
def agent_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "durable_cli_agents.py").write_text(textwrap.dedent(AGENT_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "durable_cli_agents"


def test_resume_replays_a_run_and_prints_its_output(
    backend: Backend, agent_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import durable_cli_agents  # type: ignore[import-not-found]

    journal = backend.location  # a file, or a postgresql:// URL
    first = asyncio.run(durable_cli_agents.make_agent().start("find x", journal=journal, run_id="run-7"))
    assert first.completed

    # A fresh agent from the factory: its script is unused, so any model call would fail the run.
    code = main(["resume", "run-7", "--agent", f"{agent_module}:make_agent", "--journal", str(journal)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == "found X\n"
    assert "2 replayed from the journal" in captured.err


def test_resume_says_what_is_wrong_in_one_line(
    tmp_path: Path, agent_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.sqlite"
    assert main(["resume", "run-7", "--agent", f"{agent_module}:agent", "--journal", str(journal)]) == 1
    assert "no journal at" in capsys.readouterr().err
    journal.touch()
    assert main(["resume", "nope", "--agent", f"{agent_module}:agent", "--journal", str(journal)]) == 1
    assert "has no run nope" in capsys.readouterr().err
    assert main(["resume", "nope", "--agent", "no_such_module:agent", "--journal", str(journal)]) == 1
    assert "cannot import no_such_module" in capsys.readouterr().err
    assert main(["resume", "nope", "--agent", f"{agent_module}:look", "--journal", str(journal)]) == 1
    assert "is not an Agent" in capsys.readouterr().err


def test_resume_refuses_a_changed_agent_unless_allowed(
    backend: Backend, agent_module: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import durable_cli_agents

    journal = str(backend.location)
    asyncio.run(durable_cli_agents.make_agent().start("find x", journal=journal, run_id="run-7"))
    monkeypatch.setenv("LOOKER_INSTRUCTIONS", "Look harder.")
    command = ["resume", "run-7", "--agent", f"{agent_module}:make_agent", "--journal", journal]
    assert main(command) == 1
    assert "the instructions of agent 'looker' changed" in capsys.readouterr().err
    assert main([*command, "--allow-changed-definition"]) == 0
    assert capsys.readouterr().out == "found X\n"


def test_resume_without_a_terminal_leaves_a_run_waiting_for_retinue_approve(
    backend: Backend, agent_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import durable_cli_agents

    from retinue.approvals import decide_later

    journal = str(backend.location)
    asyncio.run(durable_cli_agents.make_payer().start("pay", journal=journal, run_id="run-8", approver=decide_later()))
    command = ["resume", "run-8", "--agent", f"{agent_module}:make_payer", "--journal", journal]
    assert main(command) == 0  # stdin is not a terminal here: the run goes on waiting
    waiting = capsys.readouterr().err
    assert "waiting for a decision on pay" in waiting and "retinue approve run-8 " in waiting
    assert main([*command, "--approve", "all"]) == 0
    assert capsys.readouterr().out == "paid\n"
