"""Patches: reviewable old and new texts, applied only when asked, then what `retinue run` and `retinue eval` use."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from refund_shop import BROKEN_INSTRUCTIONS, FIXED_INSTRUCTIONS, RefundShop

from retinue.approvals import unattended
from retinue.cli import main
from retinue.errors import ConfigurationError
from retinue.improve import Patch, Suggestion, TextChange, tree_texts
from retinue.improve.active import activate, active_patch_path, deactivate, with_active_patches
from retinue.testing import FakeOpenAIServer, RecordedRequest, Reply, ScriptItem
from retinue_travel.app import APP
from retinue_travel.assistant import LEAD_INSTRUCTIONS


def shop_patch(new: str = FIXED_INSTRUCTIONS) -> Patch:
    return Patch.between(
        "shop",
        "single",
        {"shop.instructions": BROKEN_INSTRUCTIONS, "shop.tool.refund": "Refund an order."},
        {"shop.instructions": new, "shop.tool.refund": "Refund an order."},
        suggestions=[Suggestion("shop.tool.refund", "the error for an unknown order", "Say which orders exist.")],
        report={"k": 2},
    )


def test_a_patch_holds_only_the_changed_texts_and_survives_a_round_trip(tmp_path: Path) -> None:
    patch = shop_patch()
    patch.save(tmp_path / "p.json")

    assert patch.changes == (TextChange("shop.instructions", BROKEN_INSTRUCTIONS, FIXED_INSTRUCTIONS),)
    assert Patch.load(tmp_path / "p.json") == patch
    review = patch.render()
    assert "--- shop.instructions (old)" in review and f"+{FIXED_INSTRUCTIONS}" in review
    assert "Suggestions to make in the code (not applied):" in review


def test_a_file_that_is_not_a_patch_is_refused_with_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "not.json").write_text('{"changes": []}')
    (tmp_path / "broken.json").write_text("{")

    with pytest.raises(ConfigurationError, match='is not a retinue patch \\(no "format"'):
        Patch.load(tmp_path / "not.json")
    with pytest.raises(ConfigurationError, match="not JSON"):
        Patch.load(tmp_path / "broken.json")
    with pytest.raises(ConfigurationError, match="cannot read the patch"):
        Patch.load(tmp_path / "missing.json")


def test_a_patch_does_not_overwrite_a_text_that_changed_since_it_was_made() -> None:
    shop = RefundShop().episode("single", None, RefundShop().eval_tasks()[0]).assistant
    edited = shop.override(instructions="Someone rewrote this by hand.")

    assert tree_texts(shop_patch().apply(shop))["shop.instructions"] == FIXED_INSTRUCTIONS
    with pytest.raises(ConfigurationError, match="changed since the patch was made"):
        shop_patch().apply(edited)


def test_patches_stack_keeping_the_first_old_text() -> None:
    second = Patch.between("shop", "single", {"shop.instructions": FIXED_INSTRUCTIONS}, {"shop.instructions": "Third."})

    stacked = shop_patch().then(second)

    assert stacked.changes == (TextChange("shop.instructions", BROKEN_INSTRUCTIONS, "Third."),)


def test_an_applied_patch_is_what_every_new_episode_gets_until_it_is_reverted(tmp_path: Path) -> None:
    app = RefundShop()
    task = app.eval_tasks()[0]
    said: list[str] = []

    assert with_active_patches(app, tmp_path) is app  # nothing applied: the app itself
    path = activate(shop_patch(), tmp_path, app)
    patched = with_active_patches(app, tmp_path, said.append)

    assert path == active_patch_path(tmp_path, "shop", "single") and path.exists()
    assert patched.episode("single", None, task).assistant.instructions == FIXED_INSTRUCTIONS
    assert patched.episode("single", None, task).assistant.instructions == FIXED_INSTRUCTIONS
    assert len(said) == 1 and "shop/single runs with the patch applied by `retinue improve apply`" in said[0]
    assert app.episode("single", None, task).assistant.instructions == BROKEN_INSTRUCTIONS  # the code is unchanged

    assert deactivate(tmp_path, "shop", "single") == path
    assert with_active_patches(app, tmp_path) is app


def test_a_patch_for_another_app_or_architecture_is_not_applied(tmp_path: Path) -> None:
    other = Patch("travel", "lead", ())
    strange = Patch("shop", "swarm", ())

    with pytest.raises(ConfigurationError, match="the patch is for the app 'travel', not 'shop'"):
        activate(other, tmp_path, RefundShop())
    with pytest.raises(ConfigurationError, match="architecture 'swarm', which shop does not have"):
        activate(strange, tmp_path, RefundShop())


def travel_patch(tmp_path: Path) -> Path:
    patch = Patch(
        "travel", "lead", (TextChange("travel-lead.instructions", LEAD_INSTRUCTIONS, "PATCHED: you plan trips."),)
    )
    patch.save(tmp_path / "travel.patch.json")
    return tmp_path / "travel.patch.json"


def test_improve_apply_show_and_revert_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RETINUE_HOME", str(tmp_path / "home"))
    patch_file = travel_patch(tmp_path)

    assert main(["improve", "show", str(patch_file)]) == 0
    assert "+PATCHED: you plan trips." in capsys.readouterr().out
    assert main(["improve", "apply", str(patch_file)]) == 0
    applied = capsys.readouterr().out
    assert "Applied: `retinue run travel` and `retinue eval travel` with --arch lead now use 1 new text(s)" in applied
    assert (tmp_path / "home" / "patches" / "travel" / "lead.json").exists()
    assert main(["improve", "revert", "travel", "--arch", "lead"]) == 0
    assert "Reverted: travel/lead runs with its own texts again." in capsys.readouterr().out
    assert main(["improve", "revert", "travel"]) == 0
    assert "No patch was applied to travel" in capsys.readouterr().out


def test_improve_apply_refuses_a_missing_patch_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RETINUE_HOME", str(tmp_path))

    assert main(["improve", "apply", str(tmp_path / "nope.json")]) == 1
    assert "retinue improve: cannot read the patch" in capsys.readouterr().err
    assert main(["improve", "apply"]) == 2
    assert "apply needs a patch file" in capsys.readouterr().err


def lead_answers(request: RecordedRequest) -> ScriptItem:
    return Reply(text="Sorry, I cannot book flights today.")


async def test_the_next_eval_runs_the_applied_patch_and_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "RETINUE_HOME": str(home)}
    assert main_in(env, "improve", "apply", str(travel_patch(tmp_path))) == 0

    async with FakeOpenAIServer(lead_answers, api_key=None) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "retinue", "eval", "travel", "--arch", "lead", "--tasks", "flight-nonstop-cheapest",
            "--model", f"openai:fake@{server.base_url}", "--user-model", "scripted",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)

    assert process.returncode == 0, stderr.decode()
    assert "travel/lead runs with the patch applied by `retinue improve apply`" in stderr.decode()
    systems = [request.body["messages"][0]["content"] for request in server.requests]
    assert systems and all(system.startswith("PATCHED: you plan trips.") for system in systems)


def main_in(env: dict[str, str], *argv: str) -> int:
    import subprocess

    return subprocess.run([sys.executable, "-m", "retinue", *argv], env=env, capture_output=True).returncode


def test_a_run_gets_the_patch_even_when_its_tree_leaves_out_patched_tools(tmp_path: Path) -> None:
    episode = APP.episode("lead", None, APP.eval_tasks()[0])
    texts = tree_texts(episode.assistant)
    new = {**texts, "travel-lead.instructions": "PATCHED.", "travel-lead.tool.book_flight": "Book a flight."}
    activate(Patch.between("travel", "lead", texts, new), tmp_path, APP)

    session = with_active_patches(APP, tmp_path).session("lead", None, unattended)

    # Unattended, nobody can approve a booking: the tree has no booking tools, and their new texts wait unused.
    assert session.agent.instructions == "PATCHED."
    assert "travel-lead.tool.book_flight" not in tree_texts(session.agent)
    for close in (episode.close, session.close):
        if close is not None:
            close()
