"""`retinue resume RUN_ID --agent MODULE:NAME`: a durable run resumed from the command line."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from retinue.cli import main

from .conftest import Backend

AGENT_MODULE = '''
from retinue import Agent, tool
from retinue.testing.scripted import ScriptedModel, call

@tool(effect="read")
def look(key: str) -> str:
    """Look a key up."""
    return key.upper()

def make_agent():
    return Agent("looker", model=ScriptedModel([call("look", key="x"), "found X"]), tools=[look])

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
