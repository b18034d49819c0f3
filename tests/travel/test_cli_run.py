"""`retinue run travel` end to end: the real CLI in a subprocess, a fake OpenAI server speaking the wire protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from retinue import cli
from retinue.store import RunStore
from retinue.testing import FakeOpenAIServer, FakeToolCall, RecordedRequest, Reply, ScriptItem


def travel_lead_policy(request: RecordedRequest) -> ScriptItem:
    """A model that asks the weather specialist, books the flight it was asked for, then answers."""
    tools = {tool["function"]["name"] for tool in request.body.get("tools", [])}
    done = request.tool_result_count()
    if "get_weather" in tools:  # the weather specialist
        if done == 0:
            return Reply(tool_calls=[FakeToolCall("get_weather", {"city": "New York", "date": "2026-12-12"})])
        return Reply(text="New York on 2026-12-12: see the forecast above.")
    if done == 0:
        return Reply(tool_calls=[FakeToolCall("ask_weather", {"question": "Weather in New York on 2026-12-12?"})])
    if done == 1:
        booking = {
            "traveller_id": "T1001",
            "flight_number": "NS120",
            "date": "2026-12-12",
            "cabin": "economy",
            "payment_method": "card",
        }
        return Reply(tool_calls=[FakeToolCall("book_flight", booking)])
    return Reply(text="Booked NS120 SFO-JFK on 2026-12-12 for $410.")


async def run_cli(*args: str, home: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "retinue",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            "RETINUE_HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "OPENAI_COMPATIBLE_API_KEY": "test-key",
            "OPENAI_API_KEY": "must-not-be-sent",
        },
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_run_travel_books_with_approval_and_reports_bookings_and_cost(tmp_path: Path) -> None:
    async with FakeOpenAIServer(travel_lead_policy, api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        code, out, err = await run_cli(
            "run", "travel", "Fly me SFO to New York on 12 December.", "--arch", "lead", "--model", model,
            "--approve", "all", home=tmp_path,
        )  # fmt: skip

    assert code == 0, err
    assert "Booked NS120 SFO-JFK on 2026-12-12 for $410." in out
    assert "+ confirmed flight NS120" in out
    assert "travel-lead" in out and "weather" in out  # cost by agent
    assert "Recorded as run" in out
    assert (tmp_path / "runs.sqlite").exists()


async def test_run_travel_refuses_bookings_without_approval(tmp_path: Path) -> None:
    async with FakeOpenAIServer(travel_lead_policy, api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        code, out, err = await run_cli(
            "run", "travel", "Fly me.", "--arch", "lead", "--model", model, "--approve", "none", "--no-trace",
            home=tmp_path,
        )  # fmt: skip

    assert code == 0, err
    assert "No bookings were made or cancelled." in out
    assert not (tmp_path / "runs.sqlite").exists()


async def test_an_unknown_architecture_is_a_one_line_error(tmp_path: Path) -> None:
    code, _, err = await run_cli("run", "travel", "x", "--arch", "swarm", home=tmp_path)

    assert code == 1
    assert "--arch must be one of lead, clones, script, not 'swarm'" in err
    assert "Traceback" not in err


async def test_bookings_can_wait_for_approval_in_the_web_ui(tmp_path: Path) -> None:
    async with FakeOpenAIServer(travel_lead_policy, api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        cli = asyncio.ensure_future(
            run_cli("run", "travel", "Fly me.", "--arch", "lead", "--model", model, "--approve", "ui", home=tmp_path)
        )
        # Play the person at the web UI: wait for the booking to be pending, then approve it through the store.
        approved = await asyncio.to_thread(approve_when_pending, tmp_path / "runs.sqlite")
        code, out, err = await cli

    assert approved == "book_flight"
    assert code == 0, err
    assert "+ confirmed flight NS120" in out


def approve_when_pending(database: Path, timeout: float = 60.0) -> str:

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if database.exists():
            with RunStore(database) as store:
                pending = store.pending_approvals()
                if pending:
                    request = pending[0]
                    store.decide_approval(request.run_id, request.tool_call_id, True, "approved in the UI")
                    return request.tool
        time.sleep(0.2)
    raise AssertionError("no approval became pending")


# -- who asks: the travel app's own --traveller ------------------------------------------------------------


def test_the_travel_app_brings_its_traveller_option_and_retinue_run_knows_of_no_traveller(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "travel", "--help"])
    travel_help = capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    run_help = capsys.readouterr().out

    assert "options of travel:\n  --traveller ID_OR_EMAIL, --user ID_OR_EMAIL" in travel_help
    assert "--max-turns" in travel_help, "beside the options every application takes"
    assert "--max-turns" in run_help
    assert "travell" not in run_help.lower()


def first_prompt(request: RecordedRequest) -> str:
    return str(next(message["content"] for message in request.body["messages"] if message["role"] == "user"))


@pytest.mark.parametrize(
    ("who", "introduced"),
    [
        ((), "(I am Rafael Novak, traveller id T1001.)"),  # the example traveller
        (("--traveller", "leila.whitfield@example.com"), "(I am Leila Whitfield, traveller id T1002.)"),
        (("--traveller", "T1003"), "(I am Omar Rossi, traveller id T1003.)"),
        (("--user", "T1004"), "(I am Daniel Raman, traveller id T1004.)"),  # its name when every app had it
    ],
)
async def test_the_assistant_hears_who_asks_by_id_or_email(
    who: tuple[str, ...], introduced: str, tmp_path: Path
) -> None:
    async with FakeOpenAIServer(lambda request: Reply(text="Noted."), api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        code, _, err = await run_cli(
            "run", "travel", "Fly me.", *who, "--model", model, "--approve", "all", "--no-trace", home=tmp_path
        )

    assert code == 0, err
    assert first_prompt(server.requests[0]) == f"{introduced}\n\nFly me."


async def test_an_unknown_traveller_is_refused_before_the_model_is_asked(tmp_path: Path) -> None:
    async with FakeOpenAIServer(lambda request: Reply(text="Noted."), api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        code, _, err = await run_cli("run", "travel", "Fly me.", "--traveller", "nobody@example.com",
                                     "--model", model, "--approve", "all", home=tmp_path)  # fmt: skip

    assert code == 1
    assert "travel knows no traveller 'nobody@example.com': give --traveller an id or email it knows" in err
    assert server.requests == []


# -- durable runs ---------------------------------------------------------------------------------------

FLY = "Fly me SFO to New York on 12 December."


def bookings_of(home: Path, run_id: str) -> dict[str, Any]:
    """The bookings (and balances) a durable travel run has left in its world, kept beside the journal."""
    from retinue_travel.world import TravelWorld

    with TravelWorld.kept_in(home / "run-state" / run_id / "bookings.sqlite") as world:
        return world.snapshot()


def flights_booked(snapshot: dict[str, Any], flight: str = "NS120") -> int:
    return sum(booking["item"] == flight and booking["status"] == "confirmed" for booking in snapshot["bookings"])


async def test_a_durable_run_waits_for_an_approval_and_books_once_it_is_given(tmp_path: Path) -> None:
    async with FakeOpenAIServer(travel_lead_policy, api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        code, out, err = await run_cli(
            "run", "travel", FLY, "--arch", "lead", "--model", model, "--durable", "--run-id", "trip-1",
            "--approve", "later", home=tmp_path,
        )  # fmt: skip
        assert code == 0, err
        assert "waiting: travel-lead book_flight: decide with `retinue approve trip-1 " in err
        assert "No bookings were made or cancelled." in out
        asked_before = len(server.requests)

        code, listed, err = await run_cli("approve", "trip-1", home=tmp_path)
        assert code == 0, err
        approval_id, state = listed.split()[:2]
        assert state == "waiting" and '"flight_number": "NS120"' in listed
        code, out, err = await run_cli("approve", "trip-1", approval_id, "--yes", home=tmp_path)
        assert code == 0 and out.startswith("approved: travel-lead book_flight"), err
        code, runs, err = await run_cli("runs", "--journal", home=tmp_path)
        assert code == 0 and "decided (resumable)" in runs, err

        # Resumed as it was started (application, architecture, model): nothing to say but its id.
        code, out, err = await run_cli("resume", "trip-1", home=tmp_path)
        assert code == 0, err
        assert "+ confirmed flight NS120" in out
        assert len(server.requests) == asked_before + 1, "only the answer after the booking was asked again"
    assert flights_booked(bookings_of(tmp_path, "trip-1")) == 1


async def start_cli(*args: str, home: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "retinue", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={"RETINUE_HOME": str(home), "PATH": "/usr/bin:/bin", "OPENAI_COMPATIBLE_API_KEY": "test-key"},
    )  # fmt: skip


def started_calls(journal: Path, run_id: str, tool_name: str) -> list[str]:
    """The journal's slots for calls of `tool_name` in `run_id` that started (whose bodies were about to run)."""
    if not journal.exists():
        return []
    with contextlib.closing(sqlite3.connect(journal)) as connection:
        rows = connection.execute(
            "SELECT slot, body FROM entries WHERE run_id = ? AND slot LIKE 'start:%'", (run_id,)
        ).fetchall()
    return [slot for slot, body in rows if f'"name":"{tool_name}"' in body]


async def test_a_durable_run_killed_inside_a_booking_ends_with_the_bookings_of_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    async with FakeOpenAIServer(travel_lead_policy, api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        options = ["--arch", "lead", "--model", model, "--approve", "all", "--durable"]
        code, _, err = await run_cli("run", "travel", FLY, *options, "--run-id", "uninterrupted", home=tmp_path)
        assert code == 0, err
        expected = bookings_of(tmp_path, "uninterrupted")
        assert flights_booked(expected) == 1
        asked_uninterrupted = len(server.requests)

        child = await start_cli("run", "travel", FLY, *options, "--run-id", "killed", home=tmp_path)
        world_file = tmp_path / "run-state" / "killed" / "bookings.sqlite"
        while not world_file.exists():  # noqa: ASYNC110 - another process makes it
            await asyncio.sleep(0.01)
        # Another writer holds the bookings database: the booking, once started, waits inside the tool.
        with contextlib.closing(sqlite3.connect(world_file, isolation_level=None)) as other_writer:
            other_writer.execute("BEGIN IMMEDIATE")
            deadline = time.monotonic() + 60
            while not started_calls(tmp_path / "journal.sqlite", "killed", "book_flight"):
                assert time.monotonic() < deadline and child.returncode is None, "the child never began to book"
                await asyncio.sleep(0.01)
            child.kill()  # kill -9, inside book_flight
            await child.wait()
            other_writer.execute("ROLLBACK")
        assert flights_booked(bookings_of(tmp_path, "killed")) == 0

        code, out, err = await run_cli("run", "travel", *options, "--run-id", "killed", home=tmp_path)
        assert code == 0, err
        assert "+ confirmed flight NS120" in out
        assert bookings_of(tmp_path, "killed") == expected
        # Every model call of the killed process had been journalled: none was paid twice.
        assert len(server.requests) == 2 * asked_uninterrupted

        # Killed after the booking was made but before its result was journalled: made again with its key.
        with contextlib.closing(sqlite3.connect(tmp_path / "journal.sqlite")) as journal, journal:
            (slot,) = started_calls(tmp_path / "journal.sqlite", "killed", "book_flight")
            journal.execute("DELETE FROM entries WHERE run_id = 'killed' AND slot = ?", ("output:" + slot[6:],))
            journal.execute("UPDATE runs SET status = 'running' WHERE run_id = 'killed'")
        code, out, err = await run_cli("resume", "killed", home=tmp_path)
        assert code == 0, err
        assert bookings_of(tmp_path, "killed") == expected, "booked twice"


@pytest.mark.parametrize(
    "recorded",
    [
        {"options": {"traveller": "T9999"}},
        {"user": "T9999"},  # as `retinue run` recorded --traveller before applications declared their options
    ],
)
async def test_a_resumed_durable_run_asks_as_the_traveller_it_was_started_for(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    async with FakeOpenAIServer(travel_lead_policy, api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        code, _, err = await run_cli(
            "run", "travel", FLY, "--arch", "lead", "--model", model, "--traveller", "T1001", "--durable",
            "--run-id", "trip-1", "--approve", "later", home=tmp_path,
        )  # fmt: skip
        assert code == 0, err  # waiting for the booking's approval
        launch_file = tmp_path / "run-state" / "trip-1" / "launch.json"
        launch = json.loads(launch_file.read_text())
        assert launch == {"app": "travel", "architecture": "lead", "model": model, "options": {"traveller": "T1001"}}

        # Who the run asks for is what it resumes with: a traveller the app does not know shows it was read.
        for field in ("options", "user"):
            launch.pop(field, None)
        launch_file.write_text(json.dumps({**launch, **recorded}))
        code, _, err = await run_cli("resume", "trip-1", home=tmp_path)

    assert code == 1
    assert "travel knows no traveller 'T9999'" in err
