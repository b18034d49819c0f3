"""Human control over consequential actions.

A tool marked `requires_approval=True` runs only after the run's approver says
yes. An approver is any function (sync or async) from an `ApprovalRequest` to
an `Approval` or a bool. Without an approver such tools are refused, and the
model is told why: a consequential action never happens by default.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A call waiting for a yes or no.

    `uncertain` marks a call of a resumed run that an earlier process started and never saw finish: it may
    already have taken effect, and approving runs it again.
    """

    agent: str
    tool: str
    arguments: dict[str, Any]
    run_id: str
    tool_call_id: str
    uncertain: bool = False

    def describe(self) -> str:
        args = ", ".join(f"{key}={json.dumps(value, default=str)}" for key, value in self.arguments.items())
        if self.uncertain:
            return (
                f"{self.agent} had started {self.tool}({args}) when its run was interrupted; it may already have "
                "taken effect. Run it again?"
            )
        return f"{self.agent} wants to call {self.tool}({args})"


@dataclass(frozen=True, slots=True)
class Approval:
    approved: bool
    reason: str = ""


Approver: TypeAlias = Callable[[ApprovalRequest], "Approval | bool | Awaitable[Approval | bool]"]

NO_APPROVER_REASON = "no approver is configured for this run, so consequential actions are refused"


async def ask(approver: Approver | None, request: ApprovalRequest) -> Approval:
    """Ask `approver`, normalising its answer; no approver means no.

    Only `True` or an approving `Approval` approves: a truthy string such as
    "no" is a denial that names the answer, and an approver that raises denies.
    """
    if approver is None:
        return Approval(False, NO_APPROVER_REASON)
    try:
        answer = approver(request)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception as exc:  # noqa: BLE001 - any failure of the approver is a refusal, never an approval
        return Approval(False, f"the approver failed ({type(exc).__name__}: {exc}), so the call is refused")
    if isinstance(answer, Approval):
        return Approval(answer.approved is True, answer.reason)
    if answer is True:
        return Approval(True, "approved")
    if answer is False or answer is None:
        return Approval(False, "denied by the user")
    return Approval(False, f"the approver answered {answer!r} (a {type(answer).__name__}), not an approval")


def approve_all(request: ApprovalRequest) -> Approval:
    """Approve everything: for tests and trusted automation only."""
    return Approval(True, "approved by policy (approve_all)")


def deny_all(request: ApprovalRequest) -> Approval:
    return Approval(False, "denied by policy (deny_all)")


def unattended(request: ApprovalRequest) -> Approval:
    """Nobody is there to approve: a run with this approver is not offered the tools that need approval.

    The model is told which actions are unavailable and why, instead of spending turns on calls that can only be
    refused (a small model retries them in other forms). A call that still arrives (from a sandboxed script, or
    a tool list built elsewhere) is refused.
    """
    return Approval(False, "nobody is attending this run to approve it")


async def terminal_approver(request: ApprovalRequest) -> Approval:
    """Ask the person at the terminal; anything but yes is a no."""
    if not sys.stdin.isatty():
        return Approval(False, "no terminal is attached to approve this action")
    prompt = f"\n{request.describe()}\nApprove? [y/N] "
    answer = await asyncio.to_thread(input, prompt)
    if answer.strip().lower() in ("y", "yes"):
        return Approval(True, "approved at the terminal")
    return Approval(False, "denied at the terminal")


def arguments_digest(arguments: dict[str, Any]) -> str:
    """The digest a decision is bound to: SHA-256 of the call's arguments as canonical JSON."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
