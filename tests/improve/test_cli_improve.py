"""`retinue improve travel` end to end: assistant and reflection model behind a fake OpenAI server, runs traced."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from retinue.store import RunStore
from retinue.testing import FakeOpenAIServer, RecordedRequest, Reply, ScriptItem

pytest.importorskip("gepa")

TASKS = "flight-nonstop-cheapest,hotel-three-star-madrid,car-cheapest-denver,weather-london-packing"


def assistant_and_reflector(request: RecordedRequest) -> ScriptItem:
    system = request.body["messages"][0]["content"]
    if system.startswith("You improve the instructions"):
        return Reply(text="```\nYou are a travel assistant. Search before you answer.\n```")
    return Reply(text="Sorry, I cannot help with travel today.")


async def test_improve_runs_gepa_within_its_budget_and_records_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with FakeOpenAIServer(assistant_and_reflector, api_key=None) as server:
        model = f"openai:fake@{server.base_url}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "retinue", "improve", "travel", "--arch", "lead", "--tasks", TASKS,
            "--model", model, "--user-model", "scripted", "--budget", "16", "--only", "travel-lead.instructions",
            env={**os.environ, "RETINUE_HOME": str(home)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=180)

    assert process.returncode == 0, stderr.decode()
    out = stdout.decode()
    assert "Split (seed 0, 30% held out)" in out
    assert "No candidate beat the seed on the held-out tasks: nothing to patch." in out
    assert "Stopped: the budget of 16 episodes cannot hold another step: 11 run, the next needs up to 9" in out
    [reflection] = [r for r in server.requests if r.body["messages"][0]["content"].startswith("You improve")]
    assert "Grader's verdict" in reflection.body["messages"][-1]["content"]
    [record_file] = (home / "improve").glob("travel-lead-*.json")
    record = json.loads(record_file.read_text())
    assert record["rollouts"] <= 16 and record["iterations"][0]["outcome"] == "rejected on the minibatch"
    with RunStore(home / "runs.sqlite") as store:
        agents = {run.agent for run in store.list_runs(500, include_children=True)}
    assert {"travel-lead", "improve-reflector"} <= agents


async def test_improve_refuses_a_budget_too_small_in_one_line(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "retinue", "improve", "travel", "--tasks", TASKS, "--budget", "3", "--no-trace",
        env={**os.environ, "RETINUE_HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)

    assert process.returncode == 2
    assert stderr.decode().strip().startswith("retinue improve: a budget of 3 episodes cannot hold one round")
