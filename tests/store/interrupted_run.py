"""A run in another process that stops to wait for a person's approval in the UI, and is then killed.

`start_run_waiting_for_approval` starts `python -c CHILD` recording into a
store and returns once the store shows its approval pending; `kill_hard`
sends SIGKILL (so nothing in the child gets to write "finished") and waits
until the child has died, leaving it a zombie that is not reaped yet, as a
parent that never calls wait() would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from retinue.store import RunStore

CHILD = """
import sys
from retinue import Agent, tool
from retinue.store import RunStore
from retinue.testing.scripted import ScriptedModel, call
from retinue.ui.approver import UIApprover

@tool(requires_approval=True)
def book_flight(destination: str) -> str:
    '''Book a flight (needs a person's approval).

    Args:
        destination: Where to fly.
    '''
    return f"Booked a flight to {destination}."

store = RunStore(sys.argv[1])
model = ScriptedModel([call("book_flight", destination="Oslo"), "Booked."], name="booker")
agent = Agent("booker", model=model, tools=[book_flight])
agent.run_sync("Book me a flight to Oslo.", on_event=store.recorder(), approver=UIApprover(store))
"""


@dataclass(slots=True)
class WaitingRun:
    process: subprocess.Popen[bytes]
    run_id: str
    tool_call_id: str


def start_run_waiting_for_approval(path: Path, store: RunStore, timeout: float = 60.0) -> WaitingRun:
    process = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = store.pending_approvals()
        if pending:
            return WaitingRun(process, pending[0].run_id, pending[0].tool_call_id)
        if process.poll() is not None:
            assert process.stderr is not None
            raise AssertionError(f"the child run ended early: {process.stderr.read().decode()}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the child run never asked for its approval")


def kill_hard(run: WaitingRun) -> None:
    run.process.kill()
    os.waitid(os.P_PID, run.process.pid, os.WEXITED | os.WNOWAIT)


def reap(run: WaitingRun) -> None:
    if run.process.poll() is None:
        run.process.kill()
    run.process.wait()
    if run.process.stderr is not None:
        run.process.stderr.close()
