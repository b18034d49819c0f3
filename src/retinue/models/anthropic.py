"""Anthropic's Messages API, with prompt caching and extended thinking."""

from __future__ import annotations

import json
from typing import Any, Unpack

from ..errors import BadRequestError, ProviderUnavailableError, ResponseFormatError
from ..messages import (
    AssistantMessage,
    ModelRequest,
    ModelResponse,
    Reasoning,
    StopReason,
    ToolCall,
    ToolResultsMessage,
    UserMessage,
)
from ..usage import Usage
from .base import TextSink
from .http import StreamError, post_json, post_stream
from .provider_api import HTTP_MODEL_OPTIONS, HttpModel, HttpModelOptions, ProviderApi
from .resolve import Provider, register_provider

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

ANTHROPIC_API = ProviderApi(
    name="Anthropic",
    prefix="anthropic",
    base_url=ANTHROPIC_BASE_URL,
    key_env_var="ANTHROPIC_API_KEY",
    compatible_key_env_var="ANTHROPIC_COMPATIBLE_API_KEY",
    key_headers=lambda key: {"x-api-key": key},
    headers={"anthropic-version": ANTHROPIC_VERSION},
)

register_provider(
    Provider(
        prefix=ANTHROPIC_API.prefix,
        build=lambda name, base_url, **options: AnthropicModel(
            name, base_url=base_url or ANTHROPIC_BASE_URL, **options
        ),
        forms=(
            "'anthropic:<model>' (e.g. 'anthropic:claude-sonnet-4-5'), which may end in "
            "'?timeout=<seconds>&connect_timeout=<seconds>&max_retries=<n>' (any of them)",
        ),
        bare_names=("claude",),
        key_env_var=ANTHROPIC_API.key_env_var,
        default_spec="anthropic:claude-sonnet-4-5",
        takes_base_url=True,
        options=HTTP_MODEL_OPTIONS,
    )
)

_EPHEMERAL = {"type": "ephemeral"}
_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}
_STOP_REASONS: dict[str | None, StopReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "refusal": "content_filter",
}
_RETRYABLE_STREAM_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})


class AnthropicModel(HttpModel):
    """A Claude model behind the Messages API.

    With `cache_prompt` (the default) requests carry prompt-caching breakpoints
    on the tools, the system prompt and the newest message, so every step of an
    agent reads the previous step's prefix from the cache at a tenth of the price.
    `timeout`, `connect_timeout`, `max_retries` and `retry_backoff` work as for `OpenAIModel`, and a model
    string sets the first three the same way (`anthropic:claude-sonnet-4-5?timeout=60&max_retries=5`).

    A server at another `base_url` (a gateway, a proxy, a compatible server)
    gets `api_key` or ANTHROPIC_COMPATIBLE_API_KEY: ANTHROPIC_API_KEY is only
    ever sent to Anthropic.
    """

    provider_api = ANTHROPIC_API
    api_path = "/v1/messages"

    def __init__(self, model: str, *, cache_prompt: bool = True, **options: Unpack[HttpModelOptions]) -> None:
        super().__init__(model, **options)
        self.cache_prompt = cache_prompt
        self._count_endpoint = self._api.endpoint.at(f"{self.base_url}/v1/messages/count_tokens")

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        self._api.require_key(type(self).__name__)
        body = self._body(request)
        if on_text is None:
            data = await post_json(self._api.endpoint, body)
            return self._parse(data)
        body["stream"] = True
        stream = await post_stream(self._api.endpoint, body, lambda: _MessageStream(on_text))
        return self._response(stream.message(), stream.usage(), stream.stop_reason, stream.response_id)

    async def count_tokens(self, request: ModelRequest) -> int:
        """The exact input tokens of `request`, from Anthropic's counting endpoint (free; one round trip).

        Context policies created with `exact_token_counts=True` use it near their compaction threshold.
        """
        self._api.require_key(type(self).__name__)
        body = self._body(request)
        del body["max_tokens"]
        data = await post_json(self._count_endpoint, body)
        count = data.get("input_tokens") if isinstance(data, dict) else None
        if not isinstance(count, int):
            raise ResponseFormatError(
                f"Anthropic's token count had no input_tokens: {self._api.endpoint.scrub(str(data))[:200]}",
                provider="Anthropic",
            )
        return count

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        settings = request.settings
        max_tokens = settings.max_tokens
        if max_tokens is None:
            max_tokens = DEFAULT_MAX_TOKENS
            if settings.thinking_budget_tokens:
                # The thinking budget is part of max_tokens, which must exceed it.
                max_tokens += settings.thinking_budget_tokens
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens}
        cache = self.cache_prompt
        if request.tools:
            tools: list[dict[str, Any]] = [
                {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
                for tool in request.tools
            ]
            if cache:
                tools[-1]["cache_control"] = _EPHEMERAL
            body["tools"] = tools
            tool_choice: dict[str, Any] | None = None
            if settings.tool_choice is not None:
                tool_choice = {"type": _TOOL_CHOICE[settings.tool_choice]}
            if settings.parallel_tool_calls is False and settings.tool_choice != "none":
                tool_choice = tool_choice or {"type": "auto"}
                tool_choice["disable_parallel_tool_use"] = True
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        if request.instructions:
            system: dict[str, Any] = {"type": "text", "text": request.instructions}
            if cache:
                system["cache_control"] = _EPHEMERAL
            body["system"] = [system]
        body["messages"] = self._messages(request)
        if settings.thinking_budget_tokens:
            body["thinking"] = {"type": "enabled", "budget_tokens": settings.thinking_budget_tokens}
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        if settings.top_p is not None:
            body["top_p"] = settings.top_p
        if settings.extra:
            body.update(settings.extra)
        return body

    def _messages(self, request: ModelRequest) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for message in request.messages:
            if isinstance(message, UserMessage):
                _append_user_blocks(messages, [{"type": "text", "text": message.content}])
            elif isinstance(message, ToolResultsMessage):
                blocks: list[dict[str, Any]] = []
                for result in message.results:
                    block: dict[str, Any] = {
                        "type": "tool_result",
                        "tool_use_id": result.tool_call_id,
                        "content": result.content,
                    }
                    if result.is_error:
                        block["is_error"] = True
                    blocks.append(block)
                _append_user_blocks(messages, blocks)
            elif isinstance(message, AssistantMessage):
                content = _assistant_blocks(message)
                if content:
                    messages.append({"role": "assistant", "content": content})
        if self.cache_prompt and messages:
            last_block = messages[-1]["content"][-1]
            # Thinking blocks cannot carry a breakpoint, and neither can empty text.
            if last_block["type"] not in ("thinking", "redacted_thinking") and (
                last_block["type"] != "text" or last_block["text"]
            ):
                last_block["cache_control"] = _EPHEMERAL
        return messages

    def _parse(self, data: Any) -> ModelResponse:
        try:
            if data.get("type") == "error":
                error = data.get("error") or {}
                raise ProviderUnavailableError(
                    f"Anthropic answered with an error: {self._api.endpoint.scrub(str(error.get('message', error)))}",
                    provider="Anthropic",
                )
            text: list[str] = []
            calls: list[ToolCall] = []
            reasoning: list[Reasoning] = []
            for block in data["content"]:
                kind = block["type"]
                if kind == "text":
                    text.append(block["text"])
                elif kind == "tool_use":
                    calls.append(_tool_call(block["id"], block["name"], block.get("input")))
                elif kind == "thinking":
                    reasoning.append(Reasoning(text=block["thinking"], signature=block.get("signature")))
                elif kind == "redacted_thinking":
                    reasoning.append(Reasoning(redacted_data=block["data"]))
            message = AssistantMessage(text="".join(text), tool_calls=calls, reasoning=reasoning)
            return self._response(message, usage_from(data["usage"]), data.get("stop_reason"), data.get("id"))
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ResponseFormatError(
                f"Anthropic answered with a message missing {type(exc).__name__}: {exc}", provider="Anthropic"
            ) from None

    def _response(
        self, message: AssistantMessage, usage: Usage, stop_reason: str | None, response_id: str | None
    ) -> ModelResponse:
        usage.cost_usd = self._api.cost(usage)
        return ModelResponse(
            message=message,
            usage=usage,
            model=self._api.model_id,
            stop_reason=_STOP_REASONS.get(stop_reason, "other"),
            response_id=response_id,
        )


def _append_user_blocks(messages: list[dict[str, Any]], blocks: list[dict[str, Any]]) -> None:
    # Tool results and any text that follows them must share one user turn:
    # the API wants every tool_result right after the assistant's tool_use.
    if messages and messages[-1]["role"] == "user":
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": "user", "content": blocks})


def _assistant_blocks(message: AssistantMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for thought in message.reasoning:
        # Only Anthropic's own thinking (signed, or redacted) may be sent back;
        # reasoning from another provider has no signature and would be refused.
        if thought.redacted_data is not None:
            blocks.append({"type": "redacted_thinking", "data": thought.redacted_data})
        elif thought.signature:
            blocks.append({"type": "thinking", "thinking": thought.text, "signature": thought.signature})
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    return blocks


def _tool_call(call_id: str, name: str, arguments: Any) -> ToolCall:
    if isinstance(arguments, dict):
        return ToolCall(call_id, name, arguments)
    return ToolCall(call_id, name, {}, invalid_arguments=json.dumps(arguments))


def usage_from(raw: dict[str, Any]) -> Usage:
    """Messages API usage, normalised: Anthropic's `input_tokens` excludes cached tokens."""
    uncached = raw.get("input_tokens") or 0
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=raw.get("output_tokens") or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        requests=1,
    )


class _Block:
    """One content block being streamed; its pieces are joined at the end."""

    __slots__ = ("call_id", "data", "input", "kind", "name", "pieces", "signature")

    def __init__(self, start: dict[str, Any]) -> None:
        self.kind: str = start["type"]
        self.pieces: list[str] = []
        self.signature: str = start.get("signature") or ""
        self.call_id: str = start.get("id", "")
        self.name: str = start.get("name", "")
        self.input: Any = start.get("input")
        self.data: str = start.get("data", "")
        initial = start.get("text") or start.get("thinking")
        if initial:
            self.pieces.append(initial)


class _MessageStream:
    """Assembles one streamed message from the Messages API's event stream."""

    __slots__ = ("_blocks", "_on_text", "_stopped", "_usage", "response_id", "stop_reason", "text_delivered")

    def __init__(self, on_text: TextSink) -> None:
        self._on_text = on_text
        self._blocks: dict[int, _Block] = {}
        self._usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.response_id: str | None = None
        self._stopped = False
        self.text_delivered = False

    def is_complete(self) -> bool:
        return self._stopped

    def feed(self, event: str, data: str) -> bool:
        if event == "ping":
            return False  # a keep-alive, which the API sends while the model has nothing to say yet
        try:
            payload = json.loads(data)
            kind = payload["type"]
            if kind == "content_block_delta":
                self._delta(self._blocks[payload["index"]], payload["delta"])
            elif kind == "content_block_start":
                block = _Block(payload["content_block"])
                self._blocks[payload["index"]] = block
                if block.kind == "text" and block.pieces:
                    self._deliver(block.pieces[0])
            elif kind == "message_start":
                message = payload["message"]
                self.response_id = message.get("id")
                self._usage.update(message.get("usage") or {})
            elif kind == "message_delta":
                self.stop_reason = payload["delta"].get("stop_reason") or self.stop_reason
                # Counts here are cumulative, so they replace those from message_start.
                self._usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
            elif kind == "message_stop":
                self._stopped = True
            elif kind == "error":
                self._error(payload.get("error") or {})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StreamError(
                ResponseFormatError(
                    f"Anthropic streamed a malformed '{event}' event ({type(exc).__name__}: {exc}): {data[:200]}",
                    provider="Anthropic",
                ),
                retryable=False,
            ) from None
        return True

    def _delta(self, block: _Block, delta: dict[str, Any]) -> None:
        kind = delta["type"]
        if kind == "text_delta":
            block.pieces.append(delta["text"])
            self._deliver(delta["text"])
        elif kind == "input_json_delta":
            block.pieces.append(delta["partial_json"])
        elif kind == "thinking_delta":
            block.pieces.append(delta["thinking"])
        elif kind == "signature_delta":
            block.signature += delta["signature"]

    def _deliver(self, piece: str) -> None:
        if piece:
            self.text_delivered = True
            self._on_text(piece)

    def _error(self, error: dict[str, Any]) -> None:
        kind = error.get("type", "")
        detail = f"Anthropic reported {kind or 'an error'} mid-stream: {error.get('message', '')}"
        if kind in _RETRYABLE_STREAM_ERRORS:
            raise StreamError(ProviderUnavailableError(detail, provider="Anthropic"), retryable=True)
        raise StreamError(BadRequestError(detail, provider="Anthropic"), retryable=False)

    def usage(self) -> Usage:
        return usage_from(self._usage)

    def message(self) -> AssistantMessage:
        text: list[str] = []
        calls: list[ToolCall] = []
        reasoning: list[Reasoning] = []
        for _, block in sorted(self._blocks.items()):
            if block.kind == "text":
                text.extend(block.pieces)
            elif block.kind == "tool_use":
                calls.append(self._tool_call(block))
            elif block.kind == "thinking":
                reasoning.append(Reasoning(text="".join(block.pieces), signature=block.signature or None))
            elif block.kind == "redacted_thinking":
                reasoning.append(Reasoning(redacted_data=block.data))
        return AssistantMessage(text="".join(text), tool_calls=calls, reasoning=reasoning)

    @staticmethod
    def _tool_call(block: _Block) -> ToolCall:
        raw = "".join(block.pieces)
        if not raw:
            return _tool_call(block.call_id, block.name, block.input if block.input is not None else {})
        try:
            arguments = json.loads(raw)
        except ValueError:
            return ToolCall(block.call_id, block.name, {}, invalid_arguments=raw)
        return _tool_call(block.call_id, block.name, arguments)
