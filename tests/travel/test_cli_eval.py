"""`retinue eval travel` end to end: simulated user and assistant both behind a fake OpenAI server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from retinue.evals import STOP
from retinue.store import RunStore
from retinue.testing import FakeOpenAIServer, RecordedRequest, Reply, ScriptItem


def user_and_assistant(request: RecordedRequest) -> ScriptItem:
    messages = request.body["messages"]
    if messages[0]["role"] == "system" and messages[0]["content"].startswith("You are a customer"):
        said = [m for m in messages if m["role"] == "assistant"]
        return Reply(text=STOP if said else "Please book me the cheapest nonstop Seattle to San Francisco flight.")
    return Reply(text="Sorry, I cannot book flights today.")


async def test_eval_prints_pass_hat_k_and_saves_results(tmp_path: Path) -> None:
    async with FakeOpenAIServer(user_and_assistant, api_key=None) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "retinue", "eval", "travel", "--arch", "lead", "--trials", "2",
            "--tasks", "flight-nonstop-cheapest,weather-london-packing",
            "--model", f"openai:fake@{server.base_url}", "--results", str(tmp_path), "--no-trace",
            env={**os.environ, "RETINUE_HOME": str(tmp_path / "home")},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)

    assert process.returncode == 0, stderr.decode()
    table = stdout.decode()
    assert "pass^1" in table and "pass^2" in table
    assert "travel/lead/openai:fake@" in table
    assert "flight-nonstop-cheapest #1: FAIL" in stderr.decode()
    payload = saved_report(tmp_path)
    assert len(payload["results"]) == 4
    assert payload["summary"]["pass^1"] == 0.0
    assert not (tmp_path / "home").exists(), "--no-trace records nothing"


def saved_report(directory: Path) -> dict[str, Any]:
    [saved] = list(directory.glob("travel-lead-*.json"))
    report: dict[str, Any] = json.loads(saved.read_text())
    return report


async def test_each_report_is_kept_in_the_retinue_home_and_compared_with_the_previous_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with FakeOpenAIServer(user_and_assistant, api_key=None) as server:
        model = f"openai:fake@{server.base_url}"
        outputs = [await eval_in(home, model, "--user-model", "scripted") for _ in range(2)]

    [first, second] = sorted((home / "evals").glob("travel-lead-*.json"))
    payload = json.loads(second.read_text())
    assert (payload["app"], payload["architecture"], payload["model"]) == ("travel", "lead", model)
    assert payload["user_model"] == "scripted"
    assert payload["task_ids"] == ["flight-nonstop-cheapest"]
    assert payload["pass_hat"] == {"1": 0.0}
    assert payload["created_at"] >= json.loads(first.read_text())["created_at"]
    assert "prev pass^1" not in outputs[0] and "prev pass^1" in outputs[1]
    assert payload["results"][0]["verdict"].startswith("FAILED: task 'flight-nonstop-cheapest'")
    # Each episode's runs are in the trace store, as `retinue run`'s are: readable while the eval goes on.
    with contextlib.closing(RunStore(home / "runs.sqlite")) as store:
        runs = store.list_runs()
    assert [run.agent for run in runs] == ["travel-lead", "travel-lead"]
    assert all(run.status == "completed" for run in runs)


async def eval_in(home: Path, model: str, *options: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "retinue", "eval", "travel", "--arch", "lead", "--tasks", "flight-nonstop-cheapest",
        "--model", model, *options,
        env={**os.environ, "RETINUE_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()
