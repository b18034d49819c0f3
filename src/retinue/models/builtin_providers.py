"""The providers retinue ships: the module that registers each prefix, in the order the default model is chosen.

A provider of your own needs no entry here: its module calls
`retinue.models.resolve.register_provider` when imported. These are listed so
that `resolve_model` can import one only when a model string names it. An
entry point group would do the same from package metadata, but would make
every process that resolves a model scan the installed distributions, and a
new built-in provider work only after reinstalling retinue.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

BUILT_IN_PROVIDERS: Mapping[str, str] = MappingProxyType(
    {
        "anthropic": "retinue.models.anthropic",
        "openai": "retinue.models.openai",
        "local": "retinue.models.local_provider",
    }
)
