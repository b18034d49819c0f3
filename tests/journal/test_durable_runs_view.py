"""Durable runs as people see them: `durable_runs` and `retinue runs --journal`, and `retinue approve`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from retinue import Agent, tool
from retinue.approvals import decide_later
from retinue.cli import main
from retinue.journal import durable_run, durable_runs
from retinue.testing.scripted import ScriptedModel, call

from .conftest import Backend
from .test_journal import Gate, cut_off_inside, gated


@tool(requires_approval=True)
def pay(item: str) -> str:
    """Pay for an item.

    Args:
        item: What to pay for.
    """
    return f"paid {item}"


def payer(*replies: Any) -> Agent[Any]:
    return Agent("payer", model=ScriptedModel(list(replies) or [call("pay", item="car"), "done"]), tools=[pay])


async def test_each_run_shows_as_running_waiting_interrupted_resumable_or_done(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    running_gate, cut_gate = Gate(), Gate()
    with backend.open() as journal:
        done = await payer().start("done", journal=journal, run_id="done", approver=lambda request: True)
        await payer().start("waiting", journal=journal, run_id="waiting", approver=decide_later())
        decided = await payer().start("decided", journal=journal, run_id="decided", approver=decide_later())
        await journal.decide("decided", decided.pending_approvals[0].approval_id, approved=True)
        cut = Agent("cut", model=ScriptedModel([call("pay", item="x"), "ok"]), tools=[gated(cut_gate, idempotent=True)])
        await cut_off_inside(cut_gate, cut.start("interrupted", journal=journal, run_id="interrupted"))
        held = Agent("held", model=ScriptedModel([call("pay", item="x"), "ok"]), tools=[gated(running_gate)])
        running = asyncio.ensure_future(held.start("running", journal=journal, run_id="running"))
        await running_gate.entered.wait()
        await payer().override(model=ScriptedModel([])).start("done", journal=journal, run_id="done")  # a replay

        with backend.open() as looking:  # another process looks
            views = {view.run.run_id: view for view in durable_runs(looking)}
            code = main(["runs", "--journal", str(backend.location)])
        running_gate.release.set()
        assert (await running).completed

    assert {run_id: view.state for run_id, view in views.items()} == {
        "done": "done",
        "waiting": "waiting",
        "decided": "resumable",
        "interrupted": "interrupted",
        "running": "running",
    }
    assert next(iter(views)) == "running", "newest first"
    assert views["waiting"].describe_state() == "waiting for approval (1)"
    assert views["interrupted"].resumable and views["decided"].resumable and not views["waiting"].resumable
    assert (views["done"].usage.paid.requests, views["done"].usage.replayed.requests) == (2, 2)
    assert views["done"].usage.paid.input_tokens == done.total_usage.input_tokens
    (pending,) = views["waiting"].pending_approvals
    assert (pending.tool, pending.arguments) == ("pay", {"item": "car"})

    printed = capsys.readouterr().out
    assert code == 0
    assert "waiting for approval (1)" in printed and "interrupted (resumable)" in printed
    assert "decided (resumable)" in printed and "done (completed)" in printed
    assert f"retinue approve waiting {pending.approval_id} --yes" in printed
    assert "interrupted can go on: retinue resume interrupted" in printed
    assert "2 calls, " in printed  # paid, and replayed apart


def test_retinue_approve_lists_decides_and_says_what_is_wrong(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    location = str(backend.location)
    with backend.open() as journal:
        waiting = asyncio.run(payer().start("go", journal=journal, run_id="r", approver=decide_later()))
    approval_id = waiting.pending_approvals[0].approval_id

    assert main(["approve", "r", "--journal", location]) == 0
    listed = capsys.readouterr().out
    assert f"{approval_id}  waiting" in listed and 'payer pay {"item": "car"}' in listed

    assert main(["approve", "r", approval_id, "--journal", location]) == 1
    assert "say --yes to approve the call or --no to deny it" in capsys.readouterr().err
    assert main(["approve", "r", "nope", "--yes", "--journal", location]) == 1
    assert "run r has no approval nope" in capsys.readouterr().err
    assert main(["approve", "elsewhere", "--journal", location]) == 1
    assert "has no durable run elsewhere" in capsys.readouterr().err

    assert main(["approve", "r", approval_id, "--no", "--reason", "not now", "--by", "ana", "--journal", location]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith('denied: payer pay {"item": "car"}')
    assert "resume it (`retinue resume r`)" in captured.err
    assert main(["approve", "r", approval_id, "--yes", "--journal", location]) == 1
    assert "was already denied by ana" in capsys.readouterr().err
    with backend.open() as journal:
        view = durable_run(journal, "r")
    assert view is not None and view.state == "resumable"
    (record,) = view.approvals
    assert (record.approved, record.reason, record.decided_by) == (False, "not now", "ana")


def test_a_journal_that_is_not_there_is_one_line(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nowhere.sqlite")
    assert main(["runs", "--journal", missing]) == 1
    assert "no journal at" in capsys.readouterr().err
    assert main(["approve", "r", "--journal", missing]) == 1
    assert "no journal at" in capsys.readouterr().err
