"""The UI's durable runs: the journal's runs in their state, and resuming an interrupted one from the page's API.

The interrupted run is real: a child process starts it durably, journalled in a SQLite file and traced in the
store, and is killed with SIGKILL inside its booking, the model's first answer journalled, the booking's
result not. Every model request the agent's model serves is a line of served.log and every booking a line of
effects.log, written with O_APPEND before the call returns, so that a kill loses none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from retinue import Agent, IdempotencyKey, tool
from retinue.cli import main
from retinue.journal import SQLiteJournal
from retinue.messages import AssistantMessage
from retinue.store import RunStore
from retinue.testing import FakeOpenAIServer, FakeToolCall, RecordedRequest, Reply, ScriptItem
from retinue.testing.scripted import ScriptedModel, call
from retinue.ui import UIServer
from retinue_travel.world import TravelWorld

KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"
POST_HEADERS = {"X-Retinue": "1"}
RUN_ID = "trip-42"
PROMPT = "book car"

AGENT_MODULE = '''
"""A booking agent whose model requests and bookings are lines of files in $UI_DURABLE_WORKDIR.

Run as a script, it starts a durable run and books slowly ($UI_DURABLE_BOOK_SECONDS), to be killed inside:
    python ui_durable_agents.py JOURNAL STORE RUN_ID PROMPT
"""
import asyncio
import os
import sys
from pathlib import Path

from retinue import Agent, IdempotencyKey, tool
from retinue.messages import AssistantMessage, UserMessage
from retinue.testing.scripted import ScriptedModel, call


def append_line(name, line):
    path = Path(os.environ["UI_DURABLE_WORKDIR"]) / name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, (line + "\\n").encode())
    finally:
        os.close(descriptor)


def read_lines(name):
    path = Path(os.environ["UI_DURABLE_WORKDIR"]) / name
    return path.read_text().splitlines() if path.exists() else []


def prompt_of(request):
    return next(message.content for message in request.messages if isinstance(message, UserMessage))


def turn_of(request):
    return sum(isinstance(message, AssistantMessage) for message in request.messages)


def reply(request):
    # By what the request holds, not by a place in a script: a resumed process answers as the killed one would.
    item = prompt_of(request).removeprefix("book ")
    return call("book", item=item) if turn_of(request) == 0 else "booked " + item


class CountingModel(ScriptedModel):
    async def request(self, request, on_text=None):
        response = await super().request(request, on_text)
        append_line("served.log", f"{prompt_of(request)} {turn_of(request)}")
        return response


@tool(effect="write", idempotent=True)
async def book(item: str, key: IdempotencyKey) -> str:
    """Book an item; booking it again with the same key changes nothing.

    Args:
        item: What to book.
    """
    if not any(line.endswith(" " + key) for line in read_lines("effects.log")):
        append_line("effects.log", f"book {item} {key}")
    await asyncio.sleep(float(os.environ.get("UI_DURABLE_BOOK_SECONDS", "0")))
    return "booked " + item


def booker():
    return Agent("booker", model=CountingModel(reply, name="booker-model", cost_per_call=0.001), tools=[book])


if __name__ == "__main__":
    from retinue.store import RunStore

    journal, store, run_id, prompt = sys.argv[1:5]
    with RunStore(store) as trace_store:
        asyncio.run(booker().start(prompt, journal=journal, run_id=run_id, on_event=trace_store.recorder()))
'''


@dataclass
class Workdir:
    """Where the runs of a test keep their journal, trace store and counted effects."""

    path: Path

    @property
    def journal(self) -> Path:
        return self.path / "journal.sqlite"

    @property
    def store(self) -> Path:
        return self.path / "runs.sqlite"

    def lines(self, name: str) -> list[str]:
        file = self.path / name
        return file.read_text().splitlines() if file.exists() else []


def agent_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workdir:
    """`tmp_path` with the booking agent's module in it, importable here and counting into files there."""
    (tmp_path / "ui_durable_agents.py").write_text(textwrap.dedent(AGENT_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("UI_DURABLE_WORKDIR", str(tmp_path))
    return Workdir(tmp_path)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workdir:
    return agent_workdir(tmp_path, monkeypatch)


def booker() -> Agent[Any]:
    import ui_durable_agents  # type: ignore[import-not-found]

    agent: Agent[Any] = ui_durable_agents.booker()
    return agent


class BookingChild:
    """The run RUN_ID in a child process, caught inside its booking (which takes a minute there)."""

    def __init__(self, workdir: Workdir, run_id: str = RUN_ID, prompt: str = PROMPT) -> None:
        script = workdir.path / "ui_durable_agents.py"
        command = [sys.executable, str(script), str(workdir.journal), str(workdir.store), run_id, prompt]
        environment = {**os.environ, "UI_DURABLE_BOOK_SECONDS": "60"}
        self.process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = ""
        deadline = time.monotonic() + 30
        while not (self._booking(workdir, prompt) and self._traced(workdir, run_id)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"the child never got to its booking: {self.stderr}")
            time.sleep(0.01)

    @staticmethod
    def _booking(workdir: Workdir, prompt: str) -> bool:
        return any(line.startswith(f"book {prompt.removeprefix('book ')} ") for line in workdir.lines("effects.log"))

    @staticmethod
    def _traced(workdir: Workdir, run_id: str) -> bool:
        """Whether the child's trace holds the booking yet: the store writes in the background."""
        try:
            with contextlib.closing(sqlite3.connect(workdir.store)) as connection:
                found = connection.execute(
                    "SELECT 1 FROM tool_calls WHERE run_id = ? AND name = 'book'", (run_id,)
                ).fetchone()
        except sqlite3.Error:  # not created yet
            return False
        return found is not None

    def kill(self) -> None:
        """kill -9: the process writes nothing on its way out."""
        self.process.kill()
        _, stderr = self.process.communicate()
        self.stderr = stderr.decode()


def kill_inside_booking(workdir: Workdir) -> Workdir:
    """The journal and trace store of `workdir` with RUN_ID interrupted: its process killed inside its booking."""
    BookingChild(workdir).kill()
    return workdir


@pytest.fixture
def killed_run(workdir: Workdir) -> Workdir:
    return kill_inside_booking(workdir)


@pytest.fixture
async def store(workdir: Workdir) -> AsyncIterator[RunStore]:
    with RunStore(workdir.store) as store:
        yield store


@pytest.fixture
async def ui(store: RunStore, workdir: Workdir) -> AsyncIterator[UIServer]:
    async with UIServer(store, port=0, poll_interval=0.05, journal=workdir.journal, agents=[booker()]) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return json.loads(await response.text())


async def post(http: aiohttp.ClientSession, url: str, **options: Any) -> tuple[int, str]:
    async with http.post(url, json={}, **{"headers": POST_HEADERS, **options}) as response:
        return response.status, await response.text()


async def wait_for_state(http: aiohttp.ClientSession, ui: UIServer, run_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        run: dict[str, Any] = await get_json(http, ui.url + f"api/durable/{run_id}")
        if run["state"] == state:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run['state']}, never {state}"
        await asyncio.sleep(0.05)


# -- seeing them ------------------------------------------------------------------------------------


async def test_the_view_shows_a_killed_run_interrupted_and_a_finished_one_with_secrets_masked(
    killed_run: Workdir, store: RunStore, ui: UIServer, http: aiohttp.ClientSession
) -> None:
    finished = await booker().start(f"book hotel {KEY}", journal=killed_run.journal, run_id="finished")
    assert finished.completed

    listing = await get_json(http, ui.url + "api/durable")
    assert listing["journal"] == str(killed_run.journal) and listing["problem"] is None
    runs = {run["run_id"]: run for run in listing["runs"]}
    assert list(runs) == ["finished", RUN_ID], "newest first"
    interrupted = runs[RUN_ID]
    assert (interrupted["state"], interrupted["agent"]) == ("interrupted", "booker")
    assert "Its process died (or was killed) before the run ended" in interrupted["note"]
    assert interrupted["prompt"] == PROMPT
    assert interrupted["turns"] == 1 and interrupted["paid"]["cost_usd"] == pytest.approx(0.001)
    assert interrupted["resumable"] and interrupted["resume_by"] == "agent 'booker', given with --agent"
    assert interrupted["traced"], "the killed child recorded its trace too"
    assert interrupted["started_at"] <= interrupted["updated_at"]
    done = runs["finished"]
    assert (done["label"], done["turns"], done["resumable"]) == ("finished (completed)", 2, False)
    assert not done["traced"], "started without a recorder"
    assert done["prompt"] == "book hotel sk-ant-[REDACTED]"

    detail = await get_json(http, ui.url + "api/durable/finished")
    assert detail["prompt"] == "book hotel sk-ant-[REDACTED]"
    assert detail["approvals"] == [] and detail["definition_changes"] == []
    async with http.get(ui.url + "api/durable/finished") as response:
        assert KEY not in await response.text()
    async with http.get(ui.url + "api/durable/nope") as response:
        assert response.status == 404 and "No durable run 'nope'" in await response.text()


async def test_without_a_journal_the_view_says_how_to_get_one_and_creates_none(
    store: RunStore, workdir: Workdir, http: aiohttp.ClientSession
) -> None:
    missing = workdir.path / "nowhere.sqlite"
    async with UIServer(store, port=0, journal=missing) as ui:
        listing = await get_json(http, ui.url + "api/durable")
        assert listing["runs"] == []
        assert f"No journal at {missing} yet" in listing["problem"]
        assert "`retinue run APP --durable`" in listing["problem"]
        status, text = await post(http, ui.url + f"api/durable/{RUN_ID}/resume")
        assert status == 404 and "No journal at" in text
        assert not missing.exists()

        # The journal appears once a durable run writes it: the view finds it then.
        await booker().start(PROMPT, journal=missing, run_id="later")
        listing = await get_json(http, ui.url + "api/durable")
        assert listing["problem"] is None and [run["run_id"] for run in listing["runs"]] == ["later"]


# -- resuming them ----------------------------------------------------------------------------------


async def test_resume_finishes_the_killed_run_live_in_the_trace_paying_no_recorded_call_twice(
    killed_run: Workdir, store: RunStore, ui: UIServer, http: aiohttp.ClientSession
) -> None:
    assert killed_run.lines("served.log") == ["book car 0"]
    assert store.get_run(RUN_ID) is not None and store.get_run(RUN_ID).status == "interrupted"  # type: ignore[union-attr]

    status, text = await post(http, ui.url + f"api/durable/{RUN_ID}/resume")
    assert status == 202, text
    assert json.loads(text)["run_id"] == RUN_ID

    run = await wait_for_state(http, ui, RUN_ID, "done")
    assert run["label"] == "finished (completed)"
    assert run["resumed_here"].startswith("booker: completed after 2 turns")
    assert "(1 replayed from the journal)" in run["resumed_here"]
    # The first answer came from the journal: each turn was asked of the model once, over both processes.
    assert killed_run.lines("served.log") == ["book car 0", "book car 1"]
    assert (run["turns"], run["replayed"]["requests"]) == (2, 1)
    (booking,) = killed_run.lines("effects.log")  # booked again with its key: the same booking, not another
    assert booking.startswith("book car ")
    with SQLiteJournal(killed_run.journal) as journal:
        assert journal.get_run(RUN_ID).status == "completed"  # type: ignore[union-attr]

    # Its events went to the trace store: the Runs page shows the same run, finished.
    store.flush()
    trace = await get_json(http, ui.url + f"api/runs/{RUN_ID}")
    assert trace["tree"]["run"]["status"] == "completed"
    assert trace["tree"]["run"]["output"] == "booked car"

    status, text = await post(http, ui.url + f"api/durable/{RUN_ID}/resume")
    assert status == 409 and f"Run {RUN_ID} has finished (completed): there is nothing to resume" in text


@dataclass
class Seat:
    """What the payer's tools act on: `entered` once it holds the seat, which it keeps until `held`."""

    entered: asyncio.Event
    held: asyncio.Event
    paid: list[str]


def payer(seat: Seat) -> Agent[Any]:
    """An agent that holds a seat, then pays for it, which needs a person's approval."""

    @tool(effect="write", idempotent=True)
    async def hold(number: str, key: IdempotencyKey) -> str:
        """Hold a seat.

        Args:
            number: Which seat.
        """
        seat.entered.set()
        await seat.held.wait()
        return f"held {number}"

    @tool(effect="write", requires_approval=True)
    def pay(number: str) -> str:
        """Pay for a held seat.

        Args:
            number: Which seat.
        """
        seat.paid.append(number)
        return f"paid {number}"

    def reply(request: Any) -> Any:
        turn = sum(isinstance(message, AssistantMessage) for message in request.messages)
        return [call("hold", number="12A"), call("pay", number="12A"), "seat 12A is yours"][turn]

    return Agent("payer", model=ScriptedModel(reply), tools=[hold, pay])


async def test_a_resumed_run_asks_its_approvals_on_the_page(
    workdir: Workdir, store: RunStore, http: aiohttp.ClientSession
) -> None:
    seat = Seat(asyncio.Event(), asyncio.Event(), [])
    cut_off = asyncio.ensure_future(payer(seat).start("a seat", journal=workdir.journal, run_id="seat"))
    await seat.entered.wait()
    cut_off.cancel()  # inside `hold`: the run records "cancelled"
    with pytest.raises(asyncio.CancelledError):
        await cut_off
    seat.held.set()

    async with UIServer(store, port=0, poll_interval=0.05, journal=workdir.journal, agents=[payer(seat)]) as ui:
        assert (await get_json(http, ui.url + "api/durable/seat"))["note"].startswith("Its process was cancelled")
        status, text = await post(http, ui.url + "api/durable/seat/resume")
        assert status == 202, text
        deadline = time.monotonic() + 10
        while True:  # the trace store writes in the background
            async with http.get(ui.url + "api/runs/seat") as response:
                pending = json.loads(await response.text())["pending"] if response.status == 200 else []
            if pending:
                break
            assert time.monotonic() < deadline, "the payment never asked for approval in the page"
            await asyncio.sleep(0.05)
        (approval,) = pending
        assert approval["tool"] == "pay" and seat.paid == []
        decision = {"run_id": "seat", "tool_call_id": approval["tool_call_id"], "approved": True}
        async with http.post(ui.url + "api/approvals", json=decision, headers=POST_HEADERS) as response:
            assert response.status == 200, await response.text()
        run = await wait_for_state(http, ui, "seat", "done")
    assert run["label"] == "finished (completed)" and seat.paid == ["12A"]


async def test_two_uis_resuming_one_run_at_once_run_it_once(
    killed_run: Workdir, store: RunStore, ui: UIServer, http: aiohttp.ClientSession
) -> None:
    async with UIServer(store, port=0, journal=killed_run.journal, agents=[booker()]) as other:
        statuses = await asyncio.gather(
            post(http, ui.url + f"api/durable/{RUN_ID}/resume"),
            post(http, other.url + f"api/durable/{RUN_ID}/resume"),
            post(http, ui.url + f"api/durable/{RUN_ID}/resume"),
        )
        assert sorted(status for status, _ in statuses) == [202, 409, 409], statuses
        # Refused for this UI's own resume, for the lease the other UI holds, or for the run it already finished.
        refusals = ("resumed by this UI already", "is running", "Another process took run", "has finished")
        for status, text in statuses:
            assert status == 202 or any(reason in text for reason in refusals), text
        await wait_for_state(http, ui, RUN_ID, "done")
    assert killed_run.lines("served.log") == ["book car 0", "book car 1"]
    assert len(killed_run.lines("effects.log")) == 1


async def test_a_run_held_by_a_live_process_is_refused_and_one_of_an_unknown_agent_names_the_option(
    workdir: Workdir, store: RunStore, http: aiohttp.ClientSession
) -> None:
    child = BookingChild(workdir)
    try:
        async with UIServer(store, port=0, journal=workdir.journal) as ui:  # given no agent
            run = await get_json(http, ui.url + f"api/durable/{RUN_ID}")
            assert run["state"] == "running" and "A live process holds it" in run["note"]
            status, text = await post(http, ui.url + f"api/durable/{RUN_ID}/resume")
            assert status == 409 and f"Run {RUN_ID} is running: a live process holds its lease" in text

            child.kill()
            run = await get_json(http, ui.url + f"api/durable/{RUN_ID}")
            assert run["state"] == "interrupted"
            assert "start it with `retinue ui --agent MODULE:NAME`" in run["resume_problem"]
            status, text = await post(http, ui.url + f"api/durable/{RUN_ID}/resume")
            assert status == 400
            assert "This UI does not know agent 'booker'" in text and "--agent MODULE:NAME" in text
    finally:
        if child.process.poll() is None:
            child.kill()
    assert workdir.lines("served.log") == ["book car 0"], "nothing was resumed"


async def test_an_agent_defined_otherwise_is_refused_and_leaves_the_run_to_others(
    killed_run: Workdir, store: RunStore, http: aiohttp.ClientSession
) -> None:
    changed = booker().override(instructions="Book faster.")
    async with UIServer(store, port=0, journal=killed_run.journal, agents=[changed]) as ui:
        status, text = await post(http, ui.url + f"api/durable/{RUN_ID}/resume")
        assert status == 409
        assert f"run {RUN_ID} was started with another definition: the instructions of agent 'booker' changed" in text
        run = await get_json(http, ui.url + f"api/durable/{RUN_ID}")
        assert run["state"] == "interrupted", "the lease taken to resume it was given back"
    assert killed_run.lines("served.log") == ["book car 0"], "nothing was resumed"


async def test_with_a_token_the_durable_api_needs_it(
    killed_run: Workdir, store: RunStore, http: aiohttp.ClientSession
) -> None:
    token = "correct-horse-battery-staple"
    async with UIServer(store, port=0, token=token, journal=killed_run.journal, agents=[booker()]) as ui:
        base = ui.url.split("?")[0]
        for path in ("api/durable", f"api/durable/{RUN_ID}"):
            async with http.get(base + path) as response:
                assert response.status == 401
        status, _ = await post(http, base + f"api/durable/{RUN_ID}/resume")
        assert status == 401
        status, _ = await post(http, base + f"api/durable/{RUN_ID}/resume", headers={"Authorization": "Bearer nope"})
        assert status == 401
        async with http.get(base + "api/durable", headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
    assert killed_run.lines("served.log") == ["book car 0"], "nothing was resumed"


def flight_booker(request: RecordedRequest) -> ScriptItem:
    """The travel lead as a fake OpenAI model: it books the flight it was asked for (for Leila, T1002), then answers."""
    if request.tool_result_count() == 0:
        booking = {
            "traveller_id": "T1002",
            "flight_number": "NS120",
            "date": "2026-12-12",
            "cabin": "economy",
            "payment_method": "card",
        }
        return Reply(tool_calls=[FakeToolCall("book_flight", booking)])
    return Reply(text="Booked NS120 SFO-JFK on 2026-12-12.")


async def test_a_travel_run_is_resumed_as_it_was_started_with_no_agent_given(
    tmp_path: Path, store: RunStore, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of `retinue run travel --durable` needs no --agent: its launch record says how it was started
    (application, architecture, model, the app's own options), and the UI rebuilds it so once it may go on."""
    home = tmp_path / "home"
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "test-key")
    async with FakeOpenAIServer(flight_booker, api_key="test-key") as server:
        model = f"openai:fake-model@{server.base_url}"
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "retinue", "run", "travel", "Fly me SFO to New York on 12 December.",
            "--arch", "lead", "--model", model, "--traveller", "leila.whitfield@example.com",
            "--durable", "--run-id", "trip-1", "--approve", "later", "--no-trace",
            env={**os.environ, "RETINUE_HOME": str(home)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(child.communicate(), timeout=120)
        assert child.returncode == 0, stderr.decode()
        asked_before = len(server.requests)

        journal = home / "journal.sqlite"
        async with UIServer(store, port=0, journal=journal) as ui:  # given no agent: the launch record says
            run = await get_json(http, ui.url + "api/durable/trip-1")
            assert (run["state"], run["label"]) == ("waiting", "waiting for approval (1)")
            (approval,) = run["approvals"]
            assert approval["tool"] == "book_flight" and approval["arguments"]["flight_number"] == "NS120"
            assert approval["decide"] == f"retinue approve trip-1 {approval['approval_id']} --journal {journal} --yes"
            status, text = await post(http, ui.url + "api/durable/trip-1/resume")
            assert status == 409 and "waits for approval: decide with `retinue approve trip-1`" in text

            with SQLiteJournal(journal) as decided:
                await decided.decide("trip-1", approval["approval_id"], approved=True, by="ana")
            run = await get_json(http, ui.url + "api/durable/trip-1")
            assert run["state"] == "resumable"
            resumed_as = "retinue run travel --arch lead --traveller leila.whitfield@example.com, as it was started"
            assert run["resume_by"] == resumed_as

            status, text = await post(http, ui.url + "api/durable/trip-1/resume")
            assert status == 202, text
            run = await wait_for_state(http, ui, "trip-1", "done")
            assert run["label"] == "finished (completed)"
            assert run["approvals"][0]["approved"] is True and run["approvals"][0]["decided_by"] == "ana"
        assert len(server.requests) == asked_before + 1, "only the answer after the booking was asked again"

    with TravelWorld.kept_in(home / "run-state" / "trip-1" / "bookings.sqlite") as world:
        bookings = world.snapshot()["bookings"]
    confirmed = [booking for booking in bookings if booking["item"] == "NS120" and booking["status"] == "confirmed"]
    assert len(confirmed) == 1


# -- `retinue ui` ----------------------------------------------------------------------------------


def test_retinue_ui_says_in_one_line_which_agent_it_cannot_load(
    workdir: Workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = ["--journal", str(workdir.journal), "--db", str(workdir.store), "--port", "0"]
    assert main(["ui", *journal, "--agent", "no_such_module:agent"]) == 1
    assert "cannot import no_such_module" in capsys.readouterr().err
    assert main(["ui", *journal, "--agent", "ui_durable_agents:booker", "--agent", "ui_durable_agents:booker"]) == 1
    assert "two of the agents given have the same name (booker, booker)" in capsys.readouterr().err
