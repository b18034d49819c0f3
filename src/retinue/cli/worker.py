"""`retinue worker`: run the pending durable runs of a journal, and wait for more.

    retinue worker --journal postgresql://db/app --agent myapp.agents:planner --concurrency 4
    retinue worker --agent myapp.agents:planner --agent myapp.agents:booker --drain

Start as many workers as you like, on as many machines as share the journal: each run is taken by one
worker at a time, and a run whose worker died is taken over by another once its lease has run out
(`--lease-seconds`, renewed every third of it while the worker lives). Pending runs are those killed or
cancelled mid-way and those queued with `retinue.journal.submit_run`. SIGTERM or Ctrl-C stops a worker: the
runs it was running are cancelled and left pending, for another worker to go on with.

A call that needs approval suspends its run (`--approve later`, the default: nobody is at a worker's
terminal): the run ends here "waiting", and a worker takes it again once `retinue approve` has decided.

Each run that ends (or comes to wait) is a line on stdout, `RUN_ID STATUS`; what the worker does goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from .common import CommandError
from .durable import add_allow_changed_definition
from .resume import approver_for, close_models, load_agent

if TYPE_CHECKING:
    from ..agent import Agent
    from ..journal import Journal
    from ..result import RunResult


def configure_worker(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        help="the journal: a SQLite file or a postgresql:// URL "
        "(default: $RETINUE_HOME/journal.sqlite or ~/.retinue/journal.sqlite)",
    )
    parser.add_argument(
        "--agent",
        metavar="MODULE:NAME",
        action="append",
        required=True,
        help="an agent whose runs this worker runs: an Agent, or a function returning one (repeat for several)",
    )
    parser.add_argument("--concurrency", type=int, default=1, metavar="N", help="runs at a time (default 1)")
    parser.add_argument(
        "--drain", action="store_true", help="exit once no pending run of these agents is left, instead of waiting"
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=None,
        metavar="S",
        help="how long a run stays this worker's without a heartbeat before another may take it (default 30)",
    )
    parser.add_argument(
        "--approve",
        choices=("later", "all", "none"),
        default="later",
        help="consequential and uncertain calls: wait for a decision recorded with `retinue approve` (default: "
        "the run is suspended, and taken again once decided), approve them all, or refuse them all",
    )
    add_allow_changed_definition(parser)


def worker(args: argparse.Namespace) -> int:
    from ..errors import JournalError, MissingDependencyError
    from ..journal import default_journal_path
    from ..journal.resume import journal_at

    if args.concurrency < 1:
        raise CommandError(f"--concurrency {args.concurrency}: give 1 or more runs at a time")
    if args.lease_seconds is not None and args.lease_seconds <= 0:
        raise CommandError(f"--lease-seconds {args.lease_seconds:g}: give a number of seconds greater than 0")
    agents = [load_agent(reference) for reference in args.agent]
    names = [agent.name for agent in agents]
    if len(set(names)) < len(names):
        raise CommandError(f"--agent: two of the agents given have the same name ({', '.join(names)})")
    location = args.journal or str(default_journal_path())
    _log_runs_to_stderr()
    try:
        with contextlib.closing(journal_at(location, lease_seconds=args.lease_seconds)) as journal:
            shown = getattr(journal, "where", None) or os.fspath(location)
            print(
                f"retinue worker {os.getpid()}: running the runs of {', '.join(names)} from {shown}, "
                f"{args.concurrency} at a time",
                file=sys.stderr,
                flush=True,
            )
            asyncio.run(_serve(journal, agents, args))
    except (JournalError, MissingDependencyError) as exc:  # a bad journal, or psycopg not installed
        raise CommandError(str(exc)) from exc
    return 0


async def _serve(journal: Journal, agents: list[Agent[Any]], args: argparse.Namespace) -> None:
    from ..journal import work

    main = asyncio.current_task()
    assert main is not None
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        main.cancel()

    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop)
    try:
        ended = await work(
            journal,
            agents,
            concurrency=args.concurrency,
            drain=args.drain,
            on_done=_print_ending,
            approver=approver_for(args.approve),
            allow_changed_definition=args.allow_changed_definition,
        )
        print(f"retinue worker: no pending run left; {ended} run(s) ended here", file=sys.stderr, flush=True)
    except asyncio.CancelledError:
        if not stopping.is_set():
            raise
        print("retinue worker: stopped; its unfinished runs are left pending for other workers", file=sys.stderr)
    finally:
        await close_models(agents)


def _log_runs_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("retinue worker: %(message)s"))
    journal_log = logging.getLogger("retinue.journal")
    journal_log.addHandler(handler)
    journal_log.setLevel(logging.INFO)


def _print_ending(run_id: str, result: RunResult[Any]) -> None:
    for call in result.uncertain_calls:
        done = "run again" if call.rerun else "not run again"
        print(
            f"run {run_id}: uncertain {call.agent} {call.tool} (call {call.tool_call_id}): {done}, {call.reason}",
            file=sys.stderr,
        )
    for record in result.pending_approvals:
        print(f"run {run_id}: waiting for approval {record.approval_id} of {record.tool}", file=sys.stderr)
    print(f"{run_id} {result.status}", flush=True)
