"""An approver that waits for a person to click Approve or Deny in the web UI."""

from __future__ import annotations

import asyncio
import time

from ..approvals import Approval, ApprovalRequest
from ..store import RunStore


class UIApprover:
    """Asks through the trace store, so the UI answering may run in this process or another.

    The pending request is written to the store; the UI's buttons write the
    decision next to it; this approver polls for it. With `timeout`, a request
    nobody answers in time is denied (and the model is told so), rather than
    holding the run forever.
    """

    def __init__(self, store: RunStore, *, timeout: float | None = None, poll_interval: float = 0.2) -> None:
        self.store = store
        self.timeout = timeout
        self.poll_interval = poll_interval

    async def __call__(self, request: ApprovalRequest) -> Approval:
        store = self.store
        store.record_approval_request(request)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            decision = await asyncio.to_thread(store.approval_decision, request.run_id, request.tool_call_id)
            if decision is not None:
                approved, reason = decision
                approval = Approval(approved, reason or ("approved in the UI" if approved else "denied in the UI"))
                break
            if deadline is not None and time.monotonic() >= deadline:
                approval = Approval(False, f"nobody answered in the UI within {self.timeout:g} seconds")
                break
            await asyncio.sleep(self.poll_interval)
        # Recorded here too, so a run without a recorder still closes the request it opened.
        store.record_approval_resolution(request.run_id, request.tool_call_id, approval.approved, approval.reason)
        return approval
