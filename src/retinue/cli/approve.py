"""`retinue approve RUN_ID APPROVAL_ID --yes|--no`: decide a call a durable run is waiting for.

    retinue approve trip-42                                  what the run waits for, and what was decided
    retinue approve trip-42 3f2a9c41d0e7 --yes               approve it
    retinue approve trip-42 3f2a9c41d0e7 --no --reason "too expensive" --journal postgresql://db/app

A run waits when its approver left a decision for later (`retinue.approvals.decide_later()`); once every
call it waits for is decided it is resumable, by `retinue resume` or a worker, which runs the approved call
(or tells the model it was denied) exactly once. The decision is for the call with the arguments shown: it
is recorded with their digest, and refused if they are not the ones the run is waiting on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import sys
import time
from typing import TYPE_CHECKING

from .common import CommandError

if TYPE_CHECKING:
    from ..approvals import ApprovalRecord
    from ..journal import Journal


def configure_approve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the durable run (the root run, as `agent.start` named it)")
    parser.add_argument(
        "approval_id", metavar="APPROVAL_ID", nargs="?", help="the approval to decide (without it: list them)"
    )
    decision = parser.add_mutually_exclusive_group()
    decision.add_argument("--yes", dest="approved", action="store_const", const=True, help="approve the call")
    decision.add_argument("--no", dest="approved", action="store_const", const=False, help="deny the call")
    parser.add_argument("--reason", default="", help="why, for the run's model and the record")
    parser.add_argument("--by", default=None, help="who decides (default: your user name)")
    parser.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        help="the journal: a SQLite file or a postgresql:// URL "
        "(default: $RETINUE_HOME/journal.sqlite or ~/.retinue/journal.sqlite)",
    )


def approve(args: argparse.Namespace) -> int:
    from ..errors import JournalError, MissingDependencyError
    from .durable import open_existing_journal

    try:
        with contextlib.closing(open_existing_journal(args.journal)) as journal:
            run = journal.get_run(args.run_id)
            if run is None or run.parent_run_id is not None:
                raise CommandError(f"the journal has no durable run {args.run_id} (give the root run's id)")
            if args.approval_id is None:
                if args.approved is not None:
                    raise CommandError("give the APPROVAL_ID to decide: `retinue approve RUN_ID` lists them")
                _list(journal, args.run_id)
                return 0
            if args.approved is None:
                raise CommandError("say --yes to approve the call or --no to deny it")
            return _decide(journal, args)
    except (JournalError, MissingDependencyError) as exc:
        raise CommandError(str(exc)) from exc


def _decide(journal: Journal, args: argparse.Namespace) -> int:
    record = journal.get_approval(args.run_id, args.approval_id)
    if record is None:
        raise CommandError(
            f"run {args.run_id} has no approval {args.approval_id}: `retinue approve {args.run_id}` lists them"
        )
    decided = asyncio.run(
        journal.decide(
            args.run_id,
            args.approval_id,
            approved=args.approved,
            reason=args.reason or ("approved" if args.approved else "denied") + " with retinue approve",
            by=args.by or _user(),
            arguments_digest=record.arguments_digest,  # the arguments shown here are the ones decided on
        )
    )
    print(f"{'approved' if decided.approved else 'denied'}: {_call(decided)}")
    run = journal.get_run(args.run_id)
    if run is not None and run.status == "decided":
        print(
            f"run {args.run_id} has every decision it waited for: resume it (`retinue resume {args.run_id}`), "
            "or let a worker take it",
            file=sys.stderr,
        )
    return 0


def _list(journal: Journal, run_id: str) -> None:
    records = journal.approvals(run_id)
    if not records:
        print(f"run {run_id} has asked for no decision")
        return
    for record in records:
        if record.approved is None:
            state = "expired" if record.expired() else "waiting"
        else:
            state = "approved" if record.approved else "denied"
        print(f"{record.approval_id}  {state:<8}  {_call(record)}")
        if record.approved is not None:
            print(f"    by {record.decided_by or 'unknown'}: {record.reason}")
        elif record.expires_at is not None:
            print(f"    denied if undecided by {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(record.expires_at))}")


def _call(record: ApprovalRecord) -> str:
    from ..redact import redact

    arguments = json.dumps(record.arguments, ensure_ascii=False, sort_keys=True)
    where = "" if record.run_id == record.root_run_id else f" (in sub-run {record.run_id[:12]})"
    # Terminals are scrolled back, shared and recorded: secrets in the arguments are masked, as in traces.
    return redact(f"{record.agent} {record.tool} {arguments}{where}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "the command line"
