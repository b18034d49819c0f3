"""`retinue runs`, `show` and `replay`, run as a user would, against a recorded store."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from retinue import cli
from retinue.messages import AssistantMessage
from retinue.models import resolve as resolve_module
from retinue.store import ModelCallRecord, RunStore
from retinue.testing.scripted import ScriptedModel
from store.trace_samples import SampleRun

KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, str, list[int]]:
    """A store holding one lead-and-specialist run (with a key in its instructions and a tool argument).

    Returns the store's path, the run's id and the ids of the lead's model calls.
    """
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as store:
        result = SampleRun(secret=KEY).lead.run_sync(
            "Plan a trip to Paris in June.", on_event=store.recorder(), approver=lambda request: True
        )
        store.flush()
        tree = store.get_run_tree(result.run_id)
        assert tree is not None
        calls = [step.id for step in tree.steps if isinstance(step, ModelCallRecord)]
    return path, result.run_id, calls


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_runs_lists_each_run_with_its_cost(recorded: tuple[Path, str, list[int]], capsys: Any) -> None:
    path, run_id, _ = recorded
    code, out, _ = run_cli(capsys, "runs", "--db", str(path))
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["RUN", "AGENT", "STATUS", "TURNS", "TOKENS", "COST", "STARTED", "PROMPT"]
    cells = row.split()
    assert cells[:4] == [run_id[:8], "lead", "completed", "4"]
    assert cells[5] == "$0.0420"
    assert row.endswith("Plan a trip to Paris in June.")


def test_runs_says_so_when_there_are_none(tmp_path: Path, capsys: Any) -> None:
    RunStore(tmp_path / "empty.sqlite").close()
    code, out, _ = run_cli(capsys, "runs", "--db", str(tmp_path / "empty.sqlite"))
    assert (code, out.strip()) == (0, "No runs recorded yet.")
    code, _, err = run_cli(capsys, "runs", "--db", str(tmp_path / "missing.sqlite"))
    assert code == 1 and "no trace store at" in err


def test_show_draws_the_agent_tree_with_cost_per_agent(recorded: tuple[Path, str, list[int]], capsys: Any) -> None:
    path, run_id, calls = recorded
    code, out, _ = run_cli(capsys, "show", run_id[:6], "--db", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"▶ lead · run {run_id[:8]} · scripted:lead · completed · 4 turns")
    assert "$0.0420" in lines[0]
    assert f"  ├─ chat #{calls[0]} · turn 1 · scripted:lead" in out
    assert '  ├─ tool consult({"question": "What is Paris like in June?"})' in out
    # The specialist hangs under the tool call that consulted it.
    consult_line = next(i for i, line in enumerate(lines) if "tool consult(" in line)
    assert lines[consult_line + 2].startswith("  │  └─ ▶ researcher (specialist)")
    assert "approval: approved" in out
    assert "answer: Booked: Paris in June, sunny. Confirmation ZX81." in out
    table = lines[lines.index("Cost per agent:") + 1 :]
    assert table[0].split()[:3] == ["AGENT", "RUNS", "CALLS"]
    assert table[1].split()[:3] == ["lead", "1", "4"] and "$0.0400" in table[1]
    assert table[2].split()[:3] == ["researcher", "1", "1"] and "$0.0020" in table[2]
    assert table[3].split()[0] == "total" and "$0.0420" in table[3]
    assert KEY not in out and "sk-ant-[REDACTED]" in out


def test_show_explains_an_unknown_run(recorded: tuple[Path, str, list[int]], capsys: Any) -> None:
    path, _, _ = recorded
    code, _, err = run_cli(capsys, "show", "nope", "--db", str(path))
    assert code == 1
    assert err.strip() == "retinue show: no run (or more than one) has an id starting with 'nope'"


def test_replay_reissues_a_call_and_prints_the_diff(
    recorded: tuple[Path, str, list[int]], capsys: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    path, _, calls = recorded
    replayer = ScriptedModel([AssistantMessage(text="Which dates do you have in mind?")], name="other")
    asked: list[str] = []

    def fake_resolve(spec: str) -> ScriptedModel:
        asked.append(spec)
        return replayer

    monkeypatch.setattr(resolve_module, "resolve_model", fake_resolve)
    instructions = tmp_path / "instructions.txt"
    instructions.write_text("Ask for dates before anything else.")
    code, out, _ = run_cli(
        capsys,
        "replay",
        str(calls[0]),
        "--db",
        str(path),
        "--model",
        "openai:gpt-4.1",
        "--instructions-file",
        str(instructions),
        "--tool-description",
        "get_weather=Only for dates within a week.",
    )
    assert code == 0
    assert asked == ["openai:gpt-4.1"]
    (sent,) = replayer.requests
    assert sent.instructions == "Ask for dates before anything else."
    assert next(s for s in sent.tools if s.name == "get_weather").description == "Only for dates within a week."
    assert f"Replayed model call {calls[0]} (agent lead, turn 1) on scripted:other" in out
    assert "new instructions, new description of tool 'get_weather'" in out
    assert "  Which dates do you have in mind?" in out
    assert "--- recorded\n+++ replayed" in out
    assert '-→ get_weather({"city": "Paris"})' in out
    assert "+Which dates do you have in mind?" in out


def test_replay_as_recorded_says_when_nothing_changed(
    recorded: tuple[Path, str, list[int]], capsys: Any, monkeypatch: Any
) -> None:
    path, _, calls = recorded
    final_call = calls[-1]
    same = ScriptedModel(["Booked: Paris in June, sunny. Confirmation ZX81."])
    monkeypatch.setattr(resolve_module, "resolve_model", lambda spec: same)
    code, out, _ = run_cli(capsys, "replay", str(final_call), "--db", str(path))
    assert code == 0
    assert "edits: none (sent exactly as recorded)" in out
    assert out.rstrip().endswith("Same answer and tool calls as recorded.")
    # The request went out as recorded, the key in it masked (a trace never holds the key).
    assert same.requests[0].instructions.endswith("sk-ant-[REDACTED].")


def test_replay_reports_bad_input_in_one_line(recorded: tuple[Path, str, list[int]], capsys: Any) -> None:
    path, _, calls = recorded
    code, _, err = run_cli(capsys, "replay", "999", "--db", str(path), "--model", "x:y")
    assert code == 1 and "no recorded model call 999" in err
    code, _, err = run_cli(capsys, "replay", str(calls[0]), "--db", str(path), "--tool-description", "oops")
    assert code == 2 and "NAME=TEXT" in err
    code, _, err = run_cli(
        capsys, "replay", str(calls[0]), "--db", str(path), "--model", "x:y", "--tool-description", "nope=z"
    )
    assert code == 1 and "no tool named 'nope'" in err


def test_ui_refuses_a_public_address_without_a_token(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("RETINUE_UI_TOKEN", raising=False)
    code, _, err = run_cli(capsys, "ui", "--host", "0.0.0.0", "--db", str(tmp_path / "runs.sqlite"))
    assert code == 2
    assert "Refusing to serve the UI on 0.0.0.0 without a token" in err


def test_other_modules_can_add_subcommands_loaded_only_when_used(capsys: Any, monkeypatch: Any) -> None:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")

    monkeypatch.setitem(cli.COMMANDS, "greet", cli.Command("greet", "say hello", configure, "tests_cli_greeting:greet"))
    module = type(sys)("tests_cli_greeting")

    def greet(args: argparse.Namespace) -> int:
        print(f"hello {args.name}")
        return 3

    module.greet = greet  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_cli_greeting", module)
    assert run_cli(capsys, "greet", "ada")[:2] == (3, "hello ada\n")
    code, out, _ = run_cli(capsys)
    assert code == 2 and "greet" in out and "replay" in out


def test_the_command_starts_without_loading_the_store_server_or_http_stack() -> None:
    probe = (
        "import sys, retinue.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('aiohttp', 'sqlite3', 'retinue.store', 'retinue.ui') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
