"""Approvals as signals: a run waiting for a human is a workflow waiting for a signal, which costs no worker.

The run's approver, inside the workflow, notes the request as pending (the `pending_approvals` query lists
them) and waits for the `approve` signal that decides it. The wait is durable: every worker may be gone
meanwhile, and the signal, kept by the server, is delivered to whichever worker picks the run up again,
after minutes or days. A decision names the (sub-)run and tool call it is for, and is bound to the digest of
the call's arguments, so it cannot approve another call, nor the same call with other arguments. A run may
give a timeout: a request undecided by then is denied, and the denial is in the history like any decision.
"""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio import workflow

from ..approvals import Approval, ApprovalRequest, arguments_digest
from .payloads import ApprovalDecision, PendingApproval


def pending_approval(request: ApprovalRequest, asked_at: float = 0.0) -> PendingApproval:
    return PendingApproval(
        agent=request.agent,
        tool=request.tool,
        arguments=json.dumps(request.arguments, ensure_ascii=False, default=str),
        run_id=request.run_id,
        tool_call_id=request.tool_call_id,
        uncertain=request.uncertain,
        arguments_digest=arguments_digest(request.arguments),
        asked_at=asked_at,
    )


def request_of(pending: PendingApproval) -> ApprovalRequest:
    arguments = json.loads(pending.arguments)
    return ApprovalRequest(
        pending.agent, pending.tool, arguments, pending.run_id, pending.tool_call_id, pending.uncertain
    )


class SignalledApprovals:
    """The approver of a workflow's run, and the state its signal and query handlers read and write."""

    def __init__(self, timeout_seconds: float | None) -> None:
        self._timeout = None if timeout_seconds is None else timedelta(seconds=timeout_seconds)
        self._pending: dict[tuple[str, str], PendingApproval] = {}
        self._decided: dict[tuple[str, str], Approval] = {}

    async def __call__(self, request: ApprovalRequest) -> Approval:
        key = (request.run_id, request.tool_call_id)
        self._pending[key] = pending_approval(request, workflow.now().timestamp())
        try:
            await workflow.wait_condition(lambda: key in self._decided, timeout=self._timeout)
        except TimeoutError:
            assert self._timeout is not None
            return Approval(False, f"no decision came within {self._timeout.total_seconds():g} seconds")
        finally:
            del self._pending[key]
        return self._decided.pop(key)

    def decide(self, decision: ApprovalDecision) -> None:
        """The `approve` signal. A decision for no pending request, or for other arguments, is dropped."""
        key = (decision.run_id, decision.tool_call_id)
        pending = self._pending.get(key)
        if pending is None or key in self._decided:
            workflow.logger.warning("dropped a decision for %s: no such approval is pending", key)
            return
        if decision.arguments_digest != pending.arguments_digest:
            workflow.logger.warning("dropped a decision for %s: it was made for other arguments", key)
            return
        reason = decision.reason or ("approved" if decision.approved else "denied by the user")
        self._decided[key] = Approval(decision.approved, reason)

    def pending(self) -> list[PendingApproval]:
        """The `pending_approvals` query: the requests waiting for a decision, oldest first."""
        return list(self._pending.values())
