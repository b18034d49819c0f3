"""Reports: saved small and loadable (old ones too), kept beside the trace store, compared with the previous one;
and the deterministic train/held-out split they record."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from retinue import Agent, RunContext, tool
from retinue.evals import (
    Episode,
    EvalReport,
    EvalTask,
    ScriptedUser,
    TrialResult,
    previous_report,
    reports_dir,
    run_eval,
    save_report,
    split_tasks,
)
from retinue.testing.scripted import ScriptedModel, call


@tool
def search(context: RunContext, query: str) -> str:
    """Search the catalogue."""
    return "result " * 400  # a long result: the report keeps only its start


def searching_episode(task: EvalTask) -> Episode:
    model = ScriptedModel([call("search", query=task.id), call("search", query="sk-" + "x" * 30), "Found it."])
    return Episode(Agent(name="assistant", model=model, tools=[search]), list)


tasks = [EvalTask(id=f"t{i}", instruction="x", difficulty=("easy", "medium", "hard")[i % 3]) for i in range(10)]


async def test_a_saved_report_loads_back_with_its_tool_calls_and_stays_small(tmp_path: Path) -> None:
    split = split_tasks(tasks, held_out=0.3, seed=7)
    report = await run_eval(split.held_out, searching_episode, lambda t: ScriptedUser(["Find"]), trials=2, split=split)
    report = dataclasses.replace(report, app="shop", architecture="solo", model="scripted")
    path = tmp_path / "report.json"

    report.save(path)
    loaded = EvalReport.load(path)

    assert loaded.summary_row() == report.summary_row()
    assert loaded.results[0].tool_calls[0] == report.results[0].tool_calls[0]
    assert loaded.results[0].transcript == report.results[0].transcript
    assert loaded.results[0].runs == [] and len(report.results[0].runs) == 1, "RunResults stay in memory"
    assert loaded.split == split.ids() and loaded.task_ids == [task.id for task in split.held_out]
    payload = json.loads(path.read_text())
    assert payload["pass_hat"] == {"1": 1.0, "2": 1.0}
    assert payload["per_task"][loaded.task_ids[0]] == {"trials": 2, "passed": 2, "pass^1": 1.0, "pass^2": 1.0}
    assert payload["app"] == "shop" and payload["created_at"].endswith("Z")
    assert "sk-xxxx" not in path.read_text(), "tool arguments are redacted like everything written down"
    assert len(path.read_text()) < 3000 * len(report.results), "each trial is a few kilobytes, not its history"


def test_a_report_saved_before_version_2_still_loads(tmp_path: Path) -> None:
    old = {
        "label": "travel/lead/default",
        "trials": 1,
        "summary": {},
        "results": [
            {
                "task_id": "a",
                "trial": 0,
                "passed": True,
                "state_matches": True,
                "missing_facts": [],
                "user_turns": 1,
                "cost_usd": None,
                "input_tokens": 10,
                "output_tokens": 5,
                "seconds": 0.5,
                "error": None,
                "transcript": [["user", "hi"], ["assistant", "hello"]],
            }
        ],
    }
    (tmp_path / "old.json").write_text(json.dumps(old))

    loaded = EvalReport.load(tmp_path / "old.json")

    assert loaded.pass_hat(1) == 1.0 and loaded.task_ids == ["a"]
    assert loaded.results[0].transcript == [("user", "hi"), ("assistant", "hello")]


def test_a_file_that_is_not_a_report_says_so(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text('{"results": [{"task_id": 1}]}')
    with pytest.raises(ValueError, match="not an eval report: not JSON"):
        EvalReport.load(tmp_path / "a.json")
    with pytest.raises(ValueError, match="not a readable eval report"):
        EvalReport.load(tmp_path / "b.json")


def report(created_at: str, passed: bool, task_ids: tuple[str, ...] = ("a",)) -> EvalReport:
    results = [TrialResult(task_id, 0, passed, passed, [], 1, None, 0, 0, 0.1) for task_id in task_ids]
    return EvalReport("x", 1, results, app="shop", architecture="solo", model="m", created_at=created_at)


def test_reports_live_beside_the_trace_store_and_the_previous_comparable_one_is_found(tmp_path: Path) -> None:
    directory = reports_dir(tmp_path / "runs.sqlite")
    assert directory == tmp_path / "evals"
    first = save_report(report("2026-01-01T10:00:00Z", passed=False), directory)
    second = save_report(report("2026-01-01T10:00:00Z", passed=True), directory)  # the same second
    save_report(report("2026-01-02T10:00:00Z", passed=True, task_ids=("a", "b")), directory)  # other tasks

    assert first.name == "shop-solo-m-20260101-100000.json" and second.name == "shop-solo-m-20260101-100000_2.json"
    assert sorted(directory.iterdir())[:2] == [first, second], "names sort in the order the reports were made"
    newer = report("2026-01-03T10:00:00Z", passed=True)
    previous = previous_report(directory, newer)
    assert previous is not None and previous.created_at == "2026-01-01T10:00:00Z"
    assert previous_report(directory, dataclasses.replace(newer, model="other")) is None


def test_the_split_is_deterministic_stratified_and_recorded() -> None:
    split = split_tasks(tasks, held_out=0.3, seed=7)

    assert split == split_tasks(list(tasks), held_out=0.3, seed=7)
    assert len(split.held_out) == 3 and len(split.train) == 7
    assert {task.difficulty for task in split.held_out} == {"easy", "medium", "hard"}
    assert {task.id for task in split.train} | {task.id for task in split.held_out} == {task.id for task in tasks}
    assert split.ids()["seed"] == 7 and split.ids()["held_out"] == [task.id for task in split.held_out]
    assert split_tasks(tasks, held_out=0.3, seed=8).held_out != split.held_out


def test_a_split_that_cannot_be_made_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_tasks(tasks, held_out=1.5)
    with pytest.raises(ValueError, match="at least 2 tasks"):
        split_tasks(tasks[:1])
    with pytest.raises(ValueError, match="repeated: t0"):
        split_tasks([tasks[0], tasks[0]])
