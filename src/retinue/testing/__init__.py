"""Test helpers: a scripted model, and fake provider servers that speak the real wire protocols.

The fake servers load on first use, so tests that only need `ScriptedModel`
do not pay for importing an HTTP server.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fake_servers import (
        DropConnection,
        FakeAnthropicServer,
        FakeOpenAIServer,
        FakeToolCall,
        HttpFault,
        MalformedBody,
        MidStreamError,
        RecordedRequest,
        Reply,
        ScriptItem,
        ToolThenAnswer,
    )

# scripted.py is written separately; the fake servers must not depend on it.
with contextlib.suppress(ImportError):
    from .scripted import ScriptedModel

_FAKE_SERVER_NAMES = frozenset(
    {
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
    }
)


def __getattr__(name: str) -> Any:
    if name in _FAKE_SERVER_NAMES:
        return getattr(importlib.import_module(".fake_servers", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "ScriptedModel",
    "ToolThenAnswer",
]
