"""`retinue resume RUN_ID`: go on with a durable run whose process was killed.

    retinue resume trip-42 --agent myapp.agents:planner
    retinue resume trip-42 --agent myapp.agents:planner --journal runs/journal.sqlite --approve all
    retinue resume trip-42 --agent myapp.agents:planner --journal postgresql://db/app

The journal records what the run did, not the code of its agent, so `--agent` names where the agent is
defined: `MODULE:NAME`, an `Agent` or a function returning one (the current directory is importable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

from .cli_common import CommandError

if TYPE_CHECKING:
    from .agent import Agent
    from .approvals import Approver


def configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to resume, as `agent.start` named it")
    parser.add_argument(
        "--agent",
        metavar="MODULE:NAME",
        required=True,
        help="where the run's agent is defined: an Agent, or a function returning one",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        help="the journal: a SQLite file or a postgresql:// URL "
        "(default: $RETINUE_HOME/journal.sqlite or ~/.retinue/journal.sqlite)",
    )
    parser.add_argument(
        "--approve",
        choices=("ask", "all", "none"),
        default="ask",
        help="consequential and uncertain calls: ask at the terminal (default), approve all, or refuse all",
    )


def resume(args: argparse.Namespace) -> int:
    from .errors import JournalError, MissingDependencyError
    from .journal import default_journal_path
    from .journal.resume import is_postgres_url, journal_at

    path = args.journal or str(default_journal_path())
    if not is_postgres_url(path) and not os.path.exists(path):
        raise CommandError(f"no journal at {path}: durable runs are started with agent.start(..., journal=...)")
    agent = load_agent(args.agent)
    try:
        with contextlib.closing(journal_at(path)) as journal:
            run = journal.get_run(args.run_id)
            if run is None:
                raise CommandError(f"the journal {path} has no run {args.run_id}")
            if run.agent != agent.name:
                raise CommandError(f"run {args.run_id} is a run of agent '{run.agent}'; {args.agent} is '{agent.name}'")
            result = asyncio.run(_resume(agent, args.run_id, journal, approver_for(args.approve)))
    except (JournalError, MissingDependencyError) as exc:  # a bad journal, or psycopg not installed
        raise CommandError(str(exc)) from exc
    print(result.describe(), file=sys.stderr)
    for call in result.uncertain_calls:
        done = "run again" if call.rerun else "not run again"
        print(f"uncertain: {call.agent} {call.tool} (call {call.tool_call_id}): {done}, {call.reason}", file=sys.stderr)
    if result.output is not None:
        print(result.output)
    return 0 if result.completed else 1


async def _resume(agent: Agent[Any], run_id: str, journal: Any, approver: Approver) -> Any:
    try:
        return await agent.resume(run_id, journal=journal, approver=approver)
    finally:
        await close_models([agent])


async def close_models(agents: list[Agent[Any]]) -> None:
    """Close what the agents' models opened in this event loop (HTTP connections): asyncio.run ends it next."""
    from .models.base import close_model
    from .models.resolve import close_resolved_models

    for agent in agents:
        with contextlib.suppress(Exception):  # a model that never resolved has nothing open
            await close_model(agent.resolved_model())
    await close_resolved_models()


def load_agent(reference: str) -> Agent[Any]:
    """The agent `MODULE:NAME` names: an `Agent`, or a function of no arguments returning one."""
    from .agent import Agent
    from .tools import Tool

    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise CommandError(f"--agent {reference!r}: give MODULE:NAME, e.g. myapp.agents:planner")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"--agent {reference!r}: cannot import {module_name} ({exc})") from exc
    found = getattr(module, attribute, None)
    if found is not None and not isinstance(found, Agent | Tool) and callable(found):  # a Tool is callable too
        found = found()
    if not isinstance(found, Agent):
        raise CommandError(f"--agent {reference!r}: {attribute} in {module_name} is not an Agent")
    return found


def approver_for(choice: str) -> Approver:
    from .approvals import approve_all, deny_all, terminal_approver

    return {"all": approve_all, "none": deny_all}.get(choice, terminal_approver)
