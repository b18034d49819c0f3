"""`retinue run travel` end to end: the real CLI in a subprocess, a fake OpenAI server speaking the wire protocol."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

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
