"""The models resolved from model strings are kept for the strings used most recently, and only for them.

A long-lived server that builds a model string per request (each user's own
server, say) must not keep a model for every string it ever saw; and a
model the cache forgets may be in use by a running agent, which must not
notice.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections import OrderedDict

import pytest

from retinue import Agent
from retinue.messages import ModelRequest, ModelResponse
from retinue.models import OpenAIModel, resolve
from retinue.models.http import shared_session
from retinue.models.resolve import Provider, close_resolved_models, resolve_model
from retinue.testing import FakeOpenAIServer, RecordedRequest, ScriptedModel


class ClosableModel:
    """A model that counts how often it was closed (what a provider's model holding a client of its own does)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = 0

    @property
    def model_id(self) -> str:
        return f"closable:{self.name}"

    async def request(self, request: ModelRequest, on_text: object = None) -> ModelResponse:
        return await ScriptedModel(["ok"]).request(request)

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "_cache", OrderedDict())
    monkeypatch.setattr(resolve, "_forgotten", weakref.WeakSet())
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "test-key")
    closable = Provider(prefix="closable", build=lambda name, base_url: ClosableModel(name), forms=("'closable:<x>'",))
    monkeypatch.setitem(resolve._providers, "closable", closable)


def test_a_string_resolved_again_gets_the_same_model() -> None:
    assert resolve_model("openai:gpt-4.1") is resolve_model("openai:gpt-4.1")


def test_the_cache_keeps_only_the_most_recently_used_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "MODEL_CACHE_SIZE", 3)
    first, second, third = (resolve_model(f"openai:gpt-4.1@http://10.0.0.{n}/v1") for n in (1, 2, 3))
    assert resolve_model("openai:gpt-4.1@http://10.0.0.1/v1") is first  # used again: now the most recent
    resolve_model("openai:gpt-4.1@http://10.0.0.4/v1")  # one too many: the least recently used goes
    assert resolve_model("openai:gpt-4.1@http://10.0.0.1/v1") is first
    assert resolve_model("openai:gpt-4.1@http://10.0.0.3/v1") is third
    assert resolve_model("openai:gpt-4.1@http://10.0.0.2/v1") is not second  # forgotten, so built anew
    assert len(resolve._cache) == 3


def test_a_server_naming_a_new_string_per_request_keeps_a_bounded_number_of_models() -> None:
    held = [weakref.ref(resolve_model(f"openai:user-{n}@http://10.0.0.1/v1")) for n in range(1000)]
    gc.collect()
    assert len(resolve._cache) == resolve.MODEL_CACHE_SIZE
    assert sum(ref() is not None for ref in held) == resolve.MODEL_CACHE_SIZE  # the forgotten ones are freed


async def test_an_agent_running_on_a_model_the_cache_forgets_finishes_undisturbed() -> None:
    on_the_wire = asyncio.Event()

    def answer(request: RecordedRequest) -> str:
        on_the_wire.set()
        return "Answered."

    async with FakeOpenAIServer(answer, latency_ms=300) as server:
        agent = Agent("helper", model=f"openai:qwen2.5@{server.base_url}")
        running = asyncio.create_task(agent.run("Hi"))
        await on_the_wire.wait()
        session = shared_session()
        for n in range(resolve.MODEL_CACHE_SIZE):
            resolve_model(f"openai:other-{n}@{server.base_url}")
        assert agent.resolved_model() not in resolve._cache.values()
        result = await running
        assert result.output == "Answered."
        assert shared_session() is session  # forgetting a model closed nothing the loop shares
        assert (await agent.run("Again")).output == "Answered."  # and the agent keeps its model


async def test_forgetting_closes_nothing_and_a_later_close_still_reaches_a_held_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resolve, "MODEL_CACHE_SIZE", 1)
    held = resolve_model("closable:a")
    assert isinstance(held, ClosableModel)
    newer = resolve_model("closable:b")  # forgets "closable:a"
    assert isinstance(newer, ClosableModel)
    assert held.closed == 0  # an agent may be in the middle of a request on it
    await close_resolved_models()
    assert (held.closed, newer.closed) == (1, 1)
    await close_resolved_models()
    assert (held.closed, newer.closed) == (2, 2)  # still held, so still closed with the rest


async def test_a_forgotten_model_nothing_holds_is_not_kept_for_closing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "MODEL_CACHE_SIZE", 1)
    gone = weakref.ref(resolve_model("closable:a"))
    resolve_model("closable:b")
    gc.collect()
    assert gone() is None
    await close_resolved_models()


def test_model_instances_are_not_cached() -> None:
    model = OpenAIModel("gpt-4.1", api_key="k")
    assert resolve_model(model) is model
    assert len(resolve._cache) == 0
