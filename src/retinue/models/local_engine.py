"""llama.cpp under `LocalModel`: what any engine provides, and the llama-cpp-python engine.

`LocalEngine` is the small interface LocalModel drives: the model's chat template, a JSON-schema-to-grammar
converter for the reply formats, and `generate`, which decodes one reply to a finished prompt. Two engines
implement it: `Engine` here, on llama-cpp-python (compiled at install), and `XllamacppEngine` in
`local_engine_xllamacpp`, on a prebuilt wheel that also decodes several sequences at once.

An engine is shared by every `LocalModel` on the same weights and settings. This one serves one generation at a
time: it restores the longest cached prompt prefix, decodes the rest, samples under an optional grammar, and
stops early when the text starts to repeat itself.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import importlib
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import MissingDependencyError
from .local_loaded import loaded_engine

# Saved KV states per engine: a few dozen agents' prompts of a few thousand tokens for a 1.5B model.
PREFIX_CACHE_BYTES = 1 << 30
_ENGINE_FEATURE = "The embedded local model"
_ENGINE_PACKAGE = "llama-cpp-python"


def import_llama_cpp() -> Any:
    # Imported by name and used as Any: the engine's own annotations cover its
    # ctypes layer only loosely, and retinue must type-check without the extra.
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise MissingDependencyError(_ENGINE_FEATURE, "local-source", _ENGINE_PACKAGE) from exc


class RenderedPrompt(Protocol):
    @property
    def prompt(self) -> str: ...


class ChatFormatter(Protocol):
    """A model's chat template, ready to render a conversation (and the tools, if the template lists them)."""

    @property
    def template(self) -> str: ...

    def __call__(self, *, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> RenderedPrompt: ...


class PromptTooLongError(Exception):
    """The prompt leaves no room in the context for a reply."""

    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(f"the prompt is {prompt_tokens} tokens, the context {n_ctx}")
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


class LocalEngine(Protocol):
    """What LocalModel needs from the engine that runs its weights in this process."""

    name: str
    """The engine's package, as `LocalModel(engine=...)` names it."""
    formatter: ChatFormatter
    """The chat template stored in the weights (or a fallback for the family)."""

    @property
    def grammar_converter(self) -> Any:
        """What the reply formats build their grammars with: it has `llama_grammar.json_schema_to_gbnf`."""
        ...

    def chat_formatter(self, template: str) -> ChatFormatter:
        """A formatter for another template, with this model's special tokens."""
        ...

    def close(self) -> None:
        """Free the model; no request may be running."""
        ...

    async def generate(
        self,
        prompt: str,
        grammar: str | None,
        sampling: Sampling,
        on_raw_text: Callable[[str], None] | None,
    ) -> Generation:
        """Decode a reply to `prompt`, passing each piece of text to `on_raw_text` on the caller's loop.

        Raises PromptTooLongError if no reply fits the context. Cancelling stops the decoding at the next token
        and returns once the engine is free for the next request.
        """
        ...


@dataclass(frozen=True, slots=True)
class EngineKey:
    path: str
    n_ctx: int
    n_threads: int
    n_batch: int


class Engine:
    """One model loaded by llama-cpp-python, shared by every LocalModel in the process.

    A llama.cpp context is not thread-safe and holds one KV cache, so generations
    run one at a time: the thread lock guarantees it across event loops and
    threads, and the per-loop asyncio lock makes waiting agents queue in the
    loop instead of each parking a worker thread.
    """

    name = "llama-cpp-python"

    def __init__(self, llama: Any, llama_cpp: Any, chat_template: str, n_ctx: int) -> None:
        from .local_prefix_cache import PrefixCache

        self.n_ctx = n_ctx
        self.llama = llama
        self.llama_cpp = llama_cpp
        self.prefix_cache = PrefixCache(llama_cpp, llama, max_bytes=PREFIX_CACHE_BYTES)
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

    def close(self) -> None:
        self.llama.close()

    def loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self.llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token))

    @property
    def grammar_converter(self) -> Any:
        return self.llama_cpp

    def chat_formatter(self, template: str) -> ChatFormatter:
        formatter: ChatFormatter = self.llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=self.formatter.eos_token,
            bos_token=self.formatter.bos_token,
            add_generation_prompt=True,
        )
        return formatter

    async def generate(
        self,
        prompt: str,
        grammar: str | None,
        sampling: Sampling,
        on_raw_text: Callable[[str], None] | None,
    ) -> Generation:
        """Generate in a worker thread, passing text to `on_raw_text` on this loop as it decodes."""
        prompt_tokens: list[int] = self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        room = self.n_ctx - len(prompt_tokens)
        if room <= 0:
            raise PromptTooLongError(len(prompt_tokens), self.n_ctx)
        sampling = dataclasses.replace(sampling, max_tokens=min(sampling.max_tokens, room))
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        raw_pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def on_piece(piece: str) -> None:
            if on_raw_text is not None:
                loop.call_soon_threadsafe(raw_pieces.put_nowait, piece)

        def generate_locked() -> Generation:
            with self.thread_lock:
                try:
                    return _generate(self, prompt_tokens, grammar, sampling, on_piece, cancelled)
                finally:
                    loop.call_soon_threadsafe(raw_pieces.put_nowait, None)

        async with self.loop_lock():
            worker = asyncio.ensure_future(asyncio.to_thread(generate_locked))
            try:
                while (piece := await raw_pieces.get()) is not None:
                    if on_raw_text is not None:
                        on_raw_text(piece)
                return await worker
            except BaseException:
                # The thread cannot be killed; tell it to stop at the next token
                # and keep the lock until it has, so the next request waits.
                cancelled.set()
                await asyncio.shield(asyncio.wait([worker]))
                raise


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(llama.detokenize([token], special=True)).decode("utf-8", errors="replace")


def load_engine(key: EngineKey, seed: int) -> Engine:
    """The model for `key`, loaded unless another caller already did (runs in a worker thread)."""
    return loaded_engine(Engine.name, key, lambda: _load(key, seed))


def _load(key: EngineKey, seed: int) -> Engine:
    llama_cpp = import_llama_cpp()
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
    template = metadata.get("tokenizer.chat_template") or _fallback_template(metadata.get("general.architecture", ""))
    return Engine(llama, llama_cpp, template, key.n_ctx)


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


@dataclass(slots=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    hit_token_limit: bool
    looped: bool = False
    """Generation stopped because the text began to repeat itself; `text` keeps one copy."""
    reused_prompt_tokens: int = 0
    """Prompt tokens whose KV state came from a cache instead of being decoded again."""


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    options: dict[str, Any]


def _generate(
    engine: Engine,
    prompt_tokens: list[int],
    grammar: str | None,
    sampling: Sampling,
    on_raw_text: Callable[[str], None],
    cancelled: threading.Event,
) -> Generation:
    llama = engine.llama
    # Reseeding per request makes the output depend on this request alone,
    # not on how many requests the shared model served before.
    llama.set_seed(sampling.seed)
    held = engine.prefix_cache.restore_best(prompt_tokens)
    reused = min(held, len(prompt_tokens) - 1)  # the last prompt token is always decoded again
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
        if generated % LOOP_CHECK_EVERY == 0 and (end := end_of_first_copy("".join(pieces))) is not None:
            engine.prefix_cache.save()
            return Generation("".join(pieces)[:end], len(prompt_tokens), generated, False, True, reused)
        if generated >= sampling.max_tokens or cancelled.is_set():
            break
    engine.prefix_cache.save()
    tail = decoder.decode(b"", final=True)
    if tail:
        pieces.append(tail)
        on_raw_text(tail)
    return Generation("".join(pieces), len(prompt_tokens), generated, hit_limit, reused_prompt_tokens=reused)


# Greedy decoding on a small model can fall into a loop: Qwen2.5-Coder-1.5B, as a travel lead, wrote its two-sentence
# plan twenty times over, until the token limit, five minutes on 2 cores. Three copies in a row of a passage this long
# are a loop (twice can be a table or code); the reply ends after the first.
_LOOP_SHORTEST = 40
_LOOP_LONGEST = 800
_LOOP_COPIES = 3
LOOP_CHECK_EVERY = 8


def end_of_first_copy(text: str) -> int | None:
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
