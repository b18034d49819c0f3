"""The `retinue` command: look at recorded runs, replay a model call, open the live UI.

    retinue runs                      list recent runs
    retinue runs --journal [PATH]     list durable runs: running, waiting for approval, interrupted, done
    retinue show RUN_ID               one run as a tree, with cost per agent and per step
    retinue replay CALL_ID [...]      send one recorded model request again and diff the answers
    retinue ui                        the live web UI
    retinue resume RUN_ID --agent M:N go on with a durable run whose process was killed
    retinue approve RUN_ID [ID --yes] decide a call a durable run waits for
    retinue worker --agent M:N        run a journal's pending durable runs, and wait for more
    retinue run / eval / improve APP  an application's assistant: one task, its eval tasks, better texts

Subcommands live in `COMMANDS`; another module adds one with
`register(Command(...))`, naming its handler as "module:function" so that it
is imported only when that subcommand runs. Start-up imports nothing but
argparse: every command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

# Shared with app_commands, which must not import this module; importable from here as before.
from .cli_common import CommandError as CommandError
from .cli_common import add_store_argument as add_store_argument
from .cli_common import check_home as check_home
from .cli_common import open_store as open_store
from .cli_common import port_number as port_number

if TYPE_CHECKING:
    from .journal import DurableRunView
    from .store import RunNode, RunRecord, RunStore
    from .store.records import AgentUsage, ModelCallRecord, ToolCallRecord
    from .usage import Usage

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


COMMANDS: dict[str, Command] = {}


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


def format_tokens(count: int) -> str:
    if count < 10_000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "$?"
    if cost == 0:
        return "$0"
    if cost < 1:
        return f"${cost:.4f}"
    return f"${cost:.2f}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"


def format_usage(usage: Usage) -> str:
    tokens = f"{format_tokens(usage.input_tokens)} in / {format_tokens(usage.output_tokens)} out"
    return f"{tokens}, {format_cost(usage.cost_usd)}"


def short_id(run_id: str) -> str:
    return run_id[:8]


def one_line(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def _table(rows: list[list[str]], out: TextIO, right_aligned: Collection[int] = ()) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip(), file=out)


# -- retinue runs --------------------------------------------------------------------------------------


def _configure_runs(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("-n", "--limit", type=int, default=30, help="how many runs to list (default 30)")
    parser.add_argument("--all", action="store_true", help="list sub-agent runs too, not only root runs")
    parser.add_argument(
        "--journal",
        nargs="?",
        const="",
        metavar="PATH_OR_URL",
        help="list the durable runs of a journal instead, as running, waiting for approval, interrupted or done "
        "(without PATH_OR_URL: $RETINUE_HOME/journal.sqlite or ~/.retinue/journal.sqlite)",
    )


def _runs(args: argparse.Namespace) -> int:
    if args.journal is not None:
        return _durable_runs(args)
    with open_store(args) as store:
        records = store.list_runs(args.limit, include_children=args.all)
    print_runs(records, sys.stdout)
    return 0


def _durable_runs(args: argparse.Namespace) -> int:
    import contextlib

    from .durable_cli import open_existing_journal
    from .errors import JournalError, MissingDependencyError
    from .journal import durable_runs

    try:
        with contextlib.closing(open_existing_journal(args.journal or None)) as journal:
            views = durable_runs(journal, args.limit)
    except (JournalError, MissingDependencyError) as exc:
        raise CommandError(str(exc)) from exc
    print_durable_runs(views, sys.stdout)
    return 0


def print_durable_runs(views: list[DurableRunView], out: TextIO) -> None:
    """The durable runs as a table: state, what their processes paid and what resumes replayed for free."""
    import time

    from .redact import current_redactor

    if not views:
        print("No durable runs in this journal yet.", file=out)
        return
    redact = current_redactor()
    rows = [["RUN", "AGENT", "STATE", "PAID", "REPLAYED", "UPDATED", "PROMPT"]]
    for view in views:
        run, paid, replayed = view.run, view.usage.paid, view.usage.replayed
        rows.append(
            [
                run.run_id,
                run.agent,
                view.describe_state(),
                f"{paid.requests} calls, {format_usage(paid)}",
                f"{replayed.requests} calls",
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.updated_at)),
                redact(one_line(run.prompt, 40)),
            ]
        )
    _table(rows, out)
    for view in views:
        for record in view.pending_approvals:
            print(
                f"{view.run.run_id} waits for {record.agent} {record.tool}: "
                f"retinue approve {view.run.run_id} {record.approval_id} --yes (or --no)",
                file=out,
            )
        if view.resumable:
            print(f"{view.run.run_id} can go on: retinue resume {view.run.run_id}", file=out)


def print_runs(records: list[RunRecord], out: TextIO) -> None:
    import time

    from .redact import current_redactor

    if not records:
        print("No runs recorded yet.", file=out)
        return
    redact = current_redactor()
    rows = [["RUN", "AGENT", "STATUS", "TURNS", "TOKENS", "COST", "STARTED", "PROMPT"]]
    for record in records:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started_at))
        rows.append(
            [
                short_id(record.run_id),
                record.agent,
                record.status,
                str(record.turns),
                format_tokens(record.total_usage.total_tokens),
                format_cost(record.total_usage.cost_usd),
                started,
                redact(one_line(record.prompt, 50)),
            ]
        )
    _table(rows, out, right_aligned={3, 4, 5})


# -- retinue show --------------------------------------------------------------------------------------


def _configure_show(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("run_id", metavar="RUN_ID", help="a run id, or its first characters as `retinue runs` shows")
    parser.add_argument("--full", action="store_true", help="print tool inputs, outputs and answers in full")


def _show(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        run_id = store.resolve_run_id(args.run_id)
        if run_id is None:
            raise CommandError(f"no run (or more than one) has an id starting with {args.run_id!r}")
        tree = store.get_run_tree(run_id)
    if tree is None:
        raise CommandError(f"run {args.run_id!r} has no recorded events")
    print_tree(tree, sys.stdout, full=args.full)
    return 0


def print_tree(tree: RunNode, out: TextIO, *, full: bool = False) -> None:
    """A run as a tree: its model calls and tool calls in order, sub-agents under the tool that started them."""
    from .redact import current_redactor
    from .store import usage_by_agent

    redact = current_redactor()
    width = 10_000 if full else 100
    lines: list[str] = []
    _tree_lines(tree, lines, width)
    for line in lines:
        print(redact(line), file=out)
    per_agent = usage_by_agent(tree)
    print("", file=out)
    print("Cost per agent:", file=out)
    rows = [["AGENT", "RUNS", "CALLS", "INPUT", "OUTPUT", "COST", "MODEL TIME", "TOOLS", "TOOL TIME"]]
    rows += [_agent_row(entry) for entry in per_agent]
    total = tree.run.total_usage
    rows.append(["total", "", str(total.requests), format_tokens(total.input_tokens),
                 format_tokens(total.output_tokens), format_cost(total.cost_usd), "", "", ""])  # fmt: skip
    _table(rows, out, right_aligned={1, 2, 3, 4, 5, 6, 7, 8})


def _agent_row(entry: AgentUsage) -> list[str]:
    return [
        entry.agent,
        str(entry.runs),
        str(entry.model_calls),
        format_tokens(entry.usage.input_tokens),
        format_tokens(entry.usage.output_tokens),
        format_cost(entry.usage.cost_usd),
        format_seconds(entry.model_seconds),
        str(entry.tool_calls),
        format_seconds(entry.tool_seconds),
    ]


def _run_line(node: RunNode) -> str:
    run = node.run
    kind = f" ({run.kind})" if run.kind else ""
    outcome = run.status if run.stop_reason in (None, run.status) else f"{run.status}: {run.stop_reason}"
    turns = f"{run.turns} turn" + ("" if run.turns == 1 else "s")
    return (
        f"▶ {run.agent}{kind} · run {short_id(run.run_id)} · {run.model_id} · {outcome} · {turns} · "
        f"{format_usage(run.total_usage)} · {format_seconds(run.duration_seconds)}"
    )


def _tree_lines(node: RunNode, lines: list[str], width: int) -> None:
    from .store.records import ModelCallRecord

    lines.append(_run_line(node))
    lines.append(f"  prompt: {one_line(node.run.prompt, width)}")
    children = {child.run.run_id: child for child in node.children}
    # Its process ended: steps still open will never finish, and saying "running" would mislead.
    interrupted = node.run.status == "interrupted"
    entries: list[list[str]] = []
    for step in node.steps:
        if isinstance(step, ModelCallRecord):
            entries.append([_model_call_line(step, width, interrupted=interrupted)])
            continue
        entry = _tool_call_lines(step, width, interrupted=interrupted)
        started = [children.pop(child_id) for child_id in step.child_run_ids if child_id in children]
        entry += _branches([_subtree(child, width) for child in started])
        entries.append(entry)
    # Sub-agents not started by a recorded tool call still belong to this run.
    entries += [_subtree(child, width) for child in children.values()]
    lines.extend("  " + line for line in _branches(entries))
    if node.run.output is not None:
        lines.append(f"  answer: {one_line(node.run.output, width)}")
    if node.run.error is not None:
        lines.append(f"  stopped: {one_line(node.run.error, width)}")
    if interrupted:
        lines.append("  interrupted: the process recording this run ended before the run finished")
    for notice in node.notices:
        lines.append(f"  notice ({notice.kind}): {one_line(notice.message, width)}")


def _subtree(node: RunNode, width: int) -> list[str]:
    lines: list[str] = []
    _tree_lines(node, lines, width)
    return lines


def _branches(entries: list[list[str]]) -> list[str]:
    """Entries (each a list of lines) drawn as the branches of a tree."""
    lines: list[str] = []
    for index, (first, *rest) in enumerate(entries):
        last = index == len(entries) - 1
        lines.append(("└─ " if last else "├─ ") + first)
        lines.extend(("   " if last else "│  ") + line for line in rest)
    return lines


def _model_call_line(call: ModelCallRecord, width: int, *, interrupted: bool = False) -> str:
    head = f"chat #{call.id} · turn {call.turn} · {call.model_id}"
    if call.response is None:
        waiting = "interrupted" if interrupted else "waiting for the model…"
        return f"{head} · {'failed: ' + call.error if call.error else waiting}"
    assert call.usage is not None
    said = []
    if call.response.message.text:
        said.append(f'"{one_line(call.response.message.text, width)}"')
    said += [f"→ {tool_call.name}" for tool_call in call.response.message.tool_calls]
    return f"{head} · {format_usage(call.usage)} · {format_seconds(call.duration_seconds)} · {' '.join(said)}"


def _tool_call_lines(call: ToolCallRecord, width: int, *, interrupted: bool = False) -> list[str]:
    import json

    arguments = call.invalid_arguments or json.dumps(call.arguments, ensure_ascii=False)
    head = f"tool {call.name}({one_line(arguments, width)})"
    lines = [head]
    if call.approval is not None:
        approval = call.approval
        reason = f": {approval.reason}" if approval.reason else ""
        lines.append(f"approval: {approval.status}{reason}")
    if call.result is None:
        lines.append("… interrupted" if interrupted else "… running")
    else:
        marker = "✗" if call.is_error else "="
        lines.append(f"{marker} {one_line(call.result, width)} · {format_seconds(call.duration_seconds)}")
    return lines


# -- retinue replay ------------------------------------------------------------------------------------


def _configure_replay(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("call_id", metavar="CALL_ID", type=int, help="a model call, as `retinue show` numbers them")
    parser.add_argument("--model", metavar="M", help="send it to this model instead (e.g. openai:gpt-4.1)")
    parser.add_argument("--instructions-file", metavar="F", help="replace the instructions with this file's text")
    parser.add_argument(
        "--tool-description",
        metavar="NAME=TEXT",
        action="append",
        default=[],
        help="replace one tool's description (repeatable)",
    )


def _replay(args: argparse.Namespace) -> int:
    import asyncio

    instructions = None
    if args.instructions_file:
        try:
            with open(args.instructions_file, encoding="utf-8") as file:
                instructions = file.read()
        except OSError as exc:
            raise CommandError(f"cannot read {args.instructions_file}: {exc.strerror}") from exc
    descriptions: dict[str, str] = {}
    for item in args.tool_description:
        name, equals, text = item.partition("=")
        if not equals or not name:
            raise CommandError(f"--tool-description wants NAME=TEXT, got {item!r}", exit_code=2)
        descriptions[name] = text
    with open_store(args) as store:
        return asyncio.run(_replay_and_print(store, args.call_id, args.model, instructions, descriptions, sys.stdout))


async def _replay_and_print(
    store: RunStore,
    call_id: int,
    model: str | None,
    instructions: str | None,
    descriptions: dict[str, str],
    out: TextIO,
) -> int:
    from .errors import RetinueError
    from .redact import current_redactor
    from .store import replay_call
    from .store.replay import describe_response

    try:
        result = await replay_call(
            store, call_id, model=model, instructions=instructions, tool_descriptions=descriptions or None
        )
    except LookupError as exc:
        raise CommandError(str(exc.args[0] if exc.args else exc)) from exc
    except RetinueError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        from .models.resolve import close_resolved_models

        await close_resolved_models()  # the replayed model was named by a string, here in this event loop
    redact = current_redactor()
    call = result.call
    edits = []
    if instructions is not None:
        edits.append("new instructions")
    edits += [f"new description of tool '{name}'" for name in descriptions]
    print(f"Replayed model call {call.id} (agent {call.agent}, turn {call.turn}) on {result.model_id}", file=out)
    print(f"Recorded on {call.model_id}; edits: {', '.join(edits) or 'none (sent exactly as recorded)'}", file=out)
    print("", file=out)
    print("New response:", file=out)
    for line in describe_response(result.response):
        print(f"  {line}", file=out)
    usage = result.response.usage
    print(f"  ({format_usage(usage)})", file=out)
    print("", file=out)
    if result.diff:
        print("Diff against the recorded response:", file=out)
        print(redact(result.diff), file=out)
    else:
        print("Same answer and tool calls as recorded.", file=out)
    return 0


# -- retinue ui ----------------------------------------------------------------------------------------


def _configure_ui(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--token",
        default=os.environ.get("RETINUE_UI_TOKEN"),
        help="access token, required to listen on any address but loopback (default: $RETINUE_UI_TOKEN)",
    )
    parser.add_argument(
        "--model",
        metavar="M",
        action="append",
        default=[],
        help="a model the Replay button may use besides each call's recorded one (repeatable; $RETINUE_MODEL "
        "is allowed too)",
    )


def _ui(args: argparse.Namespace) -> int:
    from .errors import ConfigurationError
    from .models.resolve import MODEL_ENV_VAR
    from .ui.server import serve

    configured = os.environ.get(MODEL_ENV_VAR, "").strip()
    models = [*args.model, configured] if configured else args.model
    with open_store(args, must_exist=False) as store:
        try:
            serve(store, host=args.host, port=args.port, token=args.token, models=models)
        except ConfigurationError as exc:
            raise CommandError(str(exc), exit_code=2) from exc
        except OSError as exc:
            raise CommandError(_cannot_listen(args.host, args.port, exc)) from exc
    return 0


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    import errno

    if error.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another `retinue ui`?): stop that server, or pick another "
            "port with --port (0 for any free one)"
        )
    return f"cannot listen on {host} port {port}: {error.strerror or error}; check --host and --port"


register(Command("runs", "list recorded runs, newest first", _configure_runs, _runs))
register(Command("show", "show one run as a tree, with cost per agent and per step", _configure_show, _show))
register(
    Command(
        "replay",
        "send one recorded model request again and diff the answer against the recorded one",
        _configure_replay,
        _replay,
    )
)
register(Command("ui", "serve the live web UI", _configure_ui, _ui))


def _configure_run(parser: argparse.ArgumentParser) -> None:
    from .app_commands import configure_run

    configure_run(parser)


def _configure_eval(parser: argparse.ArgumentParser) -> None:
    from .app_commands import configure_eval

    configure_eval(parser)


register(
    Command(
        "run", "run an application's assistant, watching its agents live", _configure_run, "retinue.app_commands:run"
    )
)
register(
    Command(
        "eval",
        "evaluate an application's assistant on its tasks (pass^k, cost, turns)",
        _configure_eval,
        "retinue.app_commands:evaluate",
    )
)


def _configure_resume(parser: argparse.ArgumentParser) -> None:
    from .resume_command import configure_resume

    configure_resume(parser)


register(
    Command(
        "resume",
        "go on with a durable run whose process was killed, from its journal",
        _configure_resume,
        "retinue.resume_command:resume",
    )
)


def _configure_approve(parser: argparse.ArgumentParser) -> None:
    from .approve_command import configure_approve

    configure_approve(parser)


register(
    Command(
        "approve",
        "decide a call a durable run waits for (or list them), so that the run can go on",
        _configure_approve,
        "retinue.approve_command:approve",
    )
)


def _configure_worker(parser: argparse.ArgumentParser) -> None:
    from .worker_command import configure_worker

    configure_worker(parser)


register(
    Command(
        "worker",
        "run the pending durable runs of a journal (SQLite or Postgres), and wait for more",
        _configure_worker,
        "retinue.worker_command:worker",
    )
)


def _configure_improve(parser: argparse.ArgumentParser) -> None:
    from .improve.command import configure_improve

    configure_improve(parser)


register(
    Command(
        "improve",
        "improve an application's instructions and tool descriptions against its eval tasks (GEPA), or one tool",
        _configure_improve,
        "retinue.improve.command:improve_command",
    )
)


if __name__ == "__main__":
    # Run through the package's module, so `python -m retinue.cli` and imports of retinue.cli share one registry.
    from retinue.cli import main as package_main

    sys.exit(package_main())
