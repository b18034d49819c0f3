"""OpenAI Chat Completions, and every server that speaks it (vLLM, llama.cpp, Ollama...)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ProviderUnavailableError, ResponseFormatError
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
from .provider_api import HTTP_MODEL_OPTIONS, HttpModel, ProviderApi
from .resolve import Provider, register_provider

OPENAI_BASE_URL = "https://api.openai.com/v1"

OPENAI_API = ProviderApi(
    name="OpenAI",
    prefix="openai",
    base_url=OPENAI_BASE_URL,
    key_env_var="OPENAI_API_KEY",
    compatible_key_env_var="OPENAI_COMPATIBLE_API_KEY",
    key_headers=lambda key: {"Authorization": f"Bearer {key}"},
    compatible_server_name="OpenAI-compatible server",
)

register_provider(
    Provider(
        prefix=OPENAI_API.prefix,
        build=lambda name, base_url, **options: OpenAIModel(name, base_url=base_url or OPENAI_BASE_URL, **options),
        forms=(
            "'openai:<model>' (e.g. 'openai:gpt-4.1-mini')",
            "'openai:<model>@<base_url>' for an OpenAI-compatible server "
            "(e.g. 'openai:qwen2.5@http://127.0.0.1:8080/v1')",
            "either ending in '?timeout=<seconds>&connect_timeout=<seconds>&max_retries=<n>' (any of them)",
        ),
        bare_names=("gpt-", "o1", "o3", "o4", "chatgpt"),
        key_env_var=OPENAI_API.key_env_var,
        default_spec="openai:gpt-4.1-mini",
        takes_base_url=True,
        options=HTTP_MODEL_OPTIONS,
    )
)

# What json.dumps(arguments, ensure_ascii=False) writes, without building an encoder for each call.
_ARGUMENTS_ENCODER = json.JSONEncoder(ensure_ascii=False)

_STOP_REASONS: dict[str | None, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "content_filter",
}


class OpenAIModel(HttpModel):
    """A model behind the OpenAI Chat Completions API.

    With a custom `base_url` this talks to any OpenAI-compatible server; such
    servers often need no key, so a missing one is only an error for OpenAI
    itself. Their key is `api_key` or OPENAI_COMPATIBLE_API_KEY: OPENAI_API_KEY
    is only ever sent to OpenAI. `price` overrides the price table, so self-hosted models can be
    costed too. `timeout` is the seconds allowed for a whole answer, or
    for the first and between two events of a streamed one (keep-alives do
    not count), and `connect_timeout` those allowed to open a connection;
    failures worth retrying, timeouts included, are retried `max_retries`
    times, waiting about `retry_backoff` seconds, doubling each time, unless
    the server says how long to wait. A model string sets them as options:
    `openai:qwen2.5@http://127.0.0.1:8080/v1?timeout=120&max_retries=5`.
    """

    provider_api = OPENAI_API
    api_path = "/chat/completions"

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        self._api.require_key(type(self).__name__)
        body = self._body(request)
        endpoint = self._api.endpoint
        if on_text is None:
            data = await post_json(endpoint, body)
            return self._parse(data)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        stream = await post_stream(endpoint, body, lambda: _CompletionStream(endpoint.provider, on_text))
        return self._response(stream.message(), stream.usage, stream.finish_reason, stream.response_id)

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.instructions:
            messages.append({"role": "system", "content": request.instructions})
        for message in request.messages:
            if isinstance(message, UserMessage):
                messages.append({"role": "user", "content": message.content})
            elif isinstance(message, AssistantMessage):
                messages.append(self._assistant_message(message))
            elif isinstance(message, ToolResultsMessage):
                for result in message.results:
                    messages.append({"role": "tool", "tool_call_id": result.tool_call_id, "content": result.content})
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        settings = request.settings
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
                }
                for tool in request.tools
            ]
            if settings.tool_choice is not None:
                body["tool_choice"] = settings.tool_choice
            if settings.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = settings.parallel_tool_calls
        if settings.max_tokens is not None:
            # OpenAI's reasoning models refuse the older name; compatible servers
            # mostly know only the older one.
            body["max_completion_tokens" if self._api.is_provider_host else "max_tokens"] = settings.max_tokens
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        if settings.top_p is not None:
            body["top_p"] = settings.top_p
        if settings.extra:
            body.update(settings.extra)
        return body

    def _assistant_message(self, message: AssistantMessage) -> dict[str, Any]:
        if not message.tool_calls:
            return {"role": "assistant", "content": message.text}
        calls = []
        for call in message.tool_calls:
            if call.invalid_arguments is not None and self._api.is_provider_host:
                # OpenAI takes back exactly what the model wrote; compatible
                # servers often re-parse arguments and reject the whole request.
                arguments = call.invalid_arguments
            else:
                arguments = _ARGUMENTS_ENCODER.encode(call.arguments)
            calls.append({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}})
        # "" rather than null: OpenAI takes either, some compatible servers (llama.cpp's) only a string.
        return {"role": "assistant", "content": message.text, "tool_calls": calls}

    def _parse(self, data: Any) -> ModelResponse:
        try:
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content") or message.get("refusal") or ""
            calls = [
                tool_call(call["id"], call["function"]["name"], call["function"].get("arguments"))
                for call in message.get("tool_calls") or ()
                if call.get("type", "function") == "function"
            ]
            thought = message.get("reasoning_content") or message.get("reasoning")
            reasoning = [Reasoning(text=thought)] if isinstance(thought, str) and thought else []
            usage = usage_from(data.get("usage"))
            return self._response(
                AssistantMessage(text=text, tool_calls=calls, reasoning=reasoning),
                usage,
                choice.get("finish_reason"),
                data.get("id"),
            )
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise self._format_error(data, exc) from None

    def _format_error(self, data: Any, exc: Exception) -> Exception:
        endpoint = self._api.endpoint
        provider = endpoint.provider
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            detail = endpoint.scrub(str(data["error"].get("message", data["error"])))
            return ProviderUnavailableError(f"{provider} answered with an error: {detail}", provider=provider)
        return ResponseFormatError(
            f"{provider} answered with a chat completion missing {type(exc).__name__}: {exc}", provider=provider
        )

    def _response(
        self, message: AssistantMessage, usage: Usage, finish_reason: str | None, response_id: str | None
    ) -> ModelResponse:
        usage.cost_usd = self._api.cost(usage)
        stop_reason = _STOP_REASONS.get(finish_reason, "other")
        if message.tool_calls and stop_reason == "end_turn":
            stop_reason = "tool_use"  # some compatible servers say "stop" after tool calls
        return ModelResponse(
            message=message, usage=usage, model=self._api.model_id, stop_reason=stop_reason, response_id=response_id
        )


def tool_call(call_id: str, name: str, raw_arguments: Any) -> ToolCall:
    """A ToolCall from the JSON-string arguments, keeping malformed text aside."""
    if not raw_arguments:
        return ToolCall(call_id, name, {})
    if isinstance(raw_arguments, dict):
        return ToolCall(call_id, name, raw_arguments)
    try:
        arguments = json.loads(raw_arguments)
    except (ValueError, TypeError):
        return ToolCall(call_id, name, {}, invalid_arguments=str(raw_arguments))
    if not isinstance(arguments, dict):
        return ToolCall(call_id, name, {}, invalid_arguments=raw_arguments)
    return ToolCall(call_id, name, arguments)


def usage_from(raw: Any) -> Usage:
    """Chat Completions usage; `prompt_tokens` already includes cached tokens."""
    if not raw:
        return Usage(requests=1)
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cache_read_tokens=prompt_details.get("cached_tokens") or 0,
        cache_write_tokens=prompt_details.get("cache_write_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
        requests=1,
    )


class _PartialToolCall:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class _CompletionStream:
    """Assembles one streamed chat completion; tool calls arrive in pieces by index."""

    __slots__ = (
        "_calls",
        "_done",
        "_on_text",
        "_provider",
        "_reasoning",
        "_text",
        "finish_reason",
        "response_id",
        "text_delivered",
        "usage",
    )

    def __init__(self, provider: str, on_text: TextSink) -> None:
        self._provider = provider
        self._on_text = on_text
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _PartialToolCall] = {}
        self.finish_reason: str | None = None
        self.usage = Usage(requests=1)
        self.response_id: str | None = None
        self._done = False
        self.text_delivered = False

    def is_complete(self) -> bool:
        # Some compatible servers end the stream without [DONE]; a finish
        # reason is proof enough that the answer is whole.
        return self._done or self.finish_reason is not None

    def feed(self, event: str, data: str) -> bool:
        if data.startswith("[DONE]"):
            self._done = True
            return True
        try:
            chunk = json.loads(data)
        except ValueError:
            raise StreamError(
                ResponseFormatError(f"{self._provider} streamed an event that is not JSON: {data[:200]}"),
                retryable=False,
            ) from None
        error = chunk.get("error")
        if error:
            detail = error.get("message", error) if isinstance(error, dict) else error
            raise StreamError(
                ProviderUnavailableError(f"{self._provider} reported an error mid-stream: {detail}"),
                retryable=True,
            )
        self.response_id = self.response_id or chunk.get("id")
        if chunk.get("usage"):
            self.usage = usage_from(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if piece:
                self._text.append(piece)
                self.text_delivered = True
                self._on_text(piece)
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if thought:
                self._reasoning.append(thought)
            for call_delta in delta.get("tool_calls") or ():
                self._add_tool_delta(call_delta)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return True

    def _add_tool_delta(self, call_delta: dict[str, Any]) -> None:
        index = call_delta.get("index", len(self._calls))
        partial = self._calls.get(index)
        if partial is None:
            partial = self._calls[index] = _PartialToolCall()
        if call_delta.get("id"):
            partial.id = call_delta["id"]
        function = call_delta.get("function") or {}
        if function.get("name"):
            partial.name = function["name"]
        if function.get("arguments"):
            partial.arguments.append(function["arguments"])

    def message(self) -> AssistantMessage:
        calls = [
            tool_call(partial.id, partial.name, "".join(partial.arguments))
            for _, partial in sorted(self._calls.items())
        ]
        reasoning = [Reasoning(text="".join(self._reasoning))] if self._reasoning else []
        return AssistantMessage(text="".join(self._text), tool_calls=calls, reasoning=reasoning)
