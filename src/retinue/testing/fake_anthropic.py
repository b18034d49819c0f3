"""A fake Anthropic Messages server (`POST /v1/messages`) that speaks the real wire protocol.

Plain and streamed answers follow Anthropic's own JSON and server-sent-event
shapes, usage included, and prompt caching follows the request's
`cache_control` breakpoints, so cache accounting can be tested. The
token-counting endpoint (`/v1/messages/count_tokens`) answers too. Scripts and
faults are those of `retinue.testing.fake_server_base`. Run it as a process of
its own with

    python -m retinue.testing.fake_anthropic --port 0 --reply tool-then-answer --tool-calls 3

(`--help` lists the options).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from functools import cached_property
from typing import Any

from aiohttp import web

from .fake_server_base import (
    FakeServer,
    Fault,
    HttpFault,
    MalformedBody,
    MidStreamError,
    Reply,
    ReplyTokens,
    ScriptItem,
    compact_json,
    estimate_tokens,
    pieces,
    random_id,
    retry_headers,
    serve_from_command_line,
)

__all__ = ["FakeAnthropicServer"]

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
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": random_id("req_011C")}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {compact_json(data)}\n\n".encode()


class FakeAnthropicServer(FakeServer):
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
        body = (await self._record(request)).body
        try:
            self._check_auth(request)
            if not isinstance(body, dict) or "model" not in body or "messages" not in body:
                raise self._invalid_request("model and messages: Field required")
            for extra in ("max_tokens", "stream"):
                if extra in body:
                    raise self._invalid_request(f"{extra}: Extra inputs are not permitted")
        except Fault as fault:
            return web.json_response(fault.body, status=fault.status, headers=self._response_headers())
        counted = {key: body[key] for key in ("system", "tools", "messages") if key in body}
        return web.json_response(
            {"input_tokens": estimate_tokens(compact_json(counted))}, headers=self._response_headers()
        )

    def _response_headers(self) -> dict[str, str]:
        return {"request-id": random_id("req_011C")}

    @cached_property
    def _signing_key(self) -> bytes:
        # One per server, so a signature it did not make itself is refused, as the real API refuses one.
        return secrets.token_bytes(16)

    def _signature(self, thinking: str) -> str:
        digest = hmac.new(self._signing_key, thinking.encode(), hashlib.sha256).digest()
        return base64.b64encode(b"fake-signature:" + digest).decode()

    def _count_tool_results(self, body: Any) -> int:
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            return 0
        return sum(
            1
            for message in messages
            if isinstance(message, dict) and isinstance(message.get("content"), list)
            for block in message["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        )

    def _check_auth(self, request: web.Request) -> None:
        if self.api_key is not None:
            # The documented header is x-api-key; recent official SDKs send the
            # same key as a bearer token instead, which the API also accepts.
            key = request.headers.get("x-api-key")
            bearer = request.headers.get("Authorization", "")
            if not key and bearer.startswith("Bearer "):
                key = bearer[7:].strip()
            if not key:
                raise Fault(401, _anthropic_error("authentication_error", "x-api-key header is required"))
            if key != self.api_key:
                raise Fault(401, _anthropic_error("authentication_error", "invalid x-api-key"))
        if not request.headers.get("anthropic-version"):
            raise self._invalid_request("anthropic-version: header is required")

    def _invalid_request(self, message: str) -> Fault:
        return Fault(400, _anthropic_error("invalid_request_error", message))

    def _http_fault(self, fault: HttpFault, body: dict[str, Any]) -> Fault:
        kind, template = _ANTHROPIC_ERRORS.get(
            fault.status, ("api_error" if fault.status >= 500 else "invalid_request_error", "Error")
        )
        message = fault.message or template.format(model=body.get("model", ""))
        return Fault(fault.status, _anthropic_error(kind, message), retry_headers(fault))

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

    def _usage_json(self, usage: ReplyTokens) -> dict[str, Any]:
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
                    "id": call.id or random_id("toolu_01"),
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
            "id": random_id("msg_01"),
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
            "id": random_id("msg_01"),
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
                for piece in pieces(block["text"], size):
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
                for piece in pieces(block["thinking"], size):
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
                for piece in pieces(compact_json(block["input"]), size):
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


if __name__ == "__main__":
    serve_from_command_line(FakeAnthropicServer, "python -m retinue.testing.fake_anthropic")
