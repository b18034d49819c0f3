"""Approvals as the journal's backends store them: rows to records, and which decisions are refused."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ..approvals import ApprovalRecord


def approval_from_row(row: Sequence[Any]) -> ApprovalRecord:
    """A record from a row of the backends' `approvals` columns, in their order."""
    (
        approval_id,
        root_run_id,
        run_id,
        turn,
        tool_call_id,
        agent,
        tool,
        arguments,
        digest,
        uncertain,
        asked_at,
        expires_at,
        approved,
        reason,
        decided_by,
        decided_at,
    ) = row
    return ApprovalRecord(
        approval_id=approval_id,
        root_run_id=root_run_id,
        run_id=run_id,
        turn=int(turn),
        tool_call_id=tool_call_id,
        agent=agent,
        tool=tool,
        arguments=json.loads(arguments),
        arguments_digest=digest,
        uncertain=bool(uncertain),
        asked_at=float(asked_at),
        expires_at=None if expires_at is None else float(expires_at),
        approved=None if approved is None else bool(approved),
        reason=reason or "",
        decided_by=decided_by,
        decided_at=None if decided_at is None else float(decided_at),
    )


def approval_decision_problem(
    root_run_id: str, approval_id: str, record: ApprovalRecord | None, approved: bool, digest: str | None
) -> str | None:
    """Why deciding `record` so must be refused, or None. Deciding it again the same way is no problem."""
    if record is None:
        return (
            f"run {root_run_id} has no approval {approval_id}: `retinue approve {root_run_id}` lists the ones it "
            "waits for"
        )
    if digest is not None and digest != record.arguments_digest:
        return (
            f"approval {approval_id} is for {record.tool} with other arguments than the ones decided on (digest "
            f"{digest[:12]}, the call's is {record.arguments_digest[:12]}): a decision holds only for the arguments "
            "it was made for; look at the call again"
        )
    if record.approved is None or record.approved == approved:
        return None
    decided = "approved" if record.approved else "denied"
    by = f" by {record.decided_by}" if record.decided_by else ""
    when = "" if record.decided_at is None else f" at {_clock(record.decided_at)}"
    because = f" ({record.reason})" if record.reason else ""
    return f"approval {approval_id} was already {decided}{by}{when}{because}; a decision cannot be changed"


def expiry_reason(record: ApprovalRecord) -> str:
    assert record.expires_at is not None
    return f"nobody decided before it expired at {_clock(record.expires_at)}"


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
