"""Model strings to models, and the default model."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from collections import OrderedDict

import pytest

from retinue.errors import MissingDependencyError, UnknownModelError
from retinue.models import resolve
from retinue.models.anthropic import AnthropicModel
from retinue.models.openai import OpenAIModel
from retinue.models.resolve import resolve_model
from retinue.testing import ScriptedModel

KEY_VARS = ("RETINUE_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY")


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "_cache", OrderedDict())
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


class FakeLocalModel:
    def __init__(self, name: str | None = None) -> None:
        self.name = name

    @property
    def model_id(self) -> str:
        return f"local:{self.name or 'default'}"


@pytest.fixture
def fake_local(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("retinue.models.local")
    module.LocalModel = FakeLocalModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "retinue.models.local", module)


def test_anthropic_and_openai_strings() -> None:
    claude = resolve_model("anthropic:claude-haiku-4-5")
    assert isinstance(claude, AnthropicModel)
    assert claude.model_id == "anthropic:claude-haiku-4-5"
    gpt = resolve_model("openai:gpt-4.1")
    assert isinstance(gpt, OpenAIModel)
    assert gpt.model_id == "openai:gpt-4.1"
    assert gpt.base_url == "https://api.openai.com/v1"


def test_openai_compatible_server_string() -> None:
    model = resolve_model("openai:qwen2.5@http://127.0.0.1:8080/v1")
    assert isinstance(model, OpenAIModel)
    assert model.model_id == "openai:qwen2.5"
    assert model.base_url == "http://127.0.0.1:8080/v1"


def test_at_sign_without_a_url_stays_in_the_model_name() -> None:
    model = resolve_model("openai:org@model-v2")
    assert model.model_id == "openai:org@model-v2"


def test_models_are_shared_per_spec() -> None:
    assert resolve_model("openai:gpt-4.1") is resolve_model("openai:gpt-4.1")
    assert resolve_model("openai:gpt-4.1") is not resolve_model("openai:gpt-4.1-mini")


def test_model_instances_pass_through() -> None:
    scripted = ScriptedModel(["hi"])
    assert resolve_model(scripted) is scripted


@pytest.mark.usefixtures("fake_local")
def test_local_strings() -> None:
    default = resolve_model("local")
    named = resolve_model("local:gemma")
    assert isinstance(default, FakeLocalModel) and default.name is None
    assert isinstance(named, FakeLocalModel) and named.name == "gemma"


def test_local_without_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "retinue.models.local", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r"retinue\[local\]"):
        resolve_model("local")


@pytest.mark.parametrize("spec", ["mistral:large", "openai:", "gemini-pro", ""])
def test_unknown_strings_list_the_valid_forms(spec: str) -> None:
    with pytest.raises(UnknownModelError) as raised:
        resolve_model(spec)
    message = str(raised.value)
    for form in ("anthropic:<model>", "openai:<model>", "openai:<model>@<base_url>", "local"):
        assert form in message


def test_bare_model_names_get_a_hint() -> None:
    with pytest.raises(UnknownModelError, match="Did you mean 'openai:gpt-4o'"):
        resolve_model("gpt-4o")
    with pytest.raises(UnknownModelError, match="Did you mean 'anthropic:claude-sonnet-4-5'"):
        resolve_model("claude-sonnet-4-5")


def test_default_prefers_retinue_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETINUE_MODEL", "openai:gpt-5-mini")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert resolve_model(None).model_id == "openai:gpt-5-mini"


def test_default_is_anthropic_when_its_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert resolve_model(None).model_id == "anthropic:claude-sonnet-4-5"


def test_default_is_openai_with_only_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert resolve_model(None).model_id == "openai:gpt-4.1-mini"


@pytest.mark.usefixtures("fake_local")
def test_default_without_keys_is_local() -> None:
    assert isinstance(resolve_model(None), FakeLocalModel)


def _modules_loaded_by(code: str) -> list[str]:
    """Which of the providers' modules (and aiohttp) a fresh interpreter has loaded after running `code`."""
    watched = ("aiohttp", "retinue.models.anthropic", "retinue.models.openai", "retinue.models.local")
    script = f"import sys\n{code}\nprint(' '.join(m for m in {watched!r} if m in sys.modules))"
    env = {name: value for name, value in os.environ.items() if name not in KEY_VARS}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    return result.stdout.split()


def test_resolving_one_provider_imports_no_other() -> None:
    code = "from retinue.models.resolve import resolve_model; resolve_model('openai:gpt-4.1')"
    assert _modules_loaded_by(code) == ["aiohttp", "retinue.models.openai"]


def test_choosing_the_default_model_imports_neither_aiohttp_nor_the_local_model() -> None:
    code = "from retinue.models.resolve import default_model_spec; assert default_model_spec() == 'local'"
    loaded = _modules_loaded_by(code)
    assert "aiohttp" not in loaded
    assert "retinue.models.local" not in loaded
