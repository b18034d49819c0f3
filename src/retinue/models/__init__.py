"""Model providers: one file per wire protocol, plus pricing and resolution of model strings.

The model classes to construct yourself, when a model string does not say enough (a key in code, custom
headers, a price for a self-hosted model, retry backoff):

    from retinue.models import OpenAIModel, AnthropicModel

    model = OpenAIModel("qwen2.5", base_url="http://127.0.0.1:8080/v1", timeout=120, connect_timeout=3, max_retries=5)

Each is imported on first use: importing `retinue.models` (which every model string does) must not import
every provider and aiohttp with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .anthropic import AnthropicModel
    from .openai import OpenAIModel

__all__ = ["AnthropicModel", "OpenAIModel"]

_MODULE_OF = {"AnthropicModel": ".anthropic", "OpenAIModel": ".openai"}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
