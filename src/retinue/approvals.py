"""Human control over consequential actions.

A tool marked `requires_approval=True` runs only after the run's approver says
yes. An approver is any function (sync or async) from an `ApprovalRequest` to
an `Approval` or a bool. Without an approver such tools are refused, and the
model is told why: a consequential action never happens by default.

A durable run (`agent.start(..., journal=...)`) can also wait for a person who is not there now: an approver
answering `Later()` (such as `decide_later()`) suspends the run. The journal records the call as an
`ApprovalRecord`, the run ends with status "waiting" and its process may exit; a decision recorded later
(`journal.decide(...)`, `retinue approve RUN_ID APPROVAL_ID --yes`) makes it resumable, and the resumed run
runs the call (or is told it was denied) exactly once. A decision is bound to a digest of the call's
arguments: it approves that call with those arguments, nothing else. An approval may expire; undecided by
then, it is recorded as denied.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import sys
import time
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


@dataclass(frozen=True, slots=True)
class Later:
    """An approver's answer: nobody decides now. A durable run suspends until a decision is recorded.

    `expires_in`: seconds from now after which the call, still undecided, is denied; None waits for ever.
    A run without a journal cannot wait: there, `Later` is a denial that says so.
    """

    expires_in: float | None = None

    def __post_init__(self) -> None:
        if self.expires_in is not None and not self.expires_in > 0:
            raise ValueError(f"expires_in={self.expires_in!r}: give a number of seconds greater than 0, or None")


Approver: TypeAlias = Callable[[ApprovalRequest], "Approval | Later | bool | Awaitable[Approval | Later | bool]"]

NO_APPROVER_REASON = "no approver is configured for this run, so consequential actions are refused"
CANNOT_WAIT_REASON = (
    "the approver left the decision for later, but this run has no journal to wait in (start it with "
    "agent.start(..., journal=...) to let it wait), so the call is refused"
)


async def answer_of(approver: Approver | None, request: ApprovalRequest) -> Approval | Later:
    """Ask `approver`, normalising its answer to an `Approval`, or `Later` (for a durable run to wait).

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
    if isinstance(answer, Later):
        return answer
    if answer is True:
        return Approval(True, "approved")
    if answer is False or answer is None:
        return Approval(False, "denied by the user")
    return Approval(False, f"the approver answered {answer!r} (a {type(answer).__name__}), not an approval")


async def ask(approver: Approver | None, request: ApprovalRequest) -> Approval:
    """Ask `approver` for a decision now; no approver means no, and so does `Later` (nothing can wait here)."""
    answer = await answer_of(approver, request)
    return Approval(False, CANNOT_WAIT_REASON) if isinstance(answer, Later) else answer


def approve_all(request: ApprovalRequest) -> Approval:
    """Approve everything: for tests and trusted automation only."""
    return Approval(True, "approved by policy (approve_all)")


def deny_all(request: ApprovalRequest) -> Approval:
    return Approval(False, "denied by policy (deny_all)")


def decide_later(*, expires_in: float | None = None) -> Approver:
    """An approver for durable runs: every request waits for a decision recorded later, by a person.

    The run suspends (status "waiting") at the first call that needs approval; `retinue approve`, or
    `journal.decide(...)` from a web page or a chat bot, records the decision, and `retinue resume` or a
    worker goes on with the run. `expires_in`: seconds after which an undecided request is denied.
    """
    answer = Later(expires_in)

    def wait_for_a_decision(request: ApprovalRequest) -> Later:
        return answer

    return wait_for_a_decision


def arguments_digest(arguments: dict[str, Any]) -> str:
    """The digest a decision is bound to: SHA-256 of the call's arguments as canonical JSON."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def approval_id(run_id: str, turn: int, tool_call_id: str, digest: str, *, uncertain: bool = False) -> str:
    """The id of the approval of one call, with these arguments, in a run: the same in every process that asks.

    Whether to run a call again that was cut off (`uncertain`) is another question than whether to run it at
    all, with an id of its own: a yes to the first call is no yes to repeating it.
    """
    question = "again" if uncertain else "run"
    identity = f"approval/{len(run_id)}:{run_id}/{turn}/{len(tool_call_id)}:{tool_call_id}/{digest}/{question}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """An approval a durable run waits for (or waited for), as its journal holds it.

    `root_run_id` is the run to resume and decide in (`retinue approve ROOT_RUN_ID APPROVAL_ID`); `run_id` the
    (sub-)run whose call it is. `approved` is None until a decision is recorded, at `decided_at`, by
    `decided_by`; an approval past `expires_at` is decided as a denial by "expiry".
    """

    approval_id: str
    root_run_id: str
    run_id: str
    turn: int
    tool_call_id: str
    agent: str
    tool: str
    arguments: dict[str, Any]
    arguments_digest: str
    uncertain: bool
    asked_at: float
    expires_at: float | None = None
    approved: bool | None = None
    reason: str = ""
    decided_by: str | None = None
    decided_at: float | None = None

    @property
    def decided(self) -> bool:
        return self.approved is not None

    def expired(self, now: float | None = None) -> bool:
        """Undecided, and past its expiry: to be recorded as a denial."""
        if self.decided or self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at

    def request(self) -> ApprovalRequest:
        return ApprovalRequest(self.agent, self.tool, self.arguments, self.run_id, self.tool_call_id, self.uncertain)

    def describe(self) -> str:
        """One line for people: what waits, or how it was decided."""
        asked = self.request().describe()
        if self.approved is None:
            until = "" if self.expires_at is None else f", denied if undecided by {_clock(self.expires_at)}"
            return f"{asked} (waiting since {_clock(self.asked_at)}{until})"
        decision = "approved" if self.approved else "denied"
        by = f" by {self.decided_by}" if self.decided_by else ""
        because = f": {self.reason}" if self.reason else ""
        return f"{asked} ({decision}{by}{because})"


class AwaitingDecision(Exception):
    """A call of a durable run waits for a decision recorded later: the run suspends with status "waiting".

    Raised by the journal where an approver answered `Later`, and through each run of the tree up to the
    root, which ends "waiting" with `result.pending_approvals`; it never reaches the caller of the run.
    """

    def __init__(self, approvals: tuple[ApprovalRecord, ...]) -> None:
        super().__init__(", ".join(f"{record.tool} (approval {record.approval_id})" for record in approvals))
        self.approvals = approvals


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


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
