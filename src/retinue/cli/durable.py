"""What the commands of durable runs share: the journal they name, --allow-changed-definition, the ending told.

Used by `retinue resume`, `retinue worker`, `retinue approve`, `retinue runs --journal` and
`retinue run APP --durable`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from .common import CommandError

if TYPE_CHECKING:
    from ..journal import Journal
    from ..result import RunResult


def add_allow_changed_definition(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-changed-definition",
        action="store_true",
        help="go on even if the agents' instructions, tools or models changed since the run started (recorded "
        "in the journal)",
    )


def open_existing_journal(location: str | None) -> Journal:
    """The journal at `location` (default: the usual file), which must exist: a mistyped path creates nothing."""
    from ..journal import default_journal_path
    from ..journal.resume import is_postgres_url, journal_at

    path = location or str(default_journal_path())
    if not is_postgres_url(path) and not os.path.exists(path):
        raise CommandError(f"no journal at {path}: durable runs are started with agent.start(..., journal=...)")
    return journal_at(path)


def print_durable_ending(result: RunResult[Any]) -> None:
    """How a durable run ended (or what it waits for), its uncertain calls, and what to do next: on stderr."""
    print(result.describe(), file=sys.stderr)
    for call in result.uncertain_calls:
        done = "run again" if call.rerun else "not run again"
        print(f"uncertain: {call.agent} {call.tool} (call {call.tool_call_id}): {done}, {call.reason}", file=sys.stderr)
    for record in result.pending_approvals:
        print(
            f"waiting: {record.agent} {record.tool}: decide with `retinue approve {record.root_run_id} "
            f"{record.approval_id} --yes` (or --no), then resume the run",
            file=sys.stderr,
        )
