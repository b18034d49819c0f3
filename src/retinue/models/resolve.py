"""Model strings ("anthropic:claude-sonnet-4-5", "local", ...) to Model instances.

What a string means is up to the provider registered under its prefix (the
part before the first ':'). A provider registers itself from its own module by
calling `register_provider`; nothing here names one. The providers retinue
ships are listed in `builtin_providers`, and each one's module is imported
only when a model string names its prefix, or when every provider must be
asked: to list the valid forms in an error, or to choose the default model.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigurationError, UnknownModelError
from .base import Model, close_model
from .builtin_providers import BUILT_IN_PROVIDERS

MODEL_ENV_VAR = "RETINUE_MODEL"

# Only an http(s) URL after '@' counts as a base URL, so '@' in a model name survives.
_AT_BASE_URL = re.compile(r"^(?P<model>.+?)@(?P<base_url>https?://.+)$")

ModelBuilder = Callable[[str, str | None], Model]


@dataclass(frozen=True, slots=True)
class Provider:
    """What a provider registers: its prefix, how to build a model, and how it is explained to users.

    Args:
        prefix: The part of a model string before ':' (`openai` in `openai:gpt-4.1`).
        build: Makes the model `<prefix>:<name>` names, given the name and, for a string ending in
            `@http(s)://...`, that base URL (else None).
        forms: The model strings this provider takes, as an error message lists them
            ("'openai:<model>' (e.g. 'openai:gpt-4.1-mini')").
        bare_names: Starts of model names that belong to this provider, so a bare `claude-sonnet-4-5`
            gets the hint "Did you mean 'anthropic:claude-sonnet-4-5'?".
        key_env_var: The variable holding the key to the provider's own API. While it is set,
            `default_spec` can be the default model; a provider without one is the default only
            when no provider's key is set.
        default_spec: The model string used when none is named and this provider is chosen;
            None if the provider is never the default.
        name_optional: The prefix alone is a model string too (`local`); `build` then gets "".
        takes_base_url: `<name>@<base_url>` names a model at a server of the user's choosing.
    """

    prefix: str
    build: ModelBuilder
    forms: tuple[str, ...]
    bare_names: tuple[str, ...] = ()
    key_env_var: str | None = None
    default_spec: str | None = None
    name_optional: bool = False
    takes_base_url: bool = False


_providers: dict[str, Provider] = {}
_cache: dict[str, Model] = {}
_lock = threading.Lock()


def register_provider(provider: Provider) -> None:
    """Make model strings with `provider.prefix` resolve through `provider`; call it from the provider's module."""
    registered = _providers.get(provider.prefix)
    if registered is not None and registered != provider:
        raise ConfigurationError(
            f"Two providers claim the model prefix '{provider.prefix}' (one built by "
            f"{registered.build.__module__}, one by {provider.build.__module__}); register one under another prefix."
        )
    _providers[provider.prefix] = provider


def registered_providers() -> list[Provider]:
    """Every provider, those retinue ships first (in the order they are listed), then others as they registered."""
    built_in = [provider for prefix in BUILT_IN_PROVIDERS if (provider := _provider(prefix)) is not None]
    return built_in + [provider for prefix, provider in _providers.items() if prefix not in BUILT_IN_PROVIDERS]


def default_model_spec() -> str:
    """The model used when none is named: $RETINUE_MODEL, else that of the first provider whose key is set.

    With no key set, it is the default of the first provider that needs none (of retinue's own, the local model).
    """
    configured = os.environ.get(MODEL_ENV_VAR, "").strip()
    if configured:
        return configured
    keyless: str | None = None
    for provider in registered_providers():
        if provider.default_spec is None:
            continue
        if provider.key_env_var is None:
            keyless = keyless or provider.default_spec
        elif os.environ.get(provider.key_env_var):
            return provider.default_spec
    if keyless is None:
        raise UnknownModelError(f"No model was named and no provider can be the default: set {MODEL_ENV_VAR}.")
    return keyless


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


async def close_resolved_models() -> None:
    """Close, in the running event loop, every model a model string has named; call it before the loop ends.

    The models stay usable (see `Model`), so this is safe while other loops use them.
    """
    for model in list(_cache.values()):
        await close_model(model)


def _build(spec: str) -> Model:
    prefix, colon, name = spec.strip().partition(":")
    provider = _provider(prefix)
    if provider is not None and provider.name_optional:
        return provider.build(name, None)
    if not colon or not name:
        raise UnknownModelError(f"'{spec}' is not a model string retinue knows.{_hint(spec)} Use {_forms()}.")
    if provider is None:
        raise UnknownModelError(f"Unknown model provider '{prefix}' in '{spec}'. Use {_forms()}.")
    at_url = _AT_BASE_URL.match(name) if provider.takes_base_url else None
    if at_url:
        return provider.build(at_url["model"], at_url["base_url"])
    return provider.build(name, None)


def _provider(prefix: str) -> Provider | None:
    provider = _providers.get(prefix)
    if provider is None and prefix in BUILT_IN_PROVIDERS:
        module = BUILT_IN_PROVIDERS[prefix]
        importlib.import_module(module)  # registers the provider
        provider = _providers.get(prefix)
        if provider is None:
            raise ConfigurationError(f"{module} is listed as the '{prefix}' provider but registers no such prefix.")
    return provider


def _forms() -> str:
    return ", ".join(form for provider in registered_providers() for form in provider.forms)


def _hint(spec: str) -> str:
    for provider in registered_providers():
        if provider.bare_names and spec.startswith(provider.bare_names):
            return f" Did you mean '{provider.prefix}:{spec}'?"
    return ""
