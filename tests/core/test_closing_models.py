"""Closing a model's connections in an event loop of your own, and the README's testing imports.

The HTTP models share one pooled session per event loop. `agent.run_sync`
closes it before its loop ends; code that runs `await agent.run(...)` in its
own loop closes it with `await retinue.close_model(agent.resolved_model())`
(any model may be passed; the model stays usable afterwards). Left open, the
session is reported as unclosed when the interpreter collects it.
"""

import os
import subprocess
import sys
import textwrap

from retinue import Agent, close_model
from retinue.testing import FakeOpenAIServer, ScriptedModel, call

PROGRAM = textwrap.dedent(
    """
    import asyncio, sys
    from retinue import Agent, close_model
    from retinue.testing import FakeOpenAIServer

    async def main(close: bool) -> None:
        async with FakeOpenAIServer(["hello", "hello again"]) as server:
            agent = Agent("a", model=f"openai:fake@{server.base_url}")
            for prompt in ("hi", "hi again"):
                result = await agent.run(prompt)
                assert result.output.startswith("hello"), result.describe()
            if close:
                await close_model(agent.resolved_model())

    asyncio.run(main(close=sys.argv[1] == "close"))
    print("ran")
    """
)


def run_program(mode: str) -> str:
    finished = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", PROGRAM, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPENAI_COMPATIBLE_API_KEY": "test-key"},
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "ran"
    return finished.stderr


def test_close_model_after_async_runs_leaves_no_unclosed_session() -> None:
    assert "Unclosed" not in run_program("close")


def test_without_close_model_the_session_is_reported_unclosed() -> None:
    # What close_model is for: the same program that does not call it.
    assert "Unclosed client session" in run_program("leave-open")


async def test_a_closed_model_stays_usable() -> None:
    async with FakeOpenAIServer(["one", "two"], api_key=None) as server:
        agent = Agent("a", model=f"openai:fake@{server.base_url}")
        assert (await agent.run("first")).output == "one"
        await close_model(agent.resolved_model())
        assert (await agent.run("second")).output == "two"
        await close_model(agent.resolved_model())


async def test_close_model_accepts_a_model_with_nothing_to_close() -> None:
    await close_model(ScriptedModel(["unused"]))


def test_call_is_importable_from_retinue_testing_as_the_readme_shows() -> None:
    scripted = call("get_weather", city="Paris", date="2026-12-01")
    assert (scripted.name, scripted.arguments) == ("get_weather", {"city": "Paris", "date": "2026-12-01"})
