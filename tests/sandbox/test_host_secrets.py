"""What the host keeps secret stays on the host: default values of host functions, and keys in host errors."""

from __future__ import annotations

from urllib.parse import quote

from sandbox_helpers import TIGHT_LIMITS

from retinue.architectures import ScriptingEnvironment
from retinue.redact import register_secret
from retinue.sandbox import Sandbox
from retinue.sandbox.host_bridge import HostBridge

# Not shaped like any provider's key: only dropping the default keeps it out, not the redactor's patterns.
DEFAULT_KEY = "sk-test-SECRET"


def fetch(url: str, api_key: str = DEFAULT_KEY, *, retries: int = 3) -> str:
    """Fetch a URL with the service's key."""
    return url


async def test_default_values_of_host_functions_reach_neither_the_sandbox_nor_the_model() -> None:
    functions = {"fetch": fetch}
    module_source = HostBridge(functions, "host_api").module_source(
        "/run/retinue/api.sock", max_request_bytes=1024, max_connections=1
    )
    run_python = next(
        tool for tool in ScriptingEnvironment(host_functions=functions).tools() if tool.name == "run_python"
    )
    async with Sandbox(isolation="bubblewrap", host_functions=functions, limits=TIGHT_LIMITS) as sandbox:
        shown = await sandbox.run_python("import host_api\nprint(host_api.__doc__)\nhelp(host_api.fetch)")
    assert DEFAULT_KEY not in module_source
    assert DEFAULT_KEY not in run_python.description
    assert DEFAULT_KEY not in shown.stdout
    # Optional, without saying what the default is.
    assert "host_api.fetch(url: str, api_key: str = ..., *, retries: int = ...) -> str: Fetch a URL" in (
        run_python.description
    )
    assert "  fetch(url: str, api_key: str = ..., *, retries: int = ...) -> str\n" in shown.stdout


async def test_a_host_error_reaches_the_sandbox_with_known_secrets_masked() -> None:
    registered = "retinue-test-key-4f9c2a7e"
    # Registered for the rest of this test process; unique, so it masks nothing else.
    register_secret(registered)
    with_symbols = "retinue/test+key=9d1e"
    register_secret(with_symbols)

    def get(url: str) -> str:
        raise RuntimeError(f"GET https://api.example/v1?key={registered} failed: 401")

    def post(url: str) -> str:
        # A URL carries a key URL-encoded; the redactor knows it as written.
        raise ConnectionError(f"POST https://api.example/v1?key={quote(with_symbols, safe='')} timed out")

    code = (
        "import host_api\n"
        "for call in (host_api.get, host_api.post):\n"
        "    try:\n"
        "        call('https://api.example/v1')\n"
        "    except Exception as error:\n"
        "        print(type(error).__name__, error)\n"
    )
    functions = {"get": get, "post": post}
    async with Sandbox(isolation="bubblewrap", host_functions=functions, limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(code)
    assert result.stdout.splitlines() == [
        "RuntimeError GET https://api.example/v1?key=[REDACTED] failed: 401",
        "ConnectionError POST https://api.example/v1?key=[REDACTED] timed out",
    ], result.error
