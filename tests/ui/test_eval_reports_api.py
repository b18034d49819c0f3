"""The UI's eval report endpoints: saved `retinue eval` reports listed, compared, and bad files shown as unreadable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from retinue.store import RunStore
from retinue.ui import UIServer

from .eval_samples import save_eval, save_travel_history

KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"


@pytest.fixture
def evals_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "evals"
    directory.mkdir()
    return directory


@pytest.fixture
async def ui(tmp_path: Path) -> AsyncIterator[UIServer]:
    # No evals_dir given: the UI reads the `evals` directory beside the store, where `retinue eval` saves.
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with UIServer(store, port=0) as server:
            yield server


async def get_json(ui: UIServer, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(ui.url + path) as response:
        text = await response.text()
        return response.status, json.loads(text) if response.content_type == "application/json" else text


async def test_reports_are_listed_newest_first_with_their_pass_hat_k(ui: UIServer, evals_dir: Path) -> None:
    ids = save_travel_history(evals_dir)
    status, body = await get_json(ui, "api/evals")
    assert status == 200
    assert body["directory"] == str(evals_dir)
    listed = {report["id"]: report for report in body["reports"]}
    assert [report["id"] for report in body["reports"]] == [ids["lead_after"], ids["clones"], ids["lead_before"]]
    after = listed[ids["lead_after"]]
    assert (after["app"], after["architecture"], after["model"], after["created_at"]) == (
        "travel",
        "lead",
        "local",
        "2026-05-01T11:00:00Z",
    )
    assert (after["tasks"], after["trials"], after["ks"], after["unreadable"]) == (2, 2, [1, 2], None)
    assert after["pass_hat"] == {"1": 0.75, "2": 0.5}  # paris passed both trials, lisbon one of two


async def test_a_report_comes_with_the_previous_one_and_the_app_s_other_architectures(
    ui: UIServer, evals_dir: Path
) -> None:
    ids = save_travel_history(evals_dir)
    save_eval(evals_dir, "lead", "2026-05-01T12:00:00Z", {"paris": [False, False], "lisbon": [False, False]})
    save_eval(evals_dir, "lead", "2026-05-01T09:00:00Z", {"rome": [True, True]})  # other tasks: not comparable
    save_eval(evals_dir, "clones", "2026-05-01T10:45:00Z", {"paris": [True, True]}, model="gpt")  # other model

    status, body = await get_json(ui, f"api/evals/{ids['lead_after']}")
    assert status == 200
    report = body["report"]
    assert report["id"] == ids["lead_after"]
    assert {task["id"]: task["pass_hat"] for task in report["tasks"]} == {
        "paris": {"1": 1.0, "2": 1.0},
        "lisbon": {"1": 0.5, "2": 0.0},
    }
    assert body["previous"]["id"] == ids["lead_before"]
    assert body["previous"]["pass_hat"] == {"1": 0.75, "2": 0.5}
    # One panel per architecture of the app and model, each its newest report up to this one, with its own previous.
    panels = {panel["architecture"]: panel for panel in body["architectures"]}
    assert list(panels) == ["clones", "lead"]
    assert panels["lead"]["current"]["id"] == ids["lead_after"]
    assert panels["clones"]["current"]["id"] == ids["clones"]
    assert panels["clones"]["previous"] is None
    (failure,) = report["failures"]
    assert failure == {
        "task_id": "lisbon",
        "trial": 1,
        "ending": "user",
        "verdict": "lisbon: the booking row differs: seats 1, expected 2",
    }


async def test_unknown_ids_are_404_and_ids_never_leave_the_directory(ui: UIServer, evals_dir: Path) -> None:
    save_travel_history(evals_dir)
    (evals_dir.parent / "secret.json").write_text('{"not": "a report"}')
    for report_id in ("nope", "..%2Fsecret", "%2E%2E%2Fsecret", "..", "runs.sqlite"):
        assert (await get_json(ui, f"api/evals/{report_id}"))[0] == 404, report_id
    assert (await get_json(ui, "api/evals/nope"))[1] == f"No eval report 'nope' in {evals_dir}."


async def test_files_that_are_not_reports_are_listed_as_unreadable_never_a_500(ui: UIServer, evals_dir: Path) -> None:
    ids = save_travel_history(evals_dir)
    broken = {
        "cut-short": '{"format": "retinue.eval_report", "results": [',
        "a-list": "[1, 2]",
        "wrong-shapes": json.dumps({"label": "x", "trials": 1, "results": [1, "two"]}),
        "bad-task-id": json.dumps(
            {"label": "x", "trials": 1, "results": [{"task_id": ["a"], "trial": 0, "passed": True}]}
        ),
        "too-few-trials": json.dumps({"label": "x", "trials": 2, "results": []}),
        "not-utf8": "\udcff",
    }
    for name, text in broken.items():
        (evals_dir / f"{name}.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    status, body = await get_json(ui, "api/evals")
    assert status == 200
    problems = {report["id"]: report["unreadable"] for report in body["reports"]}
    assert problems[ids["lead_after"]] is None
    assert "not JSON" in problems["cut-short"]
    assert problems["a-list"] == "a-list.json is not an eval report: no list of results"
    for name in ("wrong-shapes", "bad-task-id", "not-utf8"):
        assert problems[name], name
    assert problems["too-few-trials"] is None  # an empty report is a report, with nothing to chart
    for name in broken:
        status, detail = await get_json(ui, f"api/evals/{name}")
        assert status == 200 and detail["unreadable"] == problems[name], name
    assert (await get_json(ui, "api/evals/too-few-trials"))[1]["report"]["tasks"] == []


async def test_no_key_in_a_report_file_reaches_the_page(ui: UIServer, evals_dir: Path) -> None:
    # Written by hand, not by `save_report` (which redacts): the UI masks what it sends all the same.
    payload = {
        "label": f"travel/lead/openai:gpt-4o?key={KEY}",
        "app": "travel",
        "architecture": "lead",
        "model": f"openai:gpt-4o?key={KEY}",
        "created_at": "2026-05-01T10:00:00Z",
        "trials": 1,
        "results": [
            {"task_id": "paris", "trial": 0, "passed": False, "verdict": f"the tool said: bad key {KEY}"}
            | {"state_matches": False, "missing_facts": [], "user_turns": 1, "cost_usd": 0.0}
            | {"input_tokens": 1, "output_tokens": 1, "seconds": 0.1}
        ],
    }
    (evals_dir / "by-hand.json").write_text(json.dumps(payload))
    listing = await get_json(ui, "api/evals")
    detail = await get_json(ui, "api/evals/by-hand")
    assert detail[1]["report"]["model"] == "openai:gpt-4o?key=sk-ant-[REDACTED]"
    assert KEY not in json.dumps(listing[1]) + json.dumps(detail[1])


async def test_an_app_never_evaluated_lists_no_reports(ui: UIServer) -> None:
    assert await get_json(ui, "api/evals") == (200, {"directory": str(ui.eval_reports.directory), "reports": []})
