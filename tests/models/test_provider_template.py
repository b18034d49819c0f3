"""A new provider is one file plus its fake server: `acme_provider.py` and `fake_acme.py` beside this test.

Nothing else in retinue knows about Acme. Importing its module registers the
`acme:` prefix, and from then on model strings, error messages, the default
model, the key rules, prices and closing all work for it as for the
providers retinue ships. (The prefix stays registered for the rest of the
test session; it is the default model only while ACME_API_KEY is set, which
no other test does.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
from acme_provider import ACME_API, AcmeModel
from fake_acme import FakeAcmeServer

from retinue import Agent
from retinue.errors import AuthenticationError, ConfigurationError, UnknownModelError
from retinue.messages import ModelRequest, UserMessage
from retinue.models import resolve
from retinue.models.base import close_model
from retinue.models.http import shared_session
from retinue.models.pricing import Price
from retinue.models.resolve import Provider, default_model_spec, register_provider, resolve_model
from retinue.testing import HttpFault

HELLO = ModelRequest(instructions="Be brief.", messages=[UserMessage("Say hello.")], tools=[])


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "_cache", OrderedDict())
    for name in ("RETINUE_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ACME_API_KEY", "ACME_COMPATIBLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_its_model_strings_resolve_to_its_model() -> None:
    model = resolve_model("acme:rocket-1")
    assert isinstance(model, AcmeModel)
    assert (model.model_id, model.base_url, repr(model)) == (
        "acme:rocket-1",
        ACME_API.base_url,
        "AcmeModel('rocket-1')",
    )
    hosted = resolve_model("acme:rocket-1@http://127.0.0.1:8080")
    assert isinstance(hosted, AcmeModel)
    assert hosted.base_url == "http://127.0.0.1:8080"
    assert hosted.spec == "acme:rocket-1@http://127.0.0.1:8080"


def test_error_messages_list_its_forms_and_hint_its_bare_names() -> None:
    with pytest.raises(UnknownModelError) as unknown:
        resolve_model("mistral:large")
    assert "'acme:<model>' (e.g. 'acme:rocket-1')" in str(unknown.value)
    assert "'openai:<model>'" in str(unknown.value)  # the built-in providers are still listed, first
    with pytest.raises(UnknownModelError, match="Did you mean 'acme:rocket-2'"):
        resolve_model("rocket-2")


def test_it_is_the_default_model_when_only_its_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-key")
    assert default_model_spec() == "acme:rocket-1"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "anthropic-key")
    assert default_model_spec() == "anthropic:claude-sonnet-4-5"  # the providers retinue ships come first


def test_a_second_provider_cannot_take_its_prefix() -> None:
    impostor = Provider(prefix="acme", build=lambda name, base_url: AcmeModel(name), forms=("'acme:<x>'",))
    with pytest.raises(ConfigurationError, match="Two providers claim the model prefix 'acme'"):
        register_provider(impostor)


async def test_an_agent_runs_on_it_against_its_fake_server(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeAcmeServer(["Hello!"]) as server:
        monkeypatch.setenv("ACME_COMPATIBLE_API_KEY", server.api_key or "")
        result = await Agent("greeter", "Be brief.", model=f"acme:rocket-1@{server.base_url}").run("Say hello.")
    assert result.output == "Hello!"
    body = server.requests[0].body
    assert (body["model"], body["system"], body["prompt"]) == ("rocket-1", "Be brief.", "Say hello.")


async def test_its_own_key_goes_only_to_its_own_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-real-key-0123456789")
    async with FakeAcmeServer(["Hi."], api_key=None) as server:
        await AcmeModel("rocket-1", base_url=server.base_url).request(HELLO)
    assert "Authorization" not in server.requests[0].headers
    monkeypatch.setenv("ACME_COMPATIBLE_API_KEY", "for-other-servers")
    async with FakeAcmeServer(["Hi."], api_key="for-other-servers") as server:
        await AcmeModel("rocket-1", base_url=server.base_url).request(HELLO)
    monkeypatch.delenv("ACME_API_KEY")
    with pytest.raises(AuthenticationError, match="set the ACME_API_KEY environment variable"):
        await AcmeModel("rocket-1").request(HELLO)  # its own host without a key: fails before any request


async def test_its_price_comes_from_the_helper() -> None:
    async with FakeAcmeServer(["Hi.", "Hi."]) as server:
        priced = await AcmeModel(
            "rocket-1", base_url=server.base_url, api_key="test-key", price=Price(1.0, 2.0)
        ).request(HELLO)
        unpriced = await AcmeModel("rocket-1", base_url=server.base_url, api_key="test-key").request(HELLO)
    usage = priced.usage
    assert usage.cost_usd == pytest.approx((usage.input_tokens * 1.0 + usage.output_tokens * 2.0) / 1_000_000)
    assert unpriced.usage.cost_usd is None  # not in the price table: unknown, never zero


async def test_the_shared_fake_base_gives_it_faults_and_retries() -> None:
    async with FakeAcmeServer([HttpFault(503), "Back."]) as server:
        model = AcmeModel("rocket-1", base_url=server.base_url, api_key="test-key", retry_backoff=0.0)
        response = await model.request(HELLO)
    assert response.message.text == "Back."
    assert len(server.requests) == 2


async def test_close_model_closes_its_connections() -> None:
    async with FakeAcmeServer(["Hi."]) as server:
        model = AcmeModel("rocket-1", base_url=server.base_url, api_key="test-key")
        await model.request(HELLO)
        session = shared_session()
        await close_model(model)
    assert session.closed


def test_resolving_it_imports_no_other_provider() -> None:
    code = (
        "import sys, acme_provider\n"
        "from retinue.models.resolve import resolve_model\n"
        "resolve_model('acme:rocket-1')\n"
        "print(sorted(m for m in ('retinue.models.openai', 'retinue.models.anthropic', 'retinue.models.local')"
        " if m in sys.modules))\n"
    )
    here = str(Path(__file__).parent)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": here}
    )
    assert result.stdout.strip() == "[]"
