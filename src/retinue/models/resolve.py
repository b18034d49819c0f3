"""Model strings ("anthropic:claude-sonnet-4-5", "local", ...) to Model instances."""

from __future__ import annotations

import importlib
import os
import re
import threading

from ..errors import MissingDependencyError, UnknownModelError
from .base import Model

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"
DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
MODEL_ENV_VAR = "RETINUE_MODEL"

VALID_FORMS = (
    "'anthropic:<model>' (e.g. 'anthropic:claude-sonnet-4-5'), "
    "'openai:<model>' (e.g. 'openai:gpt-4.1-mini'), "
    "'openai:<model>@<base_url>' for an OpenAI-compatible server "
    "(e.g. 'openai:qwen2.5@http://127.0.0.1:8080/v1'), "
    "'local' or 'local:<name>'"
)

# Only an http(s) URL after '@' counts as a base URL, so '@' in a model name survives.
_AT_BASE_URL = re.compile(r"^(?P<model>.+?)@(?P<base_url>https?://.+)$")

_cache: dict[str, Model] = {}
_lock = threading.Lock()


def default_model_spec() -> str:
    """The model used when none is named: $RETINUE_MODEL, else whichever API key is set, else local."""
    configured = os.environ.get(MODEL_ENV_VAR, "").strip()
    if configured:
        return configured
    if os.environ.get("ANTHROPIC_API_KEY"):
        return f"anthropic:{DEFAULT_ANTHROPIC_MODEL}"
    if os.environ.get("OPENAI_API_KEY"):
        return f"openai:{DEFAULT_OPENAI_MODEL}"
    return "local"


def resolve_model(spec: str | Model | None) -> Model:
    """The model a spec names; instances are shared by every agent naming the same spec."""
    if spec is None:
        spec = default_model_spec()
    if not isinstance(spec, str):
        return spec
    model = _cache.get(spec)
    if model is None:
        with _lock:
            model = _cache.get(spec)
            if model is None:
                model = _cache[spec] = _build(spec)
    return model


def _build(spec: str) -> Model:
    provider, colon, name = spec.strip().partition(":")
    if provider == "local":
        return _local_model(name or None)
    if not colon or not name:
        raise UnknownModelError(f"'{spec}' is not a model string retinue knows.{_hint(spec)} Use {VALID_FORMS}.")
    base_url: str | None = None
    at_url = _AT_BASE_URL.match(name)
    if at_url:
        name, base_url = at_url["model"], at_url["base_url"]
    if provider == "openai":
        from .openai import OpenAIModel

        return OpenAIModel(name) if base_url is None else OpenAIModel(name, base_url=base_url)
    if provider == "anthropic":
        from .anthropic import AnthropicModel

        return AnthropicModel(name) if base_url is None else AnthropicModel(name, base_url=base_url)
    raise UnknownModelError(f"Unknown model provider '{provider}' in '{spec}'. Use {VALID_FORMS}.")


def _local_model(name: str | None) -> Model:
    try:
        local = importlib.import_module(".local", __package__)
    except ImportError as exc:
        raise MissingDependencyError("Local models", "local", exc.name or "retinue.models.local") from exc
    model: Model = local.LocalModel(name)
    return model


def _hint(spec: str) -> str:
    if spec.startswith("claude"):
        return f" Did you mean 'anthropic:{spec}'?"
    if spec.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
        return f" Did you mean 'openai:{spec}'?"
    return ""
