"""Which engine runs a LocalModel, and what the xllamacpp engine reads and renders before it decodes.

The tests marked local_model run the real weights on xllamacpp: several requests decoding at once, and
Ctrl-C still reaching Python once llama.cpp's server has started. The others need no engine running.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_tools import TOOLS

from retinue.errors import ConfigurationError
from retinue.messages import (
    AssistantMessage,
    ModelRequest,
    ModelSettings,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from retinue.models import local
from retinue.models.local import DEFAULT_LOCAL_MODEL, ENGINE_VARIABLE, LOCAL_WEIGHTS_PACKAGES, LocalModel, choose_engine
from retinue.models.local_chat_template import ChatTemplate
from retinue.models.local_gguf import read_model_metadata
from retinue.models.local_replies import HermesToolCalls, chat_messages
from retinue.models.local_weights import find_weights

needs_xllamacpp = pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp not installed")
needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python missing")


@pytest.fixture
def no_engine_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)


@pytest.fixture
def default_weights() -> Path:
    """The default model's GGUF file (joined from its chunk packages on first use)."""
    try:
        importlib.metadata.distribution(LOCAL_WEIGHTS_PACKAGES[DEFAULT_LOCAL_MODEL])
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the default model's weights are not installed")
    return find_weights(DEFAULT_LOCAL_MODEL)


@needs_llama_cpp
@needs_xllamacpp
@pytest.mark.usefixtures("no_engine_variable")
def test_xllamacpp_is_the_default_when_both_engines_are_installed() -> None:
    assert choose_engine() == "xllamacpp"
    assert LocalModel().engine_name == "xllamacpp"


@needs_llama_cpp
@pytest.mark.usefixtures("no_engine_variable")
def test_the_argument_or_the_variable_picks_llama_cpp_python(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LocalModel(engine="llama-cpp-python").engine_name == "llama-cpp-python"

    monkeypatch.setenv(ENGINE_VARIABLE, "llama-cpp-python")
    assert LocalModel().engine_name == "llama-cpp-python"


@needs_llama_cpp
@needs_xllamacpp
def test_the_argument_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_VARIABLE, "llama-cpp-python")
    assert LocalModel(engine="xllamacpp").engine_name == "xllamacpp"


@needs_llama_cpp
@pytest.mark.usefixtures("no_engine_variable")
def test_without_xllamacpp_llama_cpp_python_runs_the_model_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # as if the prebuilt engine were not installed
    local._log_fallback_once.cache_clear()

    with caplog.at_level(logging.INFO, logger="retinue.models"):
        assert choose_engine() == "llama-cpp-python"
        assert choose_engine() == "llama-cpp-python"

    assert [record.getMessage() for record in caplog.records] == [
        "xllamacpp is not installed: the local model runs on llama-cpp-python"
    ]


async def test_an_unknown_engine_is_refused_with_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"use one of \['llama-cpp-python', 'xllamacpp'\]"):
        LocalModel(engine="vllm")  # type: ignore[arg-type]

    monkeypatch.setenv(ENGINE_VARIABLE, "vllm")
    with pytest.raises(ConfigurationError, match=f"{ENGINE_VARIABLE}='vllm' is not an engine"):
        await LocalModel().load()


@needs_llama_cpp
async def test_several_slots_need_the_xllamacpp_engine() -> None:
    with pytest.raises(ConfigurationError, match="needs the xllamacpp engine"):
        await LocalModel(engine="llama-cpp-python", n_parallel=4).load()
    with pytest.raises(ConfigurationError, match="at least 1"):
        LocalModel(n_parallel=0)


def test_the_gguf_header_gives_the_chat_template_and_special_tokens(default_weights: Path) -> None:
    started = time.perf_counter()
    metadata = read_model_metadata(default_weights)

    assert metadata.architecture == "qwen2"
    assert metadata.chat_template is not None and "<tool_call>" in metadata.chat_template
    assert metadata.eos_token == "<|im_end|>"
    assert metadata.bos_token == "<|endoftext|>"
    assert time.perf_counter() - started < 5  # the header only, never the 1 GB of weights


def test_a_file_that_is_not_gguf_is_refused_with_its_path(tmp_path: Path) -> None:
    not_weights = tmp_path / "notes.gguf"
    not_weights.write_bytes(b"PK\x03\x04 a zip file")

    with pytest.raises(ConfigurationError, match=r"notes\.gguf is not a GGUF file"):
        read_model_metadata(not_weights)
    with pytest.raises(ConfigurationError, match="Cannot read"):
        read_model_metadata(tmp_path / "missing.gguf")


def _tool_conversation() -> ModelRequest:
    call = ToolCall("call_1", "get_weather", {"city": "Zürich", "date": "2025-06-01"})
    return ModelRequest(
        "You are a helpful assistant.",
        [
            UserMessage("What's the weather in Zürich on 2025-06-01?"),
            AssistantMessage(tool_calls=[call]),
            ToolResultsMessage([ToolResult("call_1", "get_weather", "Sunny, 24 °C")]),
        ],
        TOOLS,
        ModelSettings(),
    )


@needs_llama_cpp
def test_both_engines_render_the_same_prompt_with_the_models_own_template(default_weights: Path) -> None:
    import llama_cpp  # type: ignore[import-untyped]

    metadata = read_model_metadata(default_weights)
    assert metadata.chat_template is not None
    request = _tool_conversation()
    reply_format = HermesToolCalls(template_lists_tools=True)
    messages = chat_messages(request, reply_format, "You are a helpful assistant.")
    tools = reply_format.tools_for_template(TOOLS)

    ours = ChatTemplate(metadata.chat_template, bos_token=metadata.bos_token, eos_token=metadata.eos_token)
    theirs = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
        template=metadata.chat_template,
        bos_token=metadata.bos_token,
        eos_token=metadata.eos_token,
        add_generation_prompt=True,
    )

    rendered = ours(messages=messages, tools=tools).prompt
    assert rendered == theirs(messages=messages, tools=tools).prompt
    assert "<tools>" in rendered and "<tool_response>" in rendered and "Zürich" in rendered
    assert rendered.endswith("<|im_start|>assistant\n")


def test_a_template_that_raises_reports_its_message() -> None:
    template = ChatTemplate(
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations start with the user.') }}{% endif %}",
        bos_token="",
        eos_token="",
    )

    with pytest.raises(ValueError, match="Conversations start with the user"):
        template(messages=[{"role": "assistant", "content": "Hi"}])


# ---------------------------------------------------------------------------
# On the real weights, with xllamacpp
# ---------------------------------------------------------------------------


@pytest.mark.local_model
@needs_xllamacpp
async def test_requests_on_several_slots_decode_together() -> None:
    # Two agents asking at once: with slots, both replies stream at the same time instead of one after the other.
    model = LocalModel(engine="xllamacpp", n_parallel=4)
    await model.load()
    arrivals: dict[str, list[float]] = {"first": [], "second": []}

    async def ask(label: str, question: str) -> str:
        request = ModelRequest(
            "You are a helpful assistant.", [UserMessage(question)], [], ModelSettings(max_tokens=24)
        )
        response = await model.request(request, on_text=lambda _piece: arrivals[label].append(time.perf_counter()))
        return response.message.text

    first, second = await asyncio.gather(
        ask("first", "Count from one to twenty in words."), ask("second", "Name the planets of the solar system.")
    )

    assert first.strip() and second.strip()
    assert len(arrivals["first"]) > 3 and len(arrivals["second"]) > 3
    # Each reply was still streaming when the other's text began to arrive.
    assert arrivals["second"][0] < arrivals["first"][-1]
    assert arrivals["first"][0] < arrivals["second"][-1]


# A fresh interpreter, because signal handlers belong to the whole process: in the test process, any earlier
# test (or engine) that set a handler would decide the outcome.
_INTERRUPT_AFTER_LOAD = """
import asyncio, os, signal, time
# As at a terminal: started in the background by a shell (as CI may be), the child would inherit SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
from retinue.models.local import LocalModel
asyncio.run(LocalModel(engine="xllamacpp", n_parallel=4).load())
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
os._exit(0)  # the server thread may abort a normal interpreter exit
"""


@pytest.mark.local_model
@needs_xllamacpp
def test_ctrl_c_still_reaches_python_once_the_server_has_started() -> None:
    # llama.cpp's server takes SIGINT for itself when it starts; the engine gives it back to Python.
    child = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_AFTER_LOAD], capture_output=True, text=True, timeout=300, check=False
    )

    assert child.stdout.strip() == "KeyboardInterrupt", child.stderr[-2000:]
