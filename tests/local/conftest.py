"""Fixtures for the embedded-model tests."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator

import pytest

from retinue.models.http import close_sessions
from retinue.models.local import ENGINE_VARIABLE, ENGINES

ENGINE_MODULES = {"llama-cpp-python": "llama_cpp", "xllamacpp": "xllamacpp"}


@pytest.fixture(autouse=True)
async def _close_http_sessions() -> AsyncIterator[None]:
    # Each test has its own event loop; the shared HTTP session must close with it.
    yield
    await close_sessions()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each engine that is installed, in turn, as every LocalModel's engine (through RETINUE_LOCAL_ENGINE)."""
    name: str = request.param
    if importlib.util.find_spec(ENGINE_MODULES[name]) is None:
        pytest.skip(f"the {name} engine is not installed")
    monkeypatch.setenv(ENGINE_VARIABLE, name)
    return name
