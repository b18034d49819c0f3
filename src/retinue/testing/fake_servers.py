"""Fake OpenAI and Anthropic servers that speak the real wire protocols.

Point any HTTP client at them, retinue's providers or the official SDKs alike,
to test without a network or an API key:

    async with FakeOpenAIServer(["Hello!"]) as server:
        model = OpenAIModel("gpt-4.1-mini", base_url=server.base_url, api_key=server.api_key)

A server answers from a *script*: a list of items used in order, or a policy
function of the request. An item is a `Reply` (text, tool calls, reasoning;
a plain string is a text reply) or a fault (`HttpFault`, `MalformedBody`,
`DropConnection`, `MidStreamError`). Plain and streamed answers follow the
providers' own JSON and server-sent-event shapes, usage included, and both
servers simulate prompt caching so cache accounting can be tested. Every
request is recorded in `server.requests`.

Run one as a separate process (the benchmarks do, so its CPU is not billed to
the client):

    python -m retinue.testing.fake_servers --protocol openai --port 0 \\
        --latency-ms 300 --reply tool-then-answer --tool-name lookup --tool-calls 3

It prints its port on the first line of stdout and serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import math
import secrets
import signal
import socket
import string
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self, TypeAlias

from aiohttp import web

__all__ = [
    "DropConnection",
    "FakeAnthropicServer",
    "FakeOpenAIServer",
    "FakeToolCall",
    "HttpFault",
    "MalformedBody",
    "MidStreamError",
    "RecordedRequest",
    "Reply",
    "ScriptItem",
    "ToolThenAnswer",
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

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True

    def tool_result_count(self) -> int:
        """Tool results in the conversation so far (tool messages or tool_result blocks)."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        if not isinstance(messages, list):
            return 0
        if self.protocol == "openai":
            return sum(1 for message in messages if isinstance(message, dict) and message.get("role") == "tool")
        return sum(
            1
            for message in messages
            if isinstance(message, dict) and isinstance(message.get("content"), list)
            for block in message["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        )


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


# --- Shared machinery -------------------------------------------------------

_ID_ALPHABET = string.ascii_letters + string.digits
_MAX_CACHED_PREFIXES = 1_000_000
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


def _random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class _PrefixCache:
    """Prompt-cache bookkeeping shared by both fakes.

    A prompt is a list of content blocks; a prefix is identified by the hash of
    its blocks (with any `cache_control` markers removed). `lookup` finds the
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
            total += _estimate_tokens(encoded.decode())
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


class _Usage:
    """Token counts for one reply, before they are put in a provider's shape."""

    __slots__ = ("cache_read", "cache_write", "output", "reasoning", "uncached")

    def __init__(self, uncached: int, cache_read: int, cache_write: int, output: int, reasoning: int) -> None:
        self.uncached = uncached
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.output = output
        self.reasoning = reasoning


class _Fault(Exception):
    """An HTTP error answer, raised anywhere in a handler."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class _FakeServer:
    """The lifecycle and request handling both fakes share."""

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
        self._cache = _PrefixCache()
        self._signing_key = secrets.token_bytes(16)
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        recorded = RecordedRequest(self.protocol, request.path, dict(request.headers), body)
        self.requests.append(recorded)
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
        except _Fault as fault:
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
            _cut(request)
            return web.Response()
        if isinstance(item, MalformedBody) and not body.get("stream"):
            return web.Response(text=item.body, content_type="application/json", headers=self._response_headers())
        if isinstance(item, MidStreamError) and not body.get("stream"):
            raise self._http_fault(HttpFault(529 if item.error_type == "overloaded_error" else 500), body)
        if not body.get("stream"):
            assert isinstance(item, Reply)
            return web.json_response(self._message(body, item), dumps=_dumps, headers=self._response_headers())
        response = web.StreamResponse(headers={**_SSE_HEADERS, **self._response_headers()})
        await response.prepare(request)
        async for event in self._events(body, item):
            await response.write(event)
        if isinstance(item, DropConnection):
            _cut(request)
            return response
        await response.write_eof()
        return response

    def _usage(self, body: dict[str, Any], reply: Reply) -> _Usage:
        blocks, breakpoints = self._prompt_blocks(body)
        hashes, tokens = _PrefixCache.boundaries(blocks)
        total = tokens[-1] if tokens else 0
        read, write = self._cache_use(hashes, tokens, breakpoints)
        reasoning = _estimate_tokens(reply.reasoning)
        output = (
            _estimate_tokens(reply.text)
            + reasoning
            + sum(_estimate_tokens(call.name + _arguments_text(call)) for call in reply.tool_calls)
        )
        read = read if reply.cache_read_tokens is None else reply.cache_read_tokens
        write = write if reply.cache_write_tokens is None else reply.cache_write_tokens
        if reply.input_tokens is None:
            uncached = max(total - read - write, 1)
        elif self.input_tokens_include_cache:
            uncached = max(reply.input_tokens - read - write, 0)
        else:
            uncached = reply.input_tokens
        return _Usage(
            uncached=uncached,
            cache_read=read,
            cache_write=write,
            output=max(output, 1) if reply.output_tokens is None else reply.output_tokens,
            reasoning=reasoning,
        )

    def _signature(self, thinking: str) -> str:
        digest = hmac.new(self._signing_key, thinking.encode(), hashlib.sha256).digest()
        return base64.b64encode(b"fake-signature:" + digest).decode()

    def _response_headers(self) -> dict[str, str]:
        return {}

    # Protocol-specific parts

    def _check_auth(self, request: web.Request) -> None:
        raise NotImplementedError

    def _validate(self, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def _invalid_request(self, message: str) -> _Fault:
        raise NotImplementedError

    def _http_fault(self, fault: HttpFault, body: dict[str, Any]) -> _Fault:
        raise NotImplementedError

    def _prompt_blocks(self, body: dict[str, Any]) -> tuple[list[Any], list[int]]:
        raise NotImplementedError

    def _cache_use(self, hashes: list[bytes], tokens: list[int], breakpoints: list[int]) -> tuple[int, int]:
        raise NotImplementedError

    def _message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        raise NotImplementedError

    def _events(self, body: dict[str, Any], item: ScriptItem) -> AsyncIterator[bytes]:
        raise NotImplementedError


def _cut(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


def _arguments_text(call: FakeToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else _dumps(call.arguments)


def _retry_headers(fault: HttpFault) -> dict[str, str]:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        seconds = fault.retry_after
        headers["retry-after"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    return headers


# --- OpenAI Chat Completions ------------------------------------------------

_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        "Limit 500, Used 500, Requested 1. Please try again in 120ms. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def _openai_error(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class FakeOpenAIServer(_FakeServer):
    """A fake of `POST /v1/chat/completions`; `base_url` ends in `/v1` like the SDK's."""

    protocol = "openai"
    path = "/v1/chat/completions"
    base_path = "/v1"
    input_tokens_include_cache = True

    def _response_headers(self) -> dict[str, str]:
        return {"x-request-id": _random_id("req_", 32), "openai-processing-ms": "1"}

    def _check_auth(self, request: web.Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise _Fault(
                401,
                _openai_error(
                    "You didn't provide an API key. You need to provide your API key in an Authorization "
                    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API "
                    "key from https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                ),
            )
        key = header[7:].strip()
        if key != self.api_key:
            masked = f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}" if len(key) > 7 else "*" * len(key)
            raise _Fault(
                401,
                _openai_error(
                    f"Incorrect API key provided: {masked}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )

    def _invalid_request(self, message: str) -> _Fault:
        return _Fault(400, _openai_error(message, "invalid_request_error"))

    def _http_fault(self, fault: HttpFault, body: dict[str, Any]) -> _Fault:
        kind, code, template = _OPENAI_ERRORS.get(
            fault.status, ("server_error" if fault.status >= 500 else "invalid_request_error", None, "Error.")
        )
        message = fault.message or template.format(model=body.get("model", ""))
        return _Fault(fault.status, _openai_error(message, kind, code), _retry_headers(fault))

    def _validate(self, body: dict[str, Any]) -> None:
        for required in ("model", "messages"):
            if required not in body:
                raise _Fault(
                    400,
                    _openai_error(
                        f"Missing required parameter: '{required}'.",
                        "invalid_request_error",
                        "missing_required_parameter",
                        required,
                    ),
                )
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            raise self._invalid_request("Invalid 'messages': empty array. Expected an array with minimum length 1.")
        if "parallel_tool_calls" in body and not body.get("tools"):
            raise self._invalid_request(
                "Invalid value for 'parallel_tool_calls': only allowed when 'tools' are specified."
            )
        if "stream_options" in body and not body.get("stream"):
            raise self._invalid_request("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
        pending: set[str] = set()
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role == "tool":
                call_id = message.get("tool_call_id")
                if call_id not in pending:
                    raise self._invalid_request(
                        f"Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                        f"message with 'tool_calls' (messages[{index}], tool_call_id {call_id!r})."
                    )
                pending.discard(call_id)
                continue
            if pending:
                raise self._invalid_request(
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                    f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                    f"{', '.join(sorted(pending))}"
                )
            if role == "assistant":
                pending = {call["id"] for call in message.get("tool_calls") or ()}
            elif role not in ("system", "developer", "user"):
                raise self._invalid_request(
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                    "'tool', and 'developer'."
                )

    def _prompt_blocks(self, body: dict[str, Any]) -> tuple[list[Any], list[int]]:
        blocks: list[Any] = [{"tools": body["tools"]}] if body.get("tools") else []
        blocks.extend(body["messages"])
        return blocks, []

    def _cache_use(self, hashes: list[bytes], tokens: list[int], breakpoints: list[int]) -> tuple[int, int]:
        # OpenAI caches automatically: any earlier prompt's prefix at a message
        # boundary counts, from 1024 tokens on, in steps of 128.
        all_ends = range(1, len(hashes) + 1)
        read = self._cache.hit(hashes, tokens, all_ends)
        self._cache.store(hashes, all_ends)
        if read < self.min_cacheable_tokens:
            return 0, 0
        return read - (read - self.min_cacheable_tokens) % 128 if self.min_cacheable_tokens else read, 0

    def _usage_json(self, usage: _Usage) -> dict[str, Any]:
        prompt = usage.uncached + usage.cache_read + usage.cache_write
        return {
            "prompt_tokens": prompt,
            "completion_tokens": usage.output,
            "total_tokens": prompt + usage.output,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": usage.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": call.id or _random_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": _arguments_text(call)},
            }
            for call in reply.tool_calls
        ]

    @staticmethod
    def _finish_reason(reply: Reply) -> str:
        return reply.stop_reason or ("tool_calls" if reply.tool_calls else "stop")

    def _envelope(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        return {
            "id": _random_id("chatcmpl-", 29),
            "object": kind,
            "created": int(time.time()),
            "model": body["model"],
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }

    def _message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or (None if reply.tool_calls else ""),
            "refusal": None,
            "annotations": [],
        }
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(reply)
        return {
            **self._envelope(body, "chat.completion"),
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish_reason(reply)}
            ],
            "usage": self._usage_json(self._usage(body, reply)),
        }

    async def _events(self, body: dict[str, Any], item: ScriptItem) -> AsyncIterator[bytes]:
        envelope = self._envelope(body, "chat.completion.chunk")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None) -> bytes:
            data: dict[str, Any] = {
                **envelope,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                data["usage"] = None
            return f"data: {_dumps(data)}\n\n".encode()

        reply = item if isinstance(item, Reply) else Reply(text=item) if isinstance(item, str) else None
        text = reply.text if reply is not None else getattr(item, "after_text", "")
        opening = "" if text or reply is None or not reply.tool_calls else None
        yield chunk({"role": "assistant", "content": opening, "refusal": None})
        if isinstance(item, MalformedBody):
            yield f"data: {item.body}\n\n".encode()
            return
        if reply is not None and reply.reasoning:
            for piece in _pieces(reply.reasoning, self.stream_chunk_chars):
                yield chunk({"reasoning_content": piece})
        for piece in _pieces(text, self.stream_chunk_chars):
            yield chunk({"content": piece})
        if isinstance(item, MidStreamError):
            error = _openai_error(item.message, "server_error", item.error_type)
            yield f"data: {_dumps(error)}\n\n".encode()
            return
        if reply is None:
            return
        for index, call in enumerate(self._tool_calls(reply)):
            function = call["function"]
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": function["name"], "arguments": ""},
                        }
                    ]
                }
            )
            for piece in _pieces(function["arguments"], self.stream_chunk_chars):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, self._finish_reason(reply))
        if include_usage:
            final = {**envelope, "choices": [], "usage": self._usage_json(self._usage(body, reply))}
            yield f"data: {_dumps(final)}\n\n".encode()
        yield b"data: [DONE]\n\n"


# --- Anthropic Messages -----------------------------------------------------

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def _anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": _random_id("req_011C")}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {_dumps(data)}\n\n".encode()


class FakeAnthropicServer(_FakeServer):
    """A fake of `POST /v1/messages`; `base_url` is the host, like the SDK's.

    It checks what the real API checks and tests most want to catch:
    `x-api-key`, `anthropic-version`, `max_tokens`, tool_use/tool_result
    pairing, at most four cache breakpoints, and, with thinking enabled,
    that thinking blocks come back first and unmodified (signatures are real
    HMACs of the thinking text, so any edit is refused).
    """

    protocol = "anthropic"
    path = "/v1/messages"
    base_path = ""
    input_tokens_include_cache = False

    def app(self) -> web.Application:
        application = super().app()
        application.router.add_post(f"{self.path}/count_tokens", self._count_tokens)
        return application

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        """The token-counting endpoint: the same checks as a message, no script item used, no cache effect."""
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(RecordedRequest(self.protocol, request.path, dict(request.headers), body))
        try:
            self._check_auth(request)
            if not isinstance(body, dict) or "model" not in body or "messages" not in body:
                raise self._invalid_request("model and messages: Field required")
            for extra in ("max_tokens", "stream"):
                if extra in body:
                    raise self._invalid_request(f"{extra}: Extra inputs are not permitted")
        except _Fault as fault:
            return web.json_response(fault.body, status=fault.status, headers=self._response_headers())
        counted = {key: body[key] for key in ("system", "tools", "messages") if key in body}
        return web.json_response({"input_tokens": _estimate_tokens(_dumps(counted))}, headers=self._response_headers())

    def _response_headers(self) -> dict[str, str]:
        return {"request-id": _random_id("req_011C")}

    def _check_auth(self, request: web.Request) -> None:
        if self.api_key is not None:
            # The documented header is x-api-key; recent official SDKs send the
            # same key as a bearer token instead, which the API also accepts.
            key = request.headers.get("x-api-key")
            bearer = request.headers.get("Authorization", "")
            if not key and bearer.startswith("Bearer "):
                key = bearer[7:].strip()
            if not key:
                raise _Fault(401, _anthropic_error("authentication_error", "x-api-key header is required"))
            if key != self.api_key:
                raise _Fault(401, _anthropic_error("authentication_error", "invalid x-api-key"))
        if not request.headers.get("anthropic-version"):
            raise self._invalid_request("anthropic-version: header is required")

    def _invalid_request(self, message: str) -> _Fault:
        return _Fault(400, _anthropic_error("invalid_request_error", message))

    def _http_fault(self, fault: HttpFault, body: dict[str, Any]) -> _Fault:
        kind, template = _ANTHROPIC_ERRORS.get(
            fault.status, ("api_error" if fault.status >= 500 else "invalid_request_error", "Error")
        )
        message = fault.message or template.format(model=body.get("model", ""))
        return _Fault(fault.status, _anthropic_error(kind, message), _retry_headers(fault))

    def _validate(self, body: dict[str, Any]) -> None:
        for required in ("model", "max_tokens", "messages"):
            if required not in body:
                raise self._invalid_request(f"{required}: Field required")
        thinking = body.get("thinking") or {}
        thinking_enabled = thinking.get("type") == "enabled"
        if thinking_enabled:
            budget = thinking.get("budget_tokens", 0)
            if budget < 1024:
                raise self._invalid_request(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                )
            if body["max_tokens"] <= budget:
                raise self._invalid_request("`max_tokens` must be greater than `thinking.budget_tokens`.")
        system = body.get("system")
        system_blocks = system if isinstance(system, list) else []
        breakpoints = sum(
            1
            for block in [*(body.get("tools") or ()), *system_blocks, *_message_blocks(body["messages"])]
            if isinstance(block, dict) and "cache_control" in block
        )
        if breakpoints > 4:
            raise self._invalid_request(
                f"A maximum of 4 blocks with cache_control may be provided. Found {breakpoints}."
            )
        pending: set[str] = set()
        last_assistant: tuple[int, list[Any]] | None = None
        for index, message in enumerate(body["messages"]):
            content = message.get("content")
            blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
            if message.get("role") == "user":
                results = {block.get("tool_use_id") for block in blocks if block.get("type") == "tool_result"}
                unexpected = results - pending
                if unexpected:
                    raise self._invalid_request(
                        f"messages.{index}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{', '.join(sorted(str(u) for u in unexpected))}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message."
                    )
                if pending - results:
                    raise self._invalid_request(
                        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately "
                        f"after: {', '.join(sorted(pending - results))}. Each `tool_use` block must have a "
                        "corresponding `tool_result` block in the next message."
                    )
                pending = set()
            elif message.get("role") == "assistant":
                if pending:
                    raise self._invalid_request(
                        f'messages.{index}: roles must alternate between "user" and "assistant".'
                    )
                pending = {block["id"] for block in blocks if block.get("type") == "tool_use"}
                last_assistant = (index, blocks)
                for block_index, block in enumerate(blocks):
                    if block.get("type") == "thinking" and block.get("signature") != self._signature(
                        block.get("thinking", "")
                    ):
                        raise self._invalid_request(
                            f"messages.{index}.content.{block_index}: Invalid `signature` in `thinking` block"
                        )
            else:
                raise self._invalid_request(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if thinking_enabled and last_assistant is not None:
            index, blocks = last_assistant
            uses_tools = any(block.get("type") == "tool_use" for block in blocks)
            first = blocks[0].get("type") if blocks else None
            if uses_tools and first not in ("thinking", "redacted_thinking"):
                raise self._invalid_request(
                    f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                    f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
                    "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). "
                    "We recommend you include thinking blocks from previous turns."
                )

    def _prompt_blocks(self, body: dict[str, Any]) -> tuple[list[Any], list[int]]:
        # Anthropic's cache order: tools, then system, then messages.
        system = body.get("system")
        system_blocks = system if isinstance(system, list) else ([{"type": "text", "text": system}] if system else [])
        blocks: list[Any] = [*(body.get("tools") or ()), *system_blocks, *_message_blocks(body["messages"])]
        breakpoints = [
            index + 1 for index, block in enumerate(blocks) if isinstance(block, dict) and "cache_control" in block
        ]
        return blocks, breakpoints

    def _cache_use(self, hashes: list[bytes], tokens: list[int], breakpoints: list[int]) -> tuple[int, int]:
        # A breakpoint hits if its own prefix was cached, or the prefix at any
        # of the 20 block boundaries before it: that is how the previous
        # turn's breakpoint is found once the conversation has grown.
        candidates = {end for breakpoint in breakpoints for end in range(max(1, breakpoint - 20), breakpoint + 1)}
        read = self._cache.hit(hashes, tokens, candidates)
        cacheable = [end for end in breakpoints if tokens[end - 1] >= self.min_cacheable_tokens]
        if not cacheable:
            return read, 0
        write = max(tokens[cacheable[-1] - 1] - read, 0)
        self._cache.store(hashes, cacheable)
        return read, write

    def _usage_json(self, usage: _Usage) -> dict[str, Any]:
        return {
            "input_tokens": usage.uncached,
            "cache_creation_input_tokens": usage.cache_write,
            "cache_read_input_tokens": usage.cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": usage.cache_write, "ephemeral_1h_input_tokens": 0},
            "output_tokens": usage.output,
            "service_tier": "standard",
        }

    def _content(self, reply: Reply) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if reply.reasoning:
            content.append(
                {"type": "thinking", "thinking": reply.reasoning, "signature": self._signature(reply.reasoning)}
            )
        if reply.redacted_thinking:
            content.append({"type": "redacted_thinking", "data": reply.redacted_thinking})
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for call in reply.tool_calls:
            if not isinstance(call.arguments, dict):
                raise ValueError("FakeAnthropicServer tool calls need dict arguments: the API always sends an object")
            content.append(
                {
                    "type": "tool_use",
                    "id": call.id or _random_id("toolu_01"),
                    "name": call.name,
                    "input": call.arguments,
                }
            )
        return content

    @staticmethod
    def _stop_reason(reply: Reply) -> str:
        return reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")

    def _message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        return {
            "id": _random_id("msg_01"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": self._content(reply),
            "stop_reason": self._stop_reason(reply),
            "stop_sequence": None,
            "usage": self._usage_json(self._usage(body, reply)),
        }

    async def _events(self, body: dict[str, Any], item: ScriptItem) -> AsyncIterator[bytes]:
        reply = item if isinstance(item, Reply) else Reply(text=item) if isinstance(item, str) else None
        usage = self._usage(body, reply or Reply())
        start_usage = self._usage_json(usage)
        start_usage["output_tokens"] = 1
        message = {
            "id": _random_id("msg_01"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        yield _sse("message_start", {"type": "message_start", "message": message})
        if isinstance(item, MalformedBody):
            yield f"event: content_block_start\ndata: {item.body}\n\n".encode()
            return
        content = (
            self._content(reply) if reply is not None else [{"type": "text", "text": getattr(item, "after_text", "")}]
        )
        size = self.stream_chunk_chars
        for index, block in enumerate(content):
            kind = block["type"]
            if kind == "text":
                yield _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                )
                if index == 0:
                    yield _sse("ping", {"type": "ping"})
                for piece in _pieces(block["text"], size):
                    yield _sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}},
                    )
                if reply is None:
                    break
            elif kind == "thinking":
                yield _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                )
                for piece in _pieces(block["thinking"], size):
                    yield _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "thinking_delta", "thinking": piece},
                        },
                    )
                yield _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "signature_delta", "signature": block["signature"]},
                    },
                )
            elif kind == "redacted_thinking":
                yield _sse(
                    "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
                )
            elif kind == "tool_use":
                yield _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                    },
                )
                yield _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": ""},
                    },
                )
                for piece in _pieces(_dumps(block["input"]), size):
                    yield _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        },
                    )
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        if isinstance(item, MidStreamError):
            error = {"type": "error", "error": {"type": item.error_type, "message": item.message}}
            yield _sse("error", error)
            return
        if reply is None:
            return
        final_usage = {
            "input_tokens": usage.uncached,
            "cache_creation_input_tokens": usage.cache_write,
            "cache_read_input_tokens": usage.cache_read,
            "output_tokens": usage.output,
        }
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop_reason(reply), "stop_sequence": None},
                "usage": final_usage,
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})


def _message_blocks(messages: Any) -> list[Any]:
    blocks: list[Any] = []
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            blocks.extend(content)
        elif content is not None:
            blocks.append({"type": "text", "text": content, "role": message.get("role")})
    return blocks


# --- Standalone process -----------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m retinue.testing.fake_servers",
        description="Serve a fake OpenAI or Anthropic API. Prints the bound port on the first line of stdout.",
    )
    parser.add_argument("--protocol", choices=("openai", "anthropic"), required=True)
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


async def _serve(args: argparse.Namespace) -> None:
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

    server_class = FakeOpenAIServer if args.protocol == "openai" else FakeAnthropicServer
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
    print(f"fake {args.protocol} server at {server.base_url}", file=sys.stderr, flush=True)
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


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
