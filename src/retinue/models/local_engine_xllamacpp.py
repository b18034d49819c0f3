"""The xllamacpp engine: llama.cpp's own server, in this process, from a prebuilt wheel.

xllamacpp (MIT, by Xorbits) wraps llama.cpp's server library: no compiler is needed at install (a 33 MB
manylinux wheel against llama-cpp-python's 3-4 minute build), and the server keeps several *slots*, one
sequence each, decoded together in one batch (continuous batching). With N slots, N agents' requests
advance at once instead of queueing for one context; each slot reuses the prompt prefix it already holds,
and a slot taken over by another prompt is saved to a RAM cache first, so an agent coming back to the
engine finds its prefix again.

LocalModel renders the prompt itself (the model's chat template read from the GGUF header, the reply formats
of `local_replies`, their grammars converted by `local_gbnf`); the server's tokenizer turns it into tokens, which
are sent as a raw completion, so both engines decode the same tokens under the same grammar. The tokenizer is
reached through the server's HTTP listener (which cannot be turned off): a Unix socket in a directory only this
user can enter, behind a key only this engine knows.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib
import json
import secrets
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, MissingDependencyError, ModelError
from .local_chat_template import ChatTemplate
from .local_engine import (
    LOOP_CHECK_EVERY,
    PREFIX_CACHE_BYTES,
    ChatFormatter,
    EngineKey,
    Generation,
    PromptTooLongError,
    Sampling,
    _fallback_template,
    end_of_first_copy,
)
from .local_gbnf import json_schema_to_gbnf
from .local_gguf import ModelMetadata, read_model_metadata
from .local_loaded import loaded_engine

DEFAULT_SLOTS = 4
"""Slots when LocalModel does not say: a lead and the specialists it consults in one turn."""

# llama-cpp-python's sampler defaults, which the other engine decodes with: the same request samples alike.
_SAMPLER_DEFAULTS: dict[str, Any] = {"top_k": 40, "min_p": 0.05, "typical_p": 1.0, "repeat_penalty": 1.0}
_LOG_ERRORS_ONLY = 1  # llama.cpp's verbosity: 0 output, 1 errors, 2 warnings, 3 information


def import_xllamacpp() -> Any:
    # Used as Any: the wheel ships no type stubs, and retinue must type-check without it.
    try:
        return importlib.import_module("xllamacpp")
    except ImportError as exc:
        if "libgomp" in str(exc):
            raise ConfigurationError(
                f"xllamacpp is installed but cannot load the OpenMP runtime it needs ({exc}). "
                "Install it with: apt-get install libgomp1 (or your system's libgomp package)."
            ) from exc
        raise MissingDependencyError("The xllamacpp engine", "local", "xllamacpp") from exc


class _GbnfConverter:
    """The `llama_grammar.json_schema_to_gbnf` that the reply formats call, backed by `local_gbnf`."""

    @property
    def llama_grammar(self) -> _GbnfConverter:
        return self

    @staticmethod
    def json_schema_to_gbnf(schema: str) -> str:
        return json_schema_to_gbnf(schema)


@dataclass(slots=True)
class _Stream:
    """What the server has sent so far for one request (filled in the worker thread)."""

    text: str = ""
    tokens: int = 0
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    reused: int = 0
    error: dict[str, Any] | None = None
    looped_at: int | None = None


class XllamacppEngine:
    """One model served by xllamacpp with `slots` sequences, shared by every LocalModel in the process."""

    name = "xllamacpp"

    def __init__(self, xllamacpp: Any, key: EngineKey, slots: int, metadata: ModelMetadata) -> None:
        self.key = key
        self.slots = slots
        self.metadata = metadata
        template = metadata.chat_template or _fallback_template(metadata.architecture)
        self.formatter: ChatFormatter = ChatTemplate(
            template, bos_token=metadata.bos_token, eos_token=metadata.eos_token
        )
        self._socket_directory = tempfile.mkdtemp(prefix="retinue-xllamacpp-")
        self._http_socket = str(Path(self._socket_directory) / "server.sock")
        self._api_key = secrets.token_urlsafe(24)
        self._http = _UnixHttp(self._http_socket, self._api_key)
        try:
            self._server = xllamacpp.Server(self._params(xllamacpp))
        except BaseException:
            shutil.rmtree(self._socket_directory, ignore_errors=True)
            raise
        # One thread per slot: a request blocks its thread while it decodes, and must not take the loop's
        # default executor, where tools run, away from them.
        self._threads = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="retinue-xllamacpp")
        self.reused_prompt_tokens = 0
        """Prompt tokens served from a slot or the RAM cache rather than decoded, over the engine's life."""

    def _params(self, xllamacpp: Any) -> Any:
        params = xllamacpp.CommonParams()
        params.model.path = self.key.path
        params.n_parallel = self.slots
        # Each slot gets a context of n_ctx, as one llama-cpp-python context has: the total is split evenly.
        params.n_ctx = self.key.n_ctx * self.slots
        params.kv_unified = False
        params.cont_batching = True
        params.n_batch = self.key.n_batch
        params.n_ubatch = self.key.n_batch
        params.cpuparams.n_threads = self.key.n_threads
        params.cpuparams_batch.n_threads = self.key.n_threads
        params.cache_prompt = True
        params.cache_ram_mib = PREFIX_CACHE_BYTES >> 20  # the same budget as llama-cpp-python's PrefixCache
        params.fit_params = False  # keep the context asked for; fitting would shrink it to free memory
        params.warmup = False
        params.ctx_shift = False  # a full context ends the reply ("length"), never drops the prompt's start
        params.verbosity = _LOG_ERRORS_ONLY
        # The HTTP listener cannot be turned off: it stays off the network, behind a key only this engine knows.
        params.hostnames = [self._http_socket]
        params.api_keys = [self._api_key]
        params.ui = False
        params.endpoint_slots = False
        params.endpoint_metrics = False
        return params

    @property
    def grammar_converter(self) -> Any:
        return _GbnfConverter()

    def chat_formatter(self, template: str) -> ChatFormatter:
        return ChatTemplate(template, bos_token=self.metadata.bos_token, eos_token=self.metadata.eos_token)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        del self._server  # stops the server's loop and frees the model
        shutil.rmtree(self._socket_directory, ignore_errors=True)

    async def generate(
        self,
        prompt: str,
        grammar: str | None,
        sampling: Sampling,
        on_raw_text: Callable[[str], None] | None,
    ) -> Generation:
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        stream = _Stream()

        def send(piece: str) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, piece)

        def complete() -> None:
            try:
                if not cancelled.is_set():  # cancelled while it waited for a thread: never reaches the server
                    self._complete(prompt, grammar, sampling, stream, send, cancelled)
            finally:
                loop.call_soon_threadsafe(pieces.put_nowait, None)

        worker = loop.run_in_executor(self._threads, complete)
        try:
            while (piece := await pieces.get()) is not None:
                if on_raw_text is not None:
                    on_raw_text(piece)
            await worker
        except BaseException:
            # The server stops a request when its callback next returns True: at the next token, or the next
            # batch of the prompt. Wait for that, so the slot is free when this returns.
            cancelled.set()
            await asyncio.shield(asyncio.wait([worker]))
            raise
        return self._generation(stream)

    def _complete(
        self,
        prompt: str,
        grammar: str | None,
        sampling: Sampling,
        stream: _Stream,
        send: Callable[[str], None],
        cancelled: threading.Event,
    ) -> None:
        """Decode a reply to `prompt` (in a worker thread): the prompt but its last token first, then the reply."""
        tokens = self._tokenize(prompt)
        stream.prompt_tokens = len(tokens)
        room = self.key.n_ctx - len(tokens)
        if room <= 0:
            raise PromptTooLongError(len(tokens), self.key.n_ctx)
        prefill = _Stream()
        if len(tokens) > 1:
            # llama.cpp's logits depend slightly on how tokens were batched. Decoding the prompt's last token
            # on its own, whether the rest came from a cache or not, makes the same request sample the same
            # reply (as the llama-cpp-python engine does). The server decodes what its cache lacks, so it is
            # first sent everything but that token, followed by a placeholder: the placeholder is what gets
            # decoded when the prefix is cached already, never a token of the prompt.
            placeholder = 0 if tokens[-1] != 0 else 1
            request = {**_PREFILL, "prompt": [*tokens[:-1], placeholder]}
            self._server.handle_completions(request, lambda chunk: cancelled.is_set() or _take(chunk, prefill, None))
            if prefill.error is not None:
                raise self._error(prefill.error)
        if cancelled.is_set():
            return
        request = self._request(tokens, grammar, sampling, min(sampling.max_tokens, room))
        self._server.handle_completions(request, lambda chunk: cancelled.is_set() or _take(chunk, stream, send))
        stream.reused = int(prefill.timings.get("cache_n", 0))

    def _tokenize(self, prompt: str) -> list[int]:
        """`prompt` as the model's tokens, special tokens parsed and no BOS added, as llama-cpp-python does."""
        body = {"content": prompt, "add_special": False, "parse_special": True}
        tokens = self._http.post("/tokenize", body).get("tokens")
        if not isinstance(tokens, list):
            raise ModelError(f"xllamacpp's /tokenize answered without tokens: {tokens!r}")
        return [int(token) for token in tokens]

    def _request(self, tokens: list[int], grammar: str | None, sampling: Sampling, max_tokens: int) -> dict[str, Any]:
        request: dict[str, Any] = {
            **_SAMPLER_DEFAULTS,
            **sampling.options,
            **_STREAMED,
            "prompt": tokens,
            "n_predict": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
        }
        if grammar is not None:
            request["grammar"] = grammar
        return request

    def _generation(self, stream: _Stream) -> Generation:
        if stream.error is not None:
            raise self._error(stream.error)
        self.reused_prompt_tokens += stream.reused
        if stream.looped_at is not None:
            text = stream.text[: stream.looped_at]
            return Generation(text, stream.prompt_tokens, stream.tokens, False, True, stream.reused)
        return Generation(
            stream.text,
            stream.prompt_tokens,
            int(stream.usage.get("completion_tokens", stream.tokens)),
            hit_token_limit=stream.finish_reason != "stop",
            reused_prompt_tokens=stream.reused,
        )

    def _error(self, error: dict[str, Any]) -> Exception:
        if error.get("type") == "exceed_context_size_error":
            return PromptTooLongError(int(error.get("n_prompt_tokens", 0)), self.key.n_ctx)
        message = error.get("message", error)
        if error.get("type") == "invalid_request_error" and "grammar" in str(message):
            return ConfigurationError(f"xllamacpp rejected the grammar of this request: {message}")
        return ModelError(f"xllamacpp failed the request: {message}")


# Every request streams: each chunk is a chance to stop it (chunks come during a long prompt too).
_STREAMED: dict[str, Any] = {
    "stream": True,
    "stream_options": {"include_usage": True},
    "return_progress": True,
    "cache_prompt": True,
}
# Decoding a prompt into a slot's cache, with one throwaway token sampled.
_PREFILL: dict[str, Any] = {**_STREAMED, "n_predict": 1, "temperature": 0.0}


def _take(chunk: dict[str, Any], stream: _Stream, send: Callable[[str], None] | None) -> bool:
    """Add one streamed chunk to `stream`; True stops the request (an error, or a reply that loops)."""
    error = chunk.get("error")
    if error is not None or ("choices" not in chunk and "message" in chunk):
        stream.error = error if isinstance(error, dict) else chunk
        return True
    if isinstance(chunk.get("usage"), dict):
        stream.usage = chunk["usage"]
    if isinstance(chunk.get("timings"), dict):
        stream.timings = chunk["timings"]
    for choice in chunk.get("choices") or []:
        text = choice.get("text") or ""
        if choice.get("finish_reason"):
            stream.finish_reason = choice["finish_reason"]
        elif "prompt_progress" not in chunk:
            stream.tokens += 1  # one chunk per token, with "" while a character's bytes are incomplete
        if text and send is not None:
            stream.text += text
            send(text)
            if stream.tokens % LOOP_CHECK_EVERY == 0 and (end := end_of_first_copy(stream.text)) is not None:
                stream.looped_at = end
                return True
    return False


class _UnixHttp:
    """JSON over HTTP to the server's own listener, on its Unix socket, for what the Python API lacks."""

    def __init__(self, socket_path: str, api_key: str) -> None:
        self._socket_path = socket_path
        self._api_key = api_key

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        connection = _UnixConnection(self._socket_path)
        try:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._api_key}"}
            connection.request("POST", path, json.dumps(body), headers)
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
        finally:
            connection.close()
        if response.status != 200 or not isinstance(answer, dict):
            raise ModelError(f"xllamacpp's {path} failed ({response.status}): {answer}")
        return answer


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str) -> None:
        super().__init__("localhost")
        self._socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._socket_path)


async def load_xllamacpp_engine(key: EngineKey, slots: int) -> XllamacppEngine:
    """The engine for `key` with `slots` slots, loaded on first use and shared afterwards."""
    engine = await asyncio.to_thread(loaded_engine, XllamacppEngine.name, (key, slots), lambda: _load(key, slots))
    _restore_python_signal_handlers()
    return engine


def _load(key: EngineKey, slots: int) -> XllamacppEngine:
    xllamacpp = import_xllamacpp()
    metadata = read_model_metadata(Path(key.path))
    try:
        return XllamacppEngine(xllamacpp, key, slots, metadata)
    except RuntimeError as exc:
        raise ConfigurationError(f"xllamacpp could not load {key.path}: {exc}") from exc


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _restore_python_signal_handlers() -> None:
    """Give Ctrl-C and SIGTERM back to Python after the server took them.

    llama.cpp's server installs its own SIGINT and SIGTERM handlers when it starts (to shut itself down), which
    would turn Ctrl-C into a silent stop of the engine instead of a KeyboardInterrupt. Python remembers its own
    handlers; setting them again puts them back. Only the main thread may set handlers, as only it gets them.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for number in _SIGNALS:
        handler = signal.getsignal(number)
        if handler is not None:
            signal.signal(number, handler)
