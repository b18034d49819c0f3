"""OpenAIModel against an OpenAI-compatible server we did not write: llama-cpp-python's own.

The server runs the embedded model's GGUF file in a subprocess on a free
loopback port, so this checks our Chat Completions client (requests, streaming,
tool calls, tool results) against someone else's reading of the protocol.
It needs llama-cpp-python's server extra (fastapi, uvicorn, sse-starlette,
starlette-context, pydantic-settings).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from local_tools import WEATHER_TOOL, assert_valid_call

from retinue.messages import (
    AssistantMessage,
    ModelRequest,
    ModelSettings,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from retinue.models.local import find_weights
from retinue.models.openai import OpenAIModel
from retinue.models.pricing import Price

pytestmark = pytest.mark.local_model

# The wire protocol is under test, not the model: the smallest weights that answer sensibly.
SERVED_WEIGHTS = "qwen2.5-coder-0.5b"
SERVED_NAME = "qwen-0.5b"
ASSISTANT = "You are a helpful assistant."
# llama.cpp's server calls a tool only when the request names it; "auto" and
# "required" get plain text with a GGUF chat template like this model's.
NAMED_WEATHER_CHOICE = {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}


# llama-cpp-python's server, run as `python -m llama_cpp.server` would run it, but loading its model the way
# LocalModel does: without the AMX weight buffers that crash llama.cpp on CPUs that have AMX (this one does).
SERVE_ON_ANY_CPU = (
    "import runpy, llama_cpp\n"
    "from retinue.models.local_engine import without_extra_buffers_on_amx\n"
    "with without_extra_buffers_on_amx(llama_cpp):\n"
    "    runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with code {process.returncode} before serving")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    raise RuntimeError(f"llama_cpp.server did not answer within {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    port = _free_port()
    command = [
        sys.executable,
        "-c",
        SERVE_ON_ANY_CPU,
        "--model",
        str(find_weights(SERVED_WEIGHTS)),
        "--model_alias",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",
        "--seed",
        "0",
        "--verbose",
        "False",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        try:
            _wait_until_serving(process, base_url, timeout_s=90)
        except RuntimeError as exc:
            process.kill()
            _, stderr = process.communicate(timeout=10)
            raise RuntimeError(f"{exc}:\n{stderr.decode(errors='replace')[-2000:]}") from None
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def model_at(base_url: str) -> OpenAIModel:
    return OpenAIModel(SERVED_NAME, base_url=base_url, price=Price(0.0, 0.0))


def question(text: str, **settings: object) -> ModelRequest:
    return ModelRequest(ASSISTANT, [UserMessage(text)], [], ModelSettings(temperature=0.0, max_tokens=48, **settings))  # type: ignore[arg-type]


async def test_plain_answer(server_url: str) -> None:
    response = await model_at(server_url).request(question("What is the capital of France?"))

    assert "Paris" in response.message.text
    assert response.message.tool_calls == []
    assert response.stop_reason in ("end_turn", "max_tokens")
    assert response.usage.input_tokens > 10
    assert response.usage.output_tokens > 0
    assert response.model == f"openai:{SERVED_NAME}"


async def test_streamed_answer(server_url: str) -> None:
    pieces: list[str] = []
    response = await model_at(server_url).request(question("Name three colours."), on_text=pieces.append)

    assert len(pieces) > 3
    assert "".join(pieces) == response.message.text
    assert response.message.text.strip()


async def test_tool_call(server_url: str) -> None:
    request = ModelRequest(
        ASSISTANT,
        [UserMessage("What's the weather in Paris on 2025-06-01?")],
        [WEATHER_TOOL],
        ModelSettings(temperature=0.0, max_tokens=64, extra=NAMED_WEATHER_CHOICE),
    )
    response = await model_at(server_url).request(request)

    assert response.stop_reason == "tool_use"
    (call,) = response.message.tool_calls
    assert_valid_call(call, [WEATHER_TOOL])
    assert call.arguments["city"] == "Paris"


async def test_streamed_tool_call(server_url: str) -> None:
    request = ModelRequest(
        ASSISTANT,
        [UserMessage("What's the weather in Oslo on 2025-01-20?")],
        [WEATHER_TOOL],
        ModelSettings(temperature=0.0, max_tokens=64, extra=NAMED_WEATHER_CHOICE),
    )
    pieces: list[str] = []
    response = await model_at(server_url).request(request, on_text=pieces.append)

    (call,) = response.message.tool_calls
    assert_valid_call(call, [WEATHER_TOOL])
    assert call.arguments["city"] == "Oslo"
    assert "".join(pieces) == response.message.text


async def test_answer_after_a_tool_result(server_url: str) -> None:
    model = model_at(server_url)
    asked = UserMessage("What's the weather in Paris on 2025-06-01?")
    call_request = ModelRequest(
        ASSISTANT, [asked], [WEATHER_TOOL], ModelSettings(temperature=0.0, max_tokens=64, extra=NAMED_WEATHER_CHOICE)
    )
    (call,) = (await model.request(call_request)).message.tool_calls
    result = ToolResult(call.id, call.name, json.dumps({"forecast": "sunny", "celsius": 24}))
    follow_up = ModelRequest(
        ASSISTANT,
        [asked, AssistantMessage(tool_calls=[call]), ToolResultsMessage([result])],
        [WEATHER_TOOL],
        ModelSettings(temperature=0.0, max_tokens=64),
    )
    response = await model.request(follow_up)

    assert response.message.tool_calls == []
    assert response.message.text.strip()
