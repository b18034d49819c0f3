"""What every fake provider server shares: the script it answers from, and the server itself.

A fake speaks one provider's real wire protocol, so any HTTP client can be
pointed at it, retinue's providers or the official SDKs alike, to test
without a network or an API key. `fake_openai.FakeOpenAIServer` and
`fake_anthropic.FakeAnthropicServer` are built on `FakeServer` here:

    async with FakeOpenAIServer(["Hello!"]) as server:
        model = OpenAIModel("gpt-4.1-mini", base_url=server.base_url, api_key=server.api_key)

A server answers from a *script*: a list of items used in order, or a policy
function of the request. An item is a `Reply` (text, tool calls, reasoning;
a plain string is a text reply) or a fault (`HttpFault`, `MalformedBody`,
`DropConnection`, `MidStreamError`). Every request is recorded in
`server.requests`.

A fake of another provider's API subclasses `FakeServer` and fills in its
protocol's parts: how it checks the key, validates a request, shapes an
answer and an error, and, if it streams and caches prompts, its events and
cache rules. Each fake can also run as a process of its own (the benchmarks
do, so its CPU is not billed to the client):

    python -m retinue.testing.fake_openai --port 0 \\
        --latency-ms 300 --reply tool-then-answer --tool-name lookup --tool-calls 3

It prints its port on the first line of stdout and serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import secrets
import signal
import socket
import string
import sys
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self, TypeAlias

from aiohttp import web

__all__ = [
    "SSE_HEADERS",
    "DropConnection",
    "FakeServer",
    "FakeToolCall",
    "Fault",
    "HttpFault",
    "MalformedBody",
    "MidStreamError",
    "PromptCache",
    "RecordedRequest",
    "Reply",
    "ReplyTokens",
    "ScriptItem",
    "ToolThenAnswer",
    "arguments_text",
    "compact_json",
    "cut_connection",
    "estimate_tokens",
    "pieces",
    "random_id",
    "retry_headers",
    "serve_from_command_line",
]


# --- The script -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    """A tool call the fake model makes. A `str` of arguments is sent verbatim,
    so it can be malformed JSON; the Anthropic fake needs a dict."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of the fake model.

    `reasoning` becomes a signed thinking block (Anthropic) or
    `reasoning_content` as llama.cpp and vLLM send it (OpenAI-compatible);
    `redacted_thinking` is Anthropic's opaque variant. Token counts default to
    estimates (about four characters a token) and the simulated prompt cache;
    set them to put exact numbers on the wire, in the provider's own
    convention (Anthropic's `input_tokens` excludes cached tokens, OpenAI's
    `prompt_tokens` includes them). `stop_reason` is the provider's own value.
    """

    text: str = ""
    tool_calls: Sequence[FakeToolCall] = ()
    reasoning: str = ""
    redacted_thinking: str = ""
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class HttpFault:
    """Answer with an HTTP error status and the provider's real error body."""

    status: int
    retry_after: float | None = None
    retry_after_ms: int | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class MalformedBody:
    """Answer 200 with a body (or, streaming, an event) that is not valid JSON."""

    body: str = '{"id": "broken", "choices": [{"index": 0, "message": '


@dataclass(frozen=True, slots=True)
class DropConnection:
    """Close the connection: before any answer when plain; when streaming,
    after the opening events and `after_text` have been sent."""

    after_text: str = ""


@dataclass(frozen=True, slots=True)
class MidStreamError:
    """Streaming only: send `after_text`, then the provider's in-stream error
    event (Anthropic `event: error`, OpenAI a `data: {"error": ...}` chunk)."""

    after_text: str = ""
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


ScriptItem: TypeAlias = Reply | HttpFault | MalformedBody | DropConnection | MidStreamError | str


@dataclass(slots=True)
class RecordedRequest:
    """A request a fake server received, for tests to inspect."""

    protocol: str
    path: str
    headers: dict[str, str]
    body: Any
    # Counted on arrival by the server, which alone knows how its protocol marks a tool result.
    _tool_results: int = field(default=0, repr=False)

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True

    def tool_result_count(self) -> int:
        """Tool results in the conversation so far (tool messages, tool_result blocks, ...)."""
        return self._tool_results


Policy: TypeAlias = Callable[[RecordedRequest], ScriptItem]
Script: TypeAlias = Sequence[ScriptItem] | Policy


class ToolThenAnswer:
    """A policy: call `tool` until `calls` results are in the conversation, then answer.

    Decided from each request alone, so any number of concurrent conversations
    can share one server. `parallel` calls are made per turn.
    """

    def __init__(
        self,
        tool: str,
        calls: int = 1,
        *,
        parallel: int = 1,
        arguments: dict[str, Any] | None = None,
        answer: str = "Done.",
    ) -> None:
        if calls < 0 or parallel < 1:
            raise ValueError("calls must be >= 0 and parallel >= 1")
        self.tool = tool
        self.calls = calls
        self.parallel = parallel
        self.arguments = arguments or {}
        self.answer = answer

    def __call__(self, request: RecordedRequest) -> ScriptItem:
        done = request.tool_result_count()
        if done >= self.calls:
            return Reply(text=self.answer)
        count = min(self.parallel, self.calls - done)
        return Reply(tool_calls=[FakeToolCall(self.tool, self.arguments) for _ in range(count)])


# --- Helpers for a fake's protocol ------------------------------------------

_ID_ALPHABET = string.ascii_letters + string.digits
_MAX_CACHED_PREFIXES = 1_000_000
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


def random_id(prefix: str, length: int = 24) -> str:
    """An id shaped like the providers' own: `prefix` and random letters and digits."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def estimate_tokens(text: str) -> int:
    """About four characters a token, as the fakes count when a `Reply` gives no numbers."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def compact_json(value: Any) -> str:
    """JSON without spaces, as the providers send it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def pieces(text: str, size: int) -> list[str]:
    """`text` cut into the pieces a stream sends it in."""
    return [text[i : i + size] for i in range(0, len(text), size)]


class PromptCache:
    """Prompt-cache bookkeeping for a fake that simulates prompt caching.

    A prompt is a list of content blocks; a prefix is identified by the hash of
    its blocks (with any `cache_control` markers removed). `hit` finds the
    longest cached prefix ending at one of `candidates` (block counts).
    """

    def __init__(self) -> None:
        self._prefixes: set[bytes] = set()

    @staticmethod
    def boundaries(blocks: Iterable[Any]) -> tuple[list[bytes], list[int]]:
        """Hash and cumulative token estimate after each block."""
        hasher = hashlib.sha256()
        hashes: list[bytes] = []
        tokens: list[int] = []
        total = 0
        for block in blocks:
            if isinstance(block, dict) and "cache_control" in block:
                block = {key: value for key, value in block.items() if key != "cache_control"}
            encoded = json.dumps(block, sort_keys=True, separators=(",", ":")).encode()
            hasher.update(encoded)
            total += estimate_tokens(encoded.decode())
            hashes.append(hasher.copy().digest())
            tokens.append(total)
        return hashes, tokens

    def hit(self, hashes: list[bytes], tokens: list[int], candidates: Iterable[int]) -> int:
        best = 0
        for end in candidates:
            if 0 < end <= len(hashes) and hashes[end - 1] in self._prefixes:
                best = max(best, tokens[end - 1])
        return best

    def store(self, hashes: list[bytes], ends: Iterable[int]) -> None:
        if len(self._prefixes) > _MAX_CACHED_PREFIXES:
            # Real caches expire after minutes; a benchmark server running for
            # hours must not grow without bound either.
            self._prefixes.clear()
        for end in ends:
            if 0 < end <= len(hashes):
                self._prefixes.add(hashes[end - 1])


class ReplyTokens:
    """Token counts for one reply, before they are put in a provider's shape."""

    __slots__ = ("cache_read", "cache_write", "output", "reasoning", "uncached")

    def __init__(self, uncached: int, cache_read: int, cache_write: int, output: int, reasoning: int) -> None:
        self.uncached = uncached
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.output = output
        self.reasoning = reasoning


class Fault(Exception):
    """An HTTP error answer, with the provider's error body, raised anywhere in a handler."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class FakeServer(ABC):
    """A fake provider server: its lifecycle, the script, and what every request goes through.

    A subclass names its `protocol`, the `path` it answers and the `base_path`
    a client's `base_url` ends in, says whether its `input_tokens` count
    includes cached tokens, and implements the protocol's parts below.
    """

    protocol: ClassVar[str]
    path: ClassVar[str]
    base_path: ClassVar[str]
    input_tokens_include_cache: ClassVar[bool]

    def __init__(
        self,
        script: Script = (),
        *,
        api_key: str | None = "test-key",
        latency_ms: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        min_cacheable_tokens: int = 1024,
        stream_chunk_chars: int = 8,
    ) -> None:
        self.script = script
        self.api_key = api_key
        self.latency_ms = latency_ms
        self.host = host
        self.min_cacheable_tokens = min_cacheable_tokens
        self.stream_chunk_chars = max(1, stream_chunk_chars)
        self.requests: list[RecordedRequest] = []
        self._requested_port = port
        self._position = 0
        self._cache = PromptCache()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # Lifecycle

    def app(self) -> web.Application:
        """The aiohttp application, to mount in a server of your own."""
        application = web.Application(client_max_size=64 * 1024 * 1024)
        application.router.add_post(self.path, self._handle)
        return application

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._port = sock.getsockname()[1]
        # A thousand agents connect at once; the default backlog of 128 would
        # drop SYNs and add a second of retransmit delay to some of them.
        site = web.SockSite(self._runner, sock, backlog=4096)
        await site.start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("The fake server is not running; use 'async with' or await start().")
        return self._port

    @property
    def base_url(self) -> str:
        """What to pass as `base_url` to a client (the SDKs' convention for each API)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.base_path}"

    # Handling

    async def _record(self, request: web.Request) -> RecordedRequest:
        """Read and record a request; its body is the decoded JSON, or the text when it is not JSON."""
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        recorded = RecordedRequest(
            self.protocol, request.path, dict(request.headers), body, self._count_tool_results(body)
        )
        self.requests.append(recorded)
        return recorded

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        body = recorded.body
        try:
            self._check_auth(request)
            if not isinstance(body, dict):
                raise self._invalid_request("The request body is not valid JSON.")
            try:
                self._validate(body)
            except (AttributeError, TypeError, KeyError) as exc:
                raise self._invalid_request(f"The request does not follow the API's schema ({exc}).") from None
            item = self._next_item(recorded)
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            return await self._answer(request, body, item)
        except Fault as fault:
            return web.json_response(
                fault.body, status=fault.status, headers={**self._response_headers(), **fault.headers}
            )

    def _next_item(self, recorded: RecordedRequest) -> ScriptItem:
        if callable(self.script):
            return self.script(recorded)
        if self._position >= len(self.script):
            raise self._invalid_request(
                f"{type(self).__name__} script exhausted: it holds {len(self.script)} items "
                f"and this is request {self._position + 1}."
            )
        item = self.script[self._position]
        self._position += 1
        return item

    async def _answer(self, request: web.Request, body: dict[str, Any], item: ScriptItem) -> web.StreamResponse:
        if isinstance(item, str):
            item = Reply(text=item)
        if isinstance(item, HttpFault):
            raise self._http_fault(item, body)
        if isinstance(item, DropConnection) and not body.get("stream"):
            cut_connection(request)
            return web.Response()
        if isinstance(item, MalformedBody) and not body.get("stream"):
            return web.Response(text=item.body, content_type="application/json", headers=self._response_headers())
        if isinstance(item, MidStreamError) and not body.get("stream"):
            raise self._http_fault(HttpFault(529 if item.error_type == "overloaded_error" else 500), body)
        if not body.get("stream"):
            assert isinstance(item, Reply)
            return web.json_response(self._message(body, item), dumps=compact_json, headers=self._response_headers())
        response = web.StreamResponse(headers={**SSE_HEADERS, **self._response_headers()})
        await response.prepare(request)
        async for event in self._events(body, item):
            await response.write(event)
        if isinstance(item, DropConnection):
            cut_connection(request)
            return response
        await response.write_eof()
        return response

    def _usage(self, body: dict[str, Any], reply: Reply) -> ReplyTokens:
        blocks, breakpoints = self._prompt_blocks(body)
        hashes, tokens = PromptCache.boundaries(blocks)
        total = tokens[-1] if tokens else 0
        read, write = self._cache_use(hashes, tokens, breakpoints)
        reasoning = estimate_tokens(reply.reasoning)
        output = (
            estimate_tokens(reply.text)
            + reasoning
            + sum(estimate_tokens(call.name + arguments_text(call)) for call in reply.tool_calls)
        )
        read = read if reply.cache_read_tokens is None else reply.cache_read_tokens
        write = write if reply.cache_write_tokens is None else reply.cache_write_tokens
        if reply.input_tokens is None:
            uncached = max(total - read - write, 1)
        elif self.input_tokens_include_cache:
            uncached = max(reply.input_tokens - read - write, 0)
        else:
            uncached = reply.input_tokens
        return ReplyTokens(
            uncached=uncached,
            cache_read=read,
            cache_write=write,
            output=max(output, 1) if reply.output_tokens is None else reply.output_tokens,
            reasoning=reasoning,
        )

    # The protocol's parts

    @abstractmethod
    def _check_auth(self, request: web.Request) -> None:
        """Raise the provider's `Fault` when the request's key is missing or wrong (and `api_key` is set)."""

    @abstractmethod
    def _invalid_request(self, message: str) -> Fault:
        """The provider's answer to a request it refuses (HTTP 400, its error body)."""

    @abstractmethod
    def _http_fault(self, fault: HttpFault, body: dict[str, Any]) -> Fault:
        """The provider's error answer for a scripted `HttpFault`, retry headers included."""

    @abstractmethod
    def _message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        """The provider's JSON answer carrying `reply`, usage included."""

    def _validate(self, body: dict[str, Any]) -> None:
        """Raise `_invalid_request(...)` for what the real API refuses (AttributeError and the like: off its schema)."""
        return  # by default every JSON object is a valid request

    def _events(self, body: dict[str, Any], item: ScriptItem) -> AsyncIterator[bytes]:
        """The server-sent events of a streamed answer (`item` may be a streamed fault)."""
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    def _count_tool_results(self, body: Any) -> int:
        """Tool results in the conversation of a request `body`, which need not be valid."""
        return 0

    def _prompt_blocks(self, body: dict[str, Any]) -> tuple[list[Any], list[int]]:
        """The prompt as content blocks in the provider's cache order, and its cache breakpoints (block counts).

        Input tokens are estimated from these blocks; by default the whole body is one block, with no breakpoint.
        """
        return [body], []

    def _cache_use(self, hashes: list[bytes], tokens: list[int], breakpoints: list[int]) -> tuple[int, int]:
        """Tokens read from and written to the prompt cache; by default the fake caches nothing."""
        return 0, 0

    def _response_headers(self) -> dict[str, str]:
        """Headers the provider sends with every answer (request ids, say)."""
        return {}


def cut_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


def arguments_text(call: FakeToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else compact_json(call.arguments)


def retry_headers(fault: HttpFault) -> dict[str, str]:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        seconds = fault.retry_after
        headers["retry-after"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    return headers


# --- Standalone process -----------------------------------------------------


def serve_from_command_line(server_class: type[FakeServer], prog: str, argv: Sequence[str] | None = None) -> None:
    """Run `server_class` as a process of its own, configured from the command line `argv`.

    A fake module calls this under `if __name__ == "__main__":`, with `prog` the
    command that runs it (`python -m retinue.testing.fake_openai`).
    """
    asyncio.run(_serve(server_class, _parse_args(server_class, prog, argv)))


def _parse_args(server_class: type[FakeServer], prog: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Serve a fake {server_class.protocol} API ({server_class.__name__}). "
        "Prints the bound port on the first line of stdout.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    parser.add_argument("--api-key", default="test-key", help="the key clients must send")
    parser.add_argument("--no-auth", action="store_true", help="accept requests without a key")
    parser.add_argument(
        "--reply",
        choices=("text", "tool-then-answer"),
        default="text",
        help="text: always answer --answer; tool-then-answer: call --tool-name until --tool-calls "
        "results are in the conversation, then answer --answer",
    )
    parser.add_argument("--answer", default="Done.", help="the final answer text")
    parser.add_argument("--tool-name", default="lookup")
    parser.add_argument("--tool-calls", type=int, default=1, help="tool calls per conversation before the answer")
    parser.add_argument("--parallel", type=int, default=1, help="tool calls per assistant turn")
    parser.add_argument("--tool-args", default="{}", help="JSON object of arguments for each tool call")
    parser.add_argument("--stream-chunk-chars", type=int, default=8)
    parser.add_argument("--min-cacheable-tokens", type=int, default=1024)
    return parser.parse_args(argv)


async def _serve(server_class: type[FakeServer], args: argparse.Namespace) -> None:
    policy: Policy
    if args.reply == "tool-then-answer":
        arguments = json.loads(args.tool_args)
        if not isinstance(arguments, dict):
            raise SystemExit("--tool-args must be a JSON object")
        policy = ToolThenAnswer(
            args.tool_name, args.tool_calls, parallel=args.parallel, arguments=arguments, answer=args.answer
        )
    else:
        answer = Reply(text=args.answer)

        def policy(request: RecordedRequest) -> ScriptItem:
            return answer

    server = server_class(
        policy,
        api_key=None if args.no_auth else args.api_key,
        latency_ms=args.latency_ms,
        host=args.host,
        port=args.port,
        min_cacheable_tokens=args.min_cacheable_tokens,
        stream_chunk_chars=args.stream_chunk_chars,
    )
    # A long-running server must not keep every request it ever saw.
    server.requests = _Discard()
    await server.start()
    print(server.port, flush=True)
    print(f"fake {server.protocol} server at {server.base_url}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()


class _Discard(list[RecordedRequest]):
    def append(self, item: RecordedRequest) -> None:
        pass
