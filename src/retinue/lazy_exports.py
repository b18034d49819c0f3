"""A package's public names, each imported from its module when first asked for (PEP 562).

    __getattr__ = lazy_exports(__name__, {"Summarize": ".summarize"})

Packages use it so that importing them costs nothing until a name is used: an optional extra, or machinery only
some agents need, stays unloaded.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports each name of `homes` from the module named beside it."""

    def attribute(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        setattr(sys.modules[package], name, value)  # asked once
        return value

    return attribute
