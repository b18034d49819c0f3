"""A fake OpenAI Chat Completions server (`POST /v1/chat/completions`) that speaks the real wire protocol.

Plain and streamed answers follow OpenAI's own JSON and server-sent-event
shapes, usage included; like the real API it caches prompt prefixes on its
own, so cache accounting can be tested. Scripts and faults are those of
`retinue.testing.fake_server_base`. Run it as a process of its own with

    python -m retinue.testing.fake_openai --port 0 --reply tool-then-answer --tool-calls 3

(`--help` lists the options).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
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
    arguments_text,
    compact_json,
    pieces,
    random_id,
    retry_headers,
    serve_from_command_line,
)

__all__ = ["FakeOpenAIServer"]

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


class FakeOpenAIServer(FakeServer):
    """A fake of `POST /v1/chat/completions`; `base_url` ends in `/v1` like the SDK's."""

    protocol = "openai"
    path = "/v1/chat/completions"
    base_path = "/v1"
    input_tokens_include_cache = True

    def _response_headers(self) -> dict[str, str]:
        return {"x-request-id": random_id("req_", 32), "openai-processing-ms": "1"}

    def _check_auth(self, request: web.Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise Fault(
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
            raise Fault(
                401,
                _openai_error(
                    f"Incorrect API key provided: {masked}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )

    def _invalid_request(self, message: str) -> Fault:
        return Fault(400, _openai_error(message, "invalid_request_error"))

    def _http_fault(self, fault: HttpFault, body: dict[str, Any]) -> Fault:
        kind, code, template = _OPENAI_ERRORS.get(
            fault.status, ("server_error" if fault.status >= 500 else "invalid_request_error", None, "Error.")
        )
        message = fault.message or template.format(model=body.get("model", ""))
        return Fault(fault.status, _openai_error(message, kind, code), retry_headers(fault))

    def _validate(self, body: dict[str, Any]) -> None:
        for required in ("model", "messages"):
            if required not in body:
                raise Fault(
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

    def _count_tool_results(self, body: Any) -> int:
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            return 0
        return sum(1 for message in messages if isinstance(message, dict) and message.get("role") == "tool")

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

    def _usage_json(self, usage: ReplyTokens) -> dict[str, Any]:
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
                "id": call.id or random_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": arguments_text(call)},
            }
            for call in reply.tool_calls
        ]

    @staticmethod
    def _finish_reason(reply: Reply) -> str:
        return reply.stop_reason or ("tool_calls" if reply.tool_calls else "stop")

    def _envelope(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        return {
            "id": random_id("chatcmpl-", 29),
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
            return f"data: {compact_json(data)}\n\n".encode()

        reply = item if isinstance(item, Reply) else Reply(text=item) if isinstance(item, str) else None
        text = reply.text if reply is not None else getattr(item, "after_text", "")
        opening = "" if text or reply is None or not reply.tool_calls else None
        yield chunk({"role": "assistant", "content": opening, "refusal": None})
        if isinstance(item, MalformedBody):
            yield f"data: {item.body}\n\n".encode()
            return
        if reply is not None and reply.reasoning:
            for piece in pieces(reply.reasoning, self.stream_chunk_chars):
                yield chunk({"reasoning_content": piece})
        for piece in pieces(text, self.stream_chunk_chars):
            yield chunk({"content": piece})
        if isinstance(item, MidStreamError):
            error = _openai_error(item.message, "server_error", item.error_type)
            yield f"data: {compact_json(error)}\n\n".encode()
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
            for piece in pieces(function["arguments"], self.stream_chunk_chars):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, self._finish_reason(reply))
        if include_usage:
            final = {**envelope, "choices": [], "usage": self._usage_json(self._usage(body, reply))}
            yield f"data: {compact_json(final)}\n\n".encode()
        yield b"data: [DONE]\n\n"


if __name__ == "__main__":
    serve_from_command_line(FakeOpenAIServer, "python -m retinue.testing.fake_openai")
