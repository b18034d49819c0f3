"""Running without OS isolation is asked for by name, never a fallback, and even then runs unprivileged and clean.

``isolation="auto"`` is bubblewrap, or an error that says why not: a broken
bubblewrap once meant the code ran as the host user, root here, able to
read the host's environment. ``"subprocess"`` runs as an unprivileged user
when the host is root, with an environment of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sandbox_helpers import SANDBOX_UID, TIGHT_LIMITS, host_is_root

from retinue.sandbox import IsolationUnavailableError, NotIsolatedWarning, Sandbox
from retinue.sandbox import isolation as isolation_module

pytestmark = pytest.mark.asyncio

SECRET = "host-only-secret-4711"
# What the sandboxed code can learn of the host's environment: its own, and the host process's.
LOOK_FOR_THE_SECRET = f"""
import os
print(os.getuid())
print({SECRET!r} in repr(dict(os.environ)))
try:
    print({SECRET!r} in open(f'/proc/{{os.getppid()}}/environ').read())
except OSError as error:
    print(type(error).__name__)
"""


async def test_auto_with_a_bubblewrap_that_cannot_start_fails_naming_the_reason(
    monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    # `false` stands for a bwrap that cannot create namespaces (a locked-down container).
    monkeypatch.setattr(isolation_module, "find_bubblewrap", lambda: "/bin/false")
    sandbox = Sandbox(isolation="auto", limits=TIGHT_LIMITS)
    with pytest.raises(IsolationUnavailableError) as failure:
        await sandbox.start()
    message = str(failure.value)
    assert "bubblewrap (/bin/false) is installed but could not start the sandbox" in message
    assert "exited with status 1" in message
    assert "isolation='subprocess'" in message
    assert not [warning for warning in recwarn if issubclass(warning.category, NotIsolatedWarning)]
    assert sandbox.isolation_used is None


async def test_auto_without_bubblewrap_fails_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation_module, "find_bubblewrap", lambda: None)
    with pytest.raises(IsolationUnavailableError, match="apt-get install bubblewrap"):
        await Sandbox(isolation="auto", limits=TIGHT_LIMITS).start()


@pytest.mark.skipif(not host_is_root(), reason="the uid drop applies to root hosts")
async def test_subprocess_isolation_runs_unprivileged_without_the_host_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETINUE_TEST_SECRET", SECRET)
    with pytest.warns(NotIsolatedWarning):
        async with Sandbox(isolation="subprocess", limits=TIGHT_LIMITS) as sandbox:
            result = await sandbox.run_python(LOOK_FOR_THE_SECRET)
            # The interpreter lives under /root here, out of the sandbox user's reach by path.
            imports = await sandbox.run_python("import sqlite3, json\nprint(sqlite3.connect(':memory:').total_changes)")
            shell = await sandbox.run_shell("python -c 'import os; print(os.getuid())'; ls /root")
    assert result.stdout.splitlines() == [str(SANDBOX_UID), "False", "PermissionError"], result.error
    assert imports.stdout == "0\n", imports.error
    assert shell.stdout == f"{SANDBOX_UID}\n", shell.stderr
    assert "Permission denied" in shell.stderr


@pytest.mark.skipif(not host_is_root(), reason="the uid drop applies to root hosts")
async def test_subprocess_isolation_refuses_a_workspace_the_sandbox_user_cannot_reach(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    sandbox = Sandbox(private / "work", isolation="subprocess", limits=TIGHT_LIMITS)
    with pytest.warns(NotIsolatedWarning), pytest.raises(IsolationUnavailableError) as failure:
        await sandbox.start()
    assert f"uid {SANDBOX_UID} (the host is root), which cannot reach the workspace {private / 'work'}" in str(
        failure.value
    )
    # Refused before anything was made or handed to the sandbox user.
    assert not (private / "work").exists()
