"""Test helpers: a scripted model (`call` scripts its tool calls), and fake provider servers that speak the real
wire protocols.

The fake servers load on first use, so tests that only need `ScriptedModel`
do not pay for importing an HTTP server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports
from .scripted import ScriptedModel, call

if TYPE_CHECKING:
    from .fake_anthropic import FakeAnthropicServer
    from .fake_openai import FakeOpenAIServer
    from .fake_server_base import (
        DropConnection,
        FakeServer,
        FakeToolCall,
        HttpFault,
        MalformedBody,
        MidStreamError,
        RecordedRequest,
        Reply,
        ScriptItem,
        ToolThenAnswer,
    )

# Name -> the module defining it, imported when the name is first asked for.
_FAKE_SERVER_MODULES = {
    "DropConnection": ".fake_server_base",
    "FakeAnthropicServer": ".fake_anthropic",
    "FakeOpenAIServer": ".fake_openai",
    "FakeServer": ".fake_server_base",
    "FakeToolCall": ".fake_server_base",
    "HttpFault": ".fake_server_base",
    "MalformedBody": ".fake_server_base",
    "MidStreamError": ".fake_server_base",
    "RecordedRequest": ".fake_server_base",
    "Reply": ".fake_server_base",
    "ScriptItem": ".fake_server_base",
    "ToolThenAnswer": ".fake_server_base",
}


__getattr__ = lazy_exports(__name__, _FAKE_SERVER_MODULES)


__all__ = [
    "DropConnection",
    "FakeAnthropicServer",
    "FakeOpenAIServer",
    "FakeServer",
    "FakeToolCall",
    "HttpFault",
    "MalformedBody",
    "MidStreamError",
    "RecordedRequest",
    "Reply",
    "ScriptItem",
    "ScriptedModel",
    "ToolThenAnswer",
    "call",
]
