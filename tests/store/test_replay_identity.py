"""A recorded run remembers exactly which server answered it, and replays go back there.

A model on an OpenAI-compatible server is `openai:<model>@<base_url>`. The trace
used to keep only `openai:<model>`, so `retinue replay` and the UI's Replay
button sent the recorded conversation, and the user's OpenAI key, to OpenAI
instead of to the recorded server. The UI's replay endpoint also took any model
string at all, so any local process could have it send a key to a host of its
choosing; it now takes only the call's recorded model and the models the user
configured.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from retinue import Agent, cli
from retinue.errors import ConfigurationError
from retinue.messages import AssistantMessage
from retinue.models.http import close_sessions
from retinue.models.openai import OpenAIModel
from retinue.store import ModelCallRecord, RunStore, replay_call
from retinue.testing import FakeOpenAIServer
from retinue.testing.scripted import ScriptedModel
from retinue.ui import UIServer

POST_HEADERS = {"X-Retinue": "1"}


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real OpenAI key must never reach the fake; the compatible server has its own.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-0123456789abcdef")
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "test-key")
    # Should a replay still head for the public provider, it meets a closed local port, not the network.
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(["Recorded answer.", "Replayed answer.", "Replayed again."]) as fake:
        yield fake
    await close_sessions()


async def record_one_call(store: RunStore, server: FakeOpenAIServer) -> ModelCallRecord:
    model = OpenAIModel("qwen2.5", base_url=server.base_url)
    result = await Agent("helper", instructions="Answer briefly.", model=model).run("Hi", on_event=store.recorder())
    await asyncio.to_thread(store.flush)
    tree = store.get_run_tree(result.run_id)
    assert tree is not None
    (call,) = [step for step in tree.steps if isinstance(step, ModelCallRecord)]
    return call


async def test_a_run_on_a_compatible_server_is_recorded_with_its_base_url(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        call = await record_one_call(store, server)
        (run,) = store.list_runs()
    assert call.model_id == f"openai:qwen2.5@{server.base_url}"
    assert run.model_id == f"openai:qwen2.5@{server.base_url}"


async def test_replaying_the_recorded_model_goes_back_to_the_recorded_server(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        call = await record_one_call(store, server)
        result = await replay_call(store, call.id)
    assert result.response.message.text == "Replayed answer."
    assert len(server.requests) == 2
    assert server.requests[1].headers["Authorization"] == "Bearer test-key"


async def test_retinue_replay_goes_back_to_the_recorded_server(
    tmp_path: Path, server: FakeOpenAIServer, capsys: Any
) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        call = await record_one_call(store, server)
    code = await asyncio.to_thread(cli.main, ["replay", str(call.id), "--db", str(tmp_path / "runs.sqlite")])
    assert code == 0
    assert "Replayed answer." in capsys.readouterr().out
    assert len(server.requests) == 2


async def _replay_from_ui(ui: UIServer, call_id: int, body: dict[str, Any]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(ui.url + f"api/calls/{call_id}/replay", json=body, headers=POST_HEADERS) as response,
    ):
        return response.status, await response.text()


async def test_the_ui_replays_on_the_recorded_server(tmp_path: Path, server: FakeOpenAIServer) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        call = await record_one_call(store, server)
        async with UIServer(store, port=0) as ui:
            status, body = await _replay_from_ui(ui, call.id, {})
    assert status == 200, body
    assert json.loads(body)["model_id"] == f"openai:qwen2.5@{server.base_url}"
    assert len(server.requests) == 2


async def test_the_ui_refuses_to_replay_on_a_model_nobody_configured(tmp_path: Path, server: FakeOpenAIServer) -> None:
    resolved: list[str] = []

    def resolve(spec: str) -> ScriptedModel:
        resolved.append(spec)
        return ScriptedModel([AssistantMessage(text="ok")] * 2, name="replayer")

    with RunStore(tmp_path / "runs.sqlite") as store:
        call = await record_one_call(store, server)
        async with UIServer(store, port=0, resolve_model=resolve, models=["openai:gpt-4.1-mini"]) as ui:
            status, body = await _replay_from_ui(ui, call.id, {"model": "anthropic:claude@http://evil.example"})
            assert status == 400
            assert "anthropic:claude@http://evil.example" in body and "openai:gpt-4.1-mini" in body
            assert resolved == [], "a refused model is never even built"

            # The call's own model and the configured ones are fine.
            assert (await _replay_from_ui(ui, call.id, {"model": call.model_id}))[0] == 200
            assert (await _replay_from_ui(ui, call.id, {"model": "openai:gpt-4.1-mini"}))[0] == 200
    assert resolved == [call.model_id, "openai:gpt-4.1-mini"]


def make_it_an_older_store(path: Path) -> None:
    """Rewrite a store as a schema-1 retinue left it: calls to a compatible server named `openai:<model>`."""
    import sqlite3

    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE model_calls SET model_id = 'openai:qwen2.5'")
        connection.execute("UPDATE runs SET model_id = 'openai:qwen2.5'")
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        connection.execute("DELETE FROM meta WHERE key = 'last_call_without_server'")
    connection.close()


async def test_a_call_from_an_older_store_is_replayed_only_where_the_user_says(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "runs.sqlite"
    answers = ["Recorded answer.", "Replayed answer.", "Recorded after the upgrade.", "Replayed again."]
    async with FakeOpenAIServer(answers) as server:
        await _older_store_replays(path, server)
    await close_sessions()
    code = await asyncio.to_thread(cli.main, ["replay", "1", "--db", str(path)])
    assert code != 0 and "recorded by an older retinue" in capsys.readouterr().err


async def _older_store_replays(path: Path, server: FakeOpenAIServer) -> None:
    with RunStore(path) as store:
        old_call = await record_one_call(store, server)
    make_it_an_older_store(path)

    with RunStore(path) as store:
        # `openai:qwen2.5` may have gone to any compatible server: guessing OpenAI would send it the conversation.
        with pytest.raises(ConfigurationError, match=r"--model openai:qwen2\.5@<base_url>"):
            await replay_call(store, old_call.id)
        async with UIServer(store, port=0) as ui:
            status, body = await _replay_from_ui(ui, old_call.id, {"model": "openai:qwen2.5"})
        assert status == 400 and "Refusing to replay" in body

        # Named explicitly, it goes where it is told; calls recorded after the upgrade replay as before.
        told = await replay_call(store, old_call.id, model=OpenAIModel("qwen2.5", base_url=server.base_url))
        new_call = await record_one_call(store, server)
        again = await replay_call(store, new_call.id)
    assert old_call.id == 1
    assert told.response.message.text == "Replayed answer."
    assert again.response.message.text == "Replayed again."
    assert again.model_id == f"openai:qwen2.5@{server.base_url}"
