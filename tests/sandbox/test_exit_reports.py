"""A session that dies is reported with what killed it, never with a signal number that does not exist."""

from __future__ import annotations

import warnings

import pytest
from sandbox_helpers import TIGHT_LIMITS

from retinue.sandbox import NotIsolatedWarning, Sandbox
from retinue.sandbox.isolation import Isolation

pytestmark = pytest.mark.asyncio

# Traced by its parent, a process that gets a fatal signal stops instead of dying.
TRACED_THEN_SIGSYS = """
import ctypes, os, signal
PTRACE_TRACEME = 0
print(ctypes.CDLL(None).ptrace(PTRACE_TRACEME, 0, None, None), flush=True)
os.kill(os.getpid(), signal.SIGSYS)
"""


@pytest.mark.parametrize("isolation", ["bubblewrap", "subprocess"])
async def test_a_session_that_asks_to_be_traced_then_gets_sigsys_is_reported_with_sigsys(
    isolation: Isolation,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotIsolatedWarning)
        async with Sandbox(isolation=isolation, limits=TIGHT_LIMITS) as sandbox:
            result = await sandbox.run_python(TRACED_THEN_SIGSYS)
            after = await sandbox.run_python("print('fresh')")
    # ptrace is refused, so nothing stops the signal from killing.
    assert result.stdout == "-1\n"
    assert result.error == "The Python process ended: its process died from SIGSYS."
    assert result.restart_reason == "its process died from SIGSYS"
    assert after.stdout == "fresh\n"


async def test_an_exit_status_above_128_that_names_no_signal_is_reported_as_a_status() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python("import os\nos._exit(255)")
    assert result.error == "The Python process ended: its process exited with status 255."
