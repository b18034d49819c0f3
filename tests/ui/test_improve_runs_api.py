"""The UI's improvement run endpoints: records of `retinue improve` listed and served, bad files unreadable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from retinue.store import RunStore
from retinue.ui import UIServer
from retinue.ui.improve_views import word_diff

from .improve_samples import NEW_INSTRUCTIONS, OLD_INSTRUCTIONS, save_improvement

KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"


@pytest.fixture
def improve_dir(tmp_path: Path) -> Path:
    return tmp_path / "improve"  # beside the store: where the UI looks when not told otherwise


@pytest.fixture
async def ui(tmp_path: Path) -> AsyncIterator[UIServer]:
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with UIServer(store, port=0) as server:
            yield server


async def get_json(ui: UIServer, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(ui.url + path) as response:
        text = await response.text()
        return response.status, json.loads(text) if response.content_type == "application/json" else text


async def test_a_run_is_listed_with_its_seed_and_accepted_scores(ui: UIServer, improve_dir: Path) -> None:
    run_id = save_improvement(improve_dir)
    (improve_dir / f"{run_id}.patch.json").write_text('{"format": "retinue.patch"}')  # saved beside: not a run
    status, body = await get_json(ui, "api/improve")
    assert status == 200 and body["directory"] == str(improve_dir)
    (run,) = body["runs"]
    assert run["id"] == run_id
    assert (run["app"], run["architecture"], run["k"], run["rollouts"], run["unreadable"]) == (
        "travel",
        "lead",
        2,
        40,
        None,
    )
    assert run["seed"] == {"train": 0.25, "held_out": 0.0}
    assert run["accepted"] == {"candidate": 2, "train": 0.75, "held_out": 0.5, "changes": 2}


async def test_a_run_s_page_has_every_iteration_and_the_accepted_diffs(ui: UIServer, improve_dir: Path) -> None:
    run_id = save_improvement(improve_dir)
    status, run = await get_json(ui, f"api/improve/{run_id}")
    assert status == 200
    assert [(i["iteration"], i["outcome"], i["train"], i["held_out"]) for i in run["iterations"]] == [
        (1, "new candidate", 0.5, 0.0),
        (2, "rejected on the minibatch", None, None),
        (3, "new candidate", 0.75, 0.5),
        (4, "no proposal", None, None),
    ]
    assert [(c["index"], c["iteration"], c["gate"]) for c in run["candidates"]] == [
        (0, 0, "seed"),
        (1, 1, "rejected: no better"),
        (2, 3, "accepted"),
    ]
    assert run["split"]["seed"] == 7
    assert sorted(run["split"]["train"] + run["split"]["held_out"]) == sorted(
        ["paris", "lisbon", "rome", "oslo", "madrid", "berlin"]
    )
    instructions = run["changes"][0]
    assert (instructions["path"], instructions["old"], instructions["new"]) == (
        "travel-lead.instructions",
        OLD_INSTRUCTIONS,
        NEW_INSTRUCTIONS,
    )
    assert [piece for piece in instructions["diff"] if piece[0] != "="] == [
        ["-", "dollars"],
        ["+", "euros, as the booking tools do"],
    ]


def test_a_word_diff_keeps_what_is_common_and_marks_the_rest() -> None:
    pieces = word_diff("Give the price in dollars.", "Give the price in cents, never dollars.")
    assert "".join(text for op, text in pieces or [] if op != "+") == "Give the price in dollars."
    assert "".join(text for op, text in pieces or [] if op != "-") == "Give the price in cents, never dollars."
    assert ["+", "cents, never "] in (pieces or [])
    assert word_diff("x" * 30_000, "y") is None


async def test_a_run_with_nothing_accepted_has_no_changes(ui: UIServer, improve_dir: Path) -> None:
    run_id = save_improvement(improve_dir, accept=False)
    run = (await get_json(ui, f"api/improve/{run_id}"))[1]
    assert (run["accepted"], run["changes"]) == (None, [])


async def test_records_of_another_shape_are_unreadable_and_unknown_ids_404(ui: UIServer, improve_dir: Path) -> None:
    good = save_improvement(improve_dir)
    record = json.loads((improve_dir / f"{good}.json").read_text())
    broken = {
        "not-json": "{",
        "not-a-record": json.dumps({"format": "retinue.eval_report"}),
        "score-as-text": json.dumps(record | {"candidates": [{**record["candidates"][0], "train": "high"}]}),
        "score-out-of-range": json.dumps(record | {"candidates": [{**record["candidates"][0], "held_out": 7}]}),
        "no-seed": json.dumps(record | {"candidates": []}),
        "accepted-unknown": json.dumps(record | {"accepted": {"candidate": 9, "changes": []}}),
        "change-not-text": json.dumps(record | {"accepted": {"candidate": 2, "changes": [{"path": 1}]}}),
    }
    for name, text in broken.items():
        (improve_dir / f"{name}.json").write_text(text)
    runs = {run["id"]: run["unreadable"] for run in (await get_json(ui, "api/improve"))[1]["runs"]}
    assert runs[good] is None
    assert runs["not-a-record"] == "not-a-record.json is not an improvement run record"
    assert runs["score-as-text"] == "not a readable improvement run record: its train is not a number"
    assert (
        runs["score-out-of-range"]
        == "not a readable improvement run record: its held_out (7.0) is not a score from 0 to 1"
    )
    assert runs["accepted-unknown"] == (
        "not a readable improvement run record: the accepted candidate 9 is not among its candidates"
    )
    for name in broken:
        assert runs[name], name
        status, body = await get_json(ui, f"api/improve/{name}")
        assert (status, body["unreadable"]) == (200, runs[name])
    for unknown in ("nope", f"{good}.patch", "..", "%2E%2E%2Fruns"):
        assert (await get_json(ui, f"api/improve/{unknown}"))[0] == 404, unknown
    assert (await get_json(ui, "api/improve/nope"))[1] == f"No improvement run 'nope' in {improve_dir}."


async def test_no_key_in_a_record_reaches_the_page(ui: UIServer, improve_dir: Path) -> None:
    good = save_improvement(improve_dir)
    record = json.loads((improve_dir / f"{good}.json").read_text())
    record["model"] = f"anthropic:claude?key={KEY}"
    record["accepted"]["changes"][0]["new"] = f"Use the key {KEY} for bookings."
    (improve_dir / f"{good}.json").write_text(json.dumps(record))
    listing = (await get_json(ui, "api/improve"))[1]
    run = (await get_json(ui, f"api/improve/{good}"))[1]
    assert run["model"] == "anthropic:claude?key=sk-ant-[REDACTED]"
    assert KEY not in json.dumps(listing) + json.dumps(run)


async def test_no_improvement_run_yet_lists_none(ui: UIServer) -> None:
    assert (await get_json(ui, "api/improve"))[1]["runs"] == []
