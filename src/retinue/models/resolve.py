"""Model strings ("anthropic:claude-sonnet-4-5", "local", ...) to Model instances.

A model string is `<prefix>:<name>`, then, for a provider that takes them,
`@<base_url>` (an http(s) URL) and `?<option>=<value>&...`:

    openai:gpt-4.1-mini
    openai:qwen2.5@http://127.0.0.1:8080/v1?timeout=120&max_retries=5
    anthropic:claude-sonnet-4-5?connect_timeout=3

What a string means is up to the provider registered under its prefix (the
part before the first ':'). A provider registers itself from its own module by
calling `register_provider`; nothing here names one. The providers retinue
ships are listed in `builtin_providers`, and each one's module is imported
only when a model string names its prefix, or when every provider must be
asked: to list the valid forms in an error, or to choose the default model.

Resolved models are shared by every agent naming the same string, and the
`MODEL_CACHE_SIZE` strings used most recently are remembered: a long-lived
server that builds a string per request (each user's own server, say) keeps a
bounded number of models, however many strings it has seen.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError, UnknownModelError
from .base import Model, close_model
from .builtin_providers import BUILT_IN_PROVIDERS

MODEL_ENV_VAR = "RETINUE_MODEL"

# Only an http(s) URL after '@' counts as a base URL, so '@' in a model name survives.
_AT_BASE_URL = re.compile(r"^(?P<model>.+?)@(?P<base_url>https?://.+)$")

MODEL_CACHE_SIZE = 128
"""How many model strings keep their model. One more string than this forgets the least recently used."""

ModelBuilder = Callable[..., Model]
"""`build(name, base_url, **options)`: the options are those the string gave, parsed (none for most strings)."""

OptionParser = Callable[[str], Any]
"""Turns an option's text into its value, or raises ValueError saying what is wrong with it."""


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
        options: The `?<option>=<value>` options its strings may end in, each with the parser of its value;
            `build` gets them as keyword arguments of the same names. Every other option is refused.
    """

    prefix: str
    build: ModelBuilder
    forms: tuple[str, ...]
    bare_names: tuple[str, ...] = ()
    key_env_var: str | None = None
    default_spec: str | None = None
    name_optional: bool = False
    takes_base_url: bool = False
    options: Mapping[str, OptionParser] = field(default_factory=dict)


def seconds_option(text: str) -> float:
    """The value of an option in seconds: a number above 0 ("30", "2.5")."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"it must be a number of seconds above 0, not {text}")
    return seconds


def count_option(text: str) -> int:
    """The value of an option that counts: a whole number, 0 or more ("0", "5")."""
    if not text.isdigit():
        raise ValueError(f"it must be a whole number, 0 or more, not '{text}'")
    return int(text)


_providers: dict[str, Provider] = {}
_cache: OrderedDict[str, Model] = OrderedDict()  # least recently used first
# Models the cache forgot that something (an agent, perhaps mid-run) still holds: close_resolved_models
# must reach them too, but must not keep them alive.
_forgotten: weakref.WeakSet[Model] = weakref.WeakSet()
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
    """The model a spec names; instances are shared by every agent naming the same spec.

    A string resolved again after `MODEL_CACHE_SIZE` others were used since gets a new model. The one it
    had is not closed then: an agent may be running on it, and what an HTTP model holds open (its loop's
    connection pool) is shared by every HTTP model in that loop. It is closed with the others by
    `close_resolved_models` for as long as anything still holds it, and goes when nothing does.
    """
    if spec is None:
        spec = default_model_spec()
    if not isinstance(spec, str):
        return spec
    with _lock:
        model = _cache.get(spec)
        if model is not None:
            _cache.move_to_end(spec)
            return model
        model = _cache[spec] = _build(spec)
        while len(_cache) > MODEL_CACHE_SIZE:
            _forget(_cache.popitem(last=False)[1])
    return model


async def close_resolved_models() -> None:
    """Close, in the running event loop, every model a model string has named; call it before the loop ends.

    That includes models the cache has since forgotten but something still holds. The models stay usable
    (see `Model`), so this is safe while other loops use them.
    """
    with _lock:
        models = list(_cache.values())
        models += [model for model in list(_forgotten) if model not in models]
    for model in models:
        await close_model(model)


def _forget(model: Model) -> None:
    # A model without weak references (slots and no __weakref__) is let go: later closes no longer reach it.
    with contextlib.suppress(TypeError):
        _forgotten.add(model)


def _build(spec: str) -> Model:
    text, question_mark, query = spec.strip().partition("?")
    prefix, colon, name = text.partition(":")
    provider = _provider(prefix)
    if provider is None or not provider.name_optional:
        if not colon or not name:
            raise UnknownModelError(f"'{spec}' is not a model string retinue knows.{_hint(spec)} Use {_forms()}.")
        if provider is None:
            raise UnknownModelError(f"Unknown model provider '{prefix}' in '{spec}'. Use {_forms()}.")
    options = _options(spec, provider, query) if question_mark else {}
    at_url = _AT_BASE_URL.match(name) if provider.takes_base_url else None
    if at_url:
        return provider.build(at_url["model"], at_url["base_url"], **options)
    return provider.build(name, None, **options)


def _options(spec: str, provider: Provider, query: str) -> dict[str, Any]:
    """The options after '?' in `spec`, parsed by the provider's parsers; every mistake is refused by name."""
    known = provider.options
    if not known:
        raise ConfigurationError(f"'{spec}': '{provider.prefix}' model strings take no options after '?'.")
    listed = ", ".join(known)
    options: dict[str, Any] = {}
    for pair in query.split("&"):
        if not pair:
            raise ConfigurationError(
                f"'{spec}' has an empty option (after '?' or between two '&'); write <option>=<value>, joined "
                f"by '&' (options: {listed})."
            )
        option, equals, value = pair.partition("=")
        if not option or not equals or not value:
            raise ConfigurationError(
                f"'{pair}' in '{spec}' is not an option: write <option>=<value>, joined by '&' (options: {listed})."
            )
        if option not in known:
            import difflib  # only for this message: it takes a millisecond to import

            close = difflib.get_close_matches(option, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigurationError(
                f"Unknown option '{option}' in '{spec}'.{hint} '{provider.prefix}' model strings take: {listed}."
            )
        if option in options:
            raise ConfigurationError(f"The option '{option}' is given twice in '{spec}'.")
        try:
            options[option] = known[option](value)
        except ValueError as exc:
            raise ConfigurationError(f"The option {option}={value} in '{spec}' is not valid: {exc}.") from None
    return options


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
