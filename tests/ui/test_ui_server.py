"""The UI's HTTP API: what it shows, how it is guarded, and approvals and replays through it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from retinue.errors import ConfigurationError
from retinue.messages import AssistantMessage, ToolResult, ToolResultsMessage
from retinue.result import RunResult
from retinue.store import RunStore, ToolCallRecord
from retinue.testing.scripted import ScriptedModel
from retinue.ui import UIServer
from store.trace_samples import SampleRun

KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"
POST_HEADERS = {"X-Retinue": "1"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RunStore]:
    with RunStore(tmp_path / "runs.sqlite") as store:
        yield store


@pytest.fixture
async def ui(store: RunStore) -> AsyncIterator[UIServer]:
    replies = ScriptedModel([AssistantMessage(text="A different answer.")], name="replayer")
    async with UIServer(store, port=0, poll_interval=0.05, resolve_model=lambda spec: replies) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, str]:
    async with http.get(url, **kwargs) as response:
        return response.status, await response.text()


async def _post(http: aiohttp.ClientSession, url: str, body: Any, headers: Any = POST_HEADERS) -> tuple[int, str]:
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.text()


async def test_the_api_serves_runs_trees_and_exact_calls_with_secrets_masked(
    store: RunStore, ui: UIServer, http: aiohttp.ClientSession
) -> None:
    result = await SampleRun(secret=KEY).run(store.recorder())
    await asyncio.to_thread(store.flush)
    base = ui.url

    status, page = await _get(http, base)
    assert status == 200 and "<title>retinue" in page
    status, body = await _get(http, base + "api/runs")
    (run,) = json.loads(body)["runs"]
    assert (run["run_id"], run["agent"], run["status"]) == (result.run_id, "lead", "completed")
    assert run["total_usage"]["cost_usd"] == pytest.approx(0.042)

    status, body = await _get(http, base + f"api/runs/{result.run_id}")
    assert status == 200
    data = json.loads(body)
    tree = data["tree"]
    assert [step["kind"] for step in tree["steps"]].count("tool_call") == 3
    assert tree["children"][0]["run"]["agent"] == "researcher"
    assert [entry["agent"] for entry in data["usage_by_agent"]] == ["lead", "researcher"]
    assert data["pending"] == []

    first_call = tree["steps"][0]["id"]
    status, body = await _get(http, base + f"api/calls/{first_call}")
    call = json.loads(body)["call"]
    assert (
        call["request"]["instructions"] == "You plan trips for the user. The booking service key is sk-ant-[REDACTED]."
    )
    assert [message["role"] for message in call["request"]["messages"]] == ["user"]

    every_response = page + body
    for path in ("api/runs", f"api/runs/{result.run_id}", *(f"api/calls/{n}" for n in range(1, 6))):
        every_response += (await _get(http, base + path))[1]
    assert KEY not in every_response
    assert await _get(http, base + "api/runs/nope") == (404, f"No run 'nope' in {store.path}.")
    assert await _get(http, base + "api/calls/77") == (404, f"No model call 77 in {store.path}.")
    assert (await _get(http, base + "api/calls/x7"))[0] == 404


async def test_a_click_in_the_ui_answers_the_agent_waiting_for_approval(
    store: RunStore, ui: UIServer, http: aiohttp.ClientSession
) -> None:
    sample = SampleRun()
    run = asyncio.create_task(sample.run(store.recorder(), approver=ui.approver()))
    pending = await _wait_for_pending(http, ui.url, store)
    assert (pending["agent"], pending["tool"], pending["arguments"]) == (
        "lead",
        "book_flight",
        {"destination": "Paris"},
    )
    assert not run.done()

    decision = {"run_id": pending["run_id"], "tool_call_id": pending["tool_call_id"], "approved": True}
    assert (await _post(http, ui.url + "api/approvals", decision, headers={}))[0] == 403  # no CSRF header
    assert (await _post(http, ui.url + "api/approvals", decision))[0] == 200
    assert (await _post(http, ui.url + "api/approvals", decision))[0] == 409  # answered already
    result = await asyncio.wait_for(run, 10)
    assert result.completed
    assert _booking_result(result).content.startswith("Booked a flight to Paris")


async def test_deny_in_the_ui_tells_the_model_it_was_not_approved(
    store: RunStore, ui: UIServer, http: aiohttp.ClientSession
) -> None:
    run = asyncio.create_task(SampleRun().run(store.recorder(), approver=ui.approver()))
    pending = await _wait_for_pending(http, ui.url, store)
    decision = {**{k: pending[k] for k in ("run_id", "tool_call_id")}, "approved": False, "reason": "too pricey"}
    assert (await _post(http, ui.url + "api/approvals", decision))[0] == 200
    result = await asyncio.wait_for(run, 10)
    denial = _booking_result(result)
    assert denial.is_error and "was not approved (too pricey)" in denial.content
    await asyncio.to_thread(store.flush)
    tree = store.get_run_tree(result.run_id)
    assert tree is not None
    booking = tree.steps[5]
    assert isinstance(booking, ToolCallRecord) and booking.approval is not None
    assert booking.approval.status == "denied"


async def test_an_unanswered_approval_times_out_as_a_denial(store: RunStore, ui: UIServer) -> None:
    result = await SampleRun().run(store.recorder(), approver=ui.approver(timeout=0.3))
    denial = _booking_result(result)
    assert denial.is_error and "nobody answered in the UI within 0.3 seconds" in denial.content


async def test_the_stream_pushes_the_run_list_and_the_selected_tree(
    store: RunStore, ui: UIServer, http: aiohttp.ClientSession
) -> None:
    result = await SampleRun().run(store.recorder())
    await asyncio.to_thread(store.flush)
    events: dict[str, Any] = {}
    async with http.get(ui.url + f"api/stream?run={result.run_id}") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        event = None
        async with asyncio.timeout(10):
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event is not None:
                    events[event] = json.loads(line.removeprefix("data: "))
                if {"runs", "tree"} <= set(events):
                    break
    assert events["runs"]["runs"][0]["run_id"] == result.run_id
    assert events["tree"]["tree"]["run"]["status"] == "completed"


async def test_a_replay_from_the_ui_returns_the_new_answer_and_the_diff(
    store: RunStore, ui: UIServer, http: aiohttp.ClientSession
) -> None:
    await SampleRun().run(store.recorder())
    await asyncio.to_thread(store.flush)
    status, body = await _post(http, ui.url + "api/calls/1/replay", {"instructions": "Be curt."})
    assert status == 200
    replay = json.loads(body)
    assert replay["model_id"] == "scripted:replayer"
    assert replay["answer"] == ["A different answer.", "[stop: end_turn]"]
    assert '-→ get_weather({"city": "Paris"})' in replay["diff"].splitlines()
    status, _ = await _post(http, ui.url + "api/calls/1/replay", {"tool_descriptions": {"nope": "x"}})
    assert status == 422
    assert (await _post(http, ui.url + "api/calls/1/replay", {"model": 3}))[0] == 400


async def test_the_page_s_scripts_are_served_and_no_other_file_is(ui: UIServer, http: aiohttp.ClientSession) -> None:
    for script in ("app.js", "svg.js", "timeline.js"):
        status, body = await _get(http, ui.url + script)
        assert status == 200 and '"use strict";' in body
    status, body = await _get(http, ui.url + "server.js")
    assert (status, body) == (404, "No script 'server.js'.")
    assert (await _get(http, ui.url + "static/app.js"))[0] == 404


async def test_without_a_token_only_loopback_host_names_are_answered(ui: UIServer, http: aiohttp.ClientSession) -> None:
    assert (await _get(http, ui.url + "api/runs"))[0] == 200
    status, _ = await _get(http, ui.url + "api/runs", headers={"Host": f"attacker.example:{ui.port}"})
    assert status == 403


async def test_with_a_token_every_request_needs_it(store: RunStore, http: aiohttp.ClientSession) -> None:
    token = "correct-horse-battery-staple"
    async with UIServer(store, port=0, token=token) as ui:
        base = f"http://127.0.0.1:{ui.port}/"
        assert ui.url == f"{base}?token={token}"
        assert (await _get(http, base + "api/runs"))[0] == 401
        assert (await _get(http, base + "?token=wrong-token-guess"))[0] == 401
        assert (await _get(http, base + "api/runs", headers={"Authorization": f"Bearer {token}"}))[0] == 200
        # unsafe=True: aiohttp's client (unlike a browser) keeps no cookies from IP-address hosts by default.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(ui.url, allow_redirects=False) as response:
                assert response.status == 302 and response.headers["Location"] == "/"
                assert "HttpOnly" in response.headers["Set-Cookie"]
            # The cookie it set is what the page's own requests carry.
            assert (await _get(browser, base + "api/runs"))[0] == 200
            assert (await _get(browser, base))[0] == 200


def test_it_refuses_to_listen_beyond_loopback_without_a_token(store: RunStore) -> None:
    with pytest.raises(ConfigurationError, match="without a token"):
        UIServer(store, host="0.0.0.0")
    with pytest.raises(ConfigurationError, match="without a token"):
        UIServer(store, host="192.168.1.20")
    with pytest.raises(ConfigurationError, match="at least 12 characters"):
        UIServer(store, host="0.0.0.0", token="short")
    UIServer(store, host="0.0.0.0", token="long-enough-token")
    UIServer(store, host="::1")
    UIServer(store, host="localhost")


def _booking_result(result: RunResult[str]) -> ToolResult:
    """What the lead's booking tool call returned (the last tool turn before the answer)."""
    turn = result.messages[-2]
    assert isinstance(turn, ToolResultsMessage)
    (booking,) = turn.results
    assert booking.name == "book_flight"
    return booking


async def _wait_for_pending(http: aiohttp.ClientSession, base: str, store: RunStore) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            runs = json.loads((await _get(http, base + "api/runs"))[1])["runs"]
            if runs:
                tree = json.loads((await _get(http, base + f"api/runs/{runs[0]['run_id']}"))[1])
                if tree["pending"]:
                    pending: dict[str, Any] = tree["pending"][0]
                    return pending
            await asyncio.sleep(0.05)
