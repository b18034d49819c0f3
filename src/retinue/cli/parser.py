"""The `retinue` parser: the table of subcommands, the parser built from it, and `main`.

Each subcommand's module adds its own arguments (`configure`) and runs it
(`handler`). Another module adds a subcommand with `register(Command(...))`,
naming its handler as "module:function" so that it is imported only when that
subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import app_commands, approve, improve, replay, resume, runs, ui, worker
from .common import CommandError

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: `configure` adds its arguments; `handler` (or "module:function") runs it."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Handler | str
    description: str | None = None

    def resolve_handler(self) -> Handler:
        if not isinstance(self.handler, str):
            return self.handler
        module_name, _, function_name = self.handler.partition(":")
        handler: Handler = getattr(importlib.import_module(module_name), function_name)
        return handler


BUILT_IN = (
    Command("runs", "list recorded runs, newest first", runs.configure_runs, runs.runs),
    Command("show", "show one run as a tree, with cost per agent and per step", runs.configure_show, runs.show),
    Command(
        "replay",
        "send one recorded model request again and diff the answer against the recorded one",
        replay.configure_replay,
        replay.replay,
    ),
    Command("ui", "serve the live web UI", ui.configure_ui, ui.ui),
    Command(
        "run",
        "run an application's assistant, watching its agents live",
        app_commands.configure_run,
        app_commands.run,
    ),
    Command(
        "eval",
        "evaluate an application's assistant on its tasks (pass^k, cost, turns)",
        app_commands.configure_eval,
        app_commands.evaluate,
    ),
    Command(
        "resume",
        "go on with a durable run whose process was killed, from its journal",
        resume.configure_resume,
        resume.resume,
    ),
    Command(
        "approve",
        "decide a call a durable run waits for (or list them), so that the run can go on",
        approve.configure_approve,
        approve.approve,
    ),
    Command(
        "worker",
        "run the pending durable runs of a journal (SQLite or Postgres), and wait for more",
        worker.configure_worker,
        worker.worker,
    ),
    Command(
        "improve",
        "improve an application's instructions and tool descriptions against its eval tasks (GEPA), or one tool",
        improve.configure_improve,
        improve.improve_command,
    ),
)

COMMANDS: dict[str, Command] = {command.name: command for command in BUILT_IN}


def register(command: Command) -> Command:
    """Add (or replace) a subcommand."""
    COMMANDS[command.name] = command
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retinue", description="Multi-agent LLM systems: run agents and look at what they did."
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        subparser = subcommands.add_parser(
            command.name, help=command.help, description=command.description or command.help
        )
        command.configure(subparser)
        subparser.set_defaults(_command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "_command", None)
    if command is None:
        parser.print_help()
        return 2
    try:
        return command.resolve_handler()(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `retinue runs | head` closed the pipe: not an error worth a traceback. Point stdout at
        # /dev/null so the interpreter's final flush does not hit the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CommandError as exc:
        print(f"retinue {command.name}: {exc}", file=sys.stderr)
        return exc.exit_code
