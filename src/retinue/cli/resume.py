"""`retinue resume RUN_ID`: go on with a durable run whose process was killed.

    retinue resume trip-42 --agent myapp.agents:planner
    retinue resume trip-42 --agent myapp.agents:planner --journal runs/journal.sqlite --approve all
    retinue resume trip-42 --agent myapp.agents:planner --journal postgresql://db/app
    retinue resume trip-42                  a run started by `retinue run APP --durable`: as it was started

The journal records what the run did, not the code of its agent, so `--agent` names where the agent is
defined: `MODULE:NAME`, an `Agent` or a function returning one (the current directory is importable). The
agent must be defined as when the run started (the journal pins a fingerprint of its tree);
`--allow-changed-definition` goes on with another definition, and the journal records what changed.

A run waiting for decisions (`retinue approve`) goes on with those recorded; a call still undecided is put
to `--approve` (at the terminal by default; without one, or with `--approve later`, the run goes on waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

from .common import CommandError
from .durable import add_allow_changed_definition, open_existing_journal, print_durable_ending

if TYPE_CHECKING:
    from ..agent import Agent
    from ..approvals import Approver


def configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to resume, as `agent.start` named it")
    parser.add_argument(
        "--agent",
        metavar="MODULE:NAME",
        help="where the run's agent is defined: an Agent, or a function returning one (not needed for a run "
        "started by `retinue run APP --durable`)",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        help="the journal: a SQLite file or a postgresql:// URL "
        "(default: $RETINUE_HOME/journal.sqlite or ~/.retinue/journal.sqlite)",
    )
    parser.add_argument(
        "--approve",
        choices=("ask", "later", "all", "none"),
        default="ask",
        help="consequential and uncertain calls: ask at the terminal (default; without one, wait as with "
        "later), wait for `retinue approve` (later), approve all, or refuse all",
    )
    add_allow_changed_definition(parser)


def resume(args: argparse.Namespace) -> int:
    from ..errors import JournalError, MissingDependencyError

    if args.agent is None:
        return _resume_app_run(args)
    agent = load_agent(args.agent)
    try:
        with contextlib.closing(open_existing_journal(args.journal)) as journal:
            run = journal.get_run(args.run_id)
            if run is None:
                raise CommandError(f"the journal has no run {args.run_id}")
            if run.agent != agent.name:
                raise CommandError(f"run {args.run_id} is a run of agent '{run.agent}'; {args.agent} is '{agent.name}'")
            approver = approver_for(args.approve)
            result = asyncio.run(_resume(agent, args.run_id, journal, approver, args.allow_changed_definition))
    except (JournalError, MissingDependencyError) as exc:  # a bad journal, or psycopg not installed
        raise CommandError(str(exc)) from exc
    print_durable_ending(result)
    if result.output is not None:
        print(result.output)
    return 0 if result.completed or result.status == "waiting" else 1


def _resume_app_run(args: argparse.Namespace) -> int:
    """Go on with a run `retinue run APP --durable` started, as it was started: `retinue run` does it."""
    from ..errors import JournalError, MissingDependencyError
    from ..journal import default_journal_path
    from ..journal.app_runs import load_launch, state_dir_of
    from .app_commands import configure_run, run

    location = args.journal or str(default_journal_path())
    try:
        with contextlib.closing(open_existing_journal(location)) as journal:
            if journal.get_run(args.run_id) is None:
                raise CommandError(f"the journal has no run {args.run_id}")
        launch = load_launch(state_dir_of(location, args.run_id))
    except (JournalError, MissingDependencyError) as exc:
        raise CommandError(str(exc)) from exc
    if launch is None:
        raise CommandError(
            f"run {args.run_id} was not started by `retinue run APP --durable`: say which agent runs it with "
            "--agent MODULE:NAME"
        )
    parser = argparse.ArgumentParser(prog="retinue run")
    configure_run(parser)
    arguments = [launch.app, "--durable", "--run-id", args.run_id, "--journal", location, "--approve", args.approve]
    if args.allow_changed_definition:
        arguments.append("--allow-changed-definition")
    return run(parser.parse_args(arguments))


async def _resume(
    agent: Agent[Any], run_id: str, journal: Any, approver: Approver, allow_changed_definition: bool
) -> Any:
    try:
        return await agent.resume(
            run_id, journal=journal, approver=approver, allow_changed_definition=allow_changed_definition
        )
    finally:
        await close_models([agent])


async def close_models(agents: list[Agent[Any]]) -> None:
    """Close what the agents' models opened in this event loop (HTTP connections): asyncio.run ends it next."""
    from ..models.base import close_model
    from ..models.resolve import close_resolved_models

    for agent in agents:
        with contextlib.suppress(Exception):  # a model that never resolved has nothing open
            await close_model(agent.resolved_model())
    await close_resolved_models()


def load_agent(reference: str) -> Agent[Any]:
    """The agent `MODULE:NAME` names: an `Agent`, or a function of no arguments returning one."""
    from ..agent import Agent
    from ..tools import Tool

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
    """The approver of a resumed run for `--approve CHOICE`: ask, later, all or none."""
    from ..approvals import approve_all, decide_later, deny_all, terminal_approver

    if choice == "ask" and not sys.stdin.isatty():
        choice = "later"  # nobody at a terminal to ask: the run waits for `retinue approve` instead
    later = decide_later()
    return {"all": approve_all, "none": deny_all, "later": later}.get(choice, terminal_approver)
