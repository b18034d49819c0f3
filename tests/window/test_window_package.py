"""`retinue.window`: everything about what fits in a model's window, loaded only when an agent uses it."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import retinue.window


def test_an_agent_needs_only_the_policy_protocol_of_the_window_package() -> None:
    code = (
        "import sys, retinue\n"
        "print(' '.join(sorted(name for name in sys.modules if name.startswith('retinue.window'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["retinue.window", "retinue.window.policy"]


@pytest.mark.parametrize("name", retinue.window.__all__)
def test_each_name_the_package_lists_is_the_one_its_module_defines(name: str) -> None:
    home = retinue.window._HOMES[name]
    assert getattr(retinue.window, name) is getattr(importlib.import_module(home, "retinue.window"), name)


def test_a_name_the_package_does_not_have_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Summarise'"):
        retinue.window.Summarise  # noqa: B018
