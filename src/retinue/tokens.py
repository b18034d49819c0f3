"""Offline token estimates, for limits and context accounting before a call is made.

Exact counts need the provider's tokenizer; this estimate needs nothing and is
close enough to decide when a conversation nears its window: about four
characters per token for English text and JSON, plus a few tokens of framing
per message.
"""

from __future__ import annotations

import json

from .messages import AssistantMessage, Message, ModelRequest, ToolResultsMessage, UserMessage

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate_text_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_message_tokens(message: Message) -> int:
    if isinstance(message, UserMessage):
        chars = len(message.content)
    elif isinstance(message, AssistantMessage):
        chars = len(message.text) + sum(len(r.text) for r in message.reasoning)
        for call in message.tool_calls:
            chars += len(call.name) + len(json.dumps(call.arguments)) if call.arguments else len(call.name)
    elif isinstance(message, ToolResultsMessage):
        chars = sum(len(result.content) + len(result.tool_call_id) for result in message.results)
    else:
        raise TypeError(f"not a message: {message!r}")
    return TOKENS_PER_MESSAGE + (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_request_tokens(request: ModelRequest) -> int:
    """Estimated input tokens of `request`: instructions, tool schemas and every message."""
    total = estimate_text_tokens(request.instructions)
    for schema in request.tools:
        total += estimate_text_tokens(schema.name + schema.description + json.dumps(schema.parameters))
    for message in request.messages:
        total += estimate_message_tokens(message)
    return total
