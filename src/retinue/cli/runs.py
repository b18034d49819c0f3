"""`retinue runs` and `retinue show RUN_ID`: the recorded runs as a list, and one of them as a tree.

retinue runs                      list recent runs
retinue runs --journal [PATH]     list durable runs: running, waiting for approval, interrupted, done
retinue show RUN_ID               one run as a tree, with cost per agent and per step
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from .common import (
    CommandError,
    add_store_argument,
    format_cost,
    format_seconds,
    format_tokens,
    format_usage,
    one_line,
    open_store,
    print_table,
    short_id,
)

if TYPE_CHECKING:
    from ..journal import DurableRunView
    from ..store import RunNode, RunRecord
    from ..store.records import AgentUsage, ModelCallRecord, ToolCallRecord


def configure_runs(parser: argparse.ArgumentParser) -> None:
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


def runs(args: argparse.Namespace) -> int:
    if args.journal is not None:
        return _durable_runs(args)
    with open_store(args) as store:
        records = store.list_runs(args.limit, include_children=args.all)
    print_runs(records, sys.stdout)
    return 0


def _durable_runs(args: argparse.Namespace) -> int:
    import contextlib

    from ..errors import JournalError, MissingDependencyError
    from ..journal import durable_runs
    from .durable import open_existing_journal

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

    from ..redact import current_redactor

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
    print_table(rows, out)
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

    from ..redact import current_redactor

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
    print_table(rows, out, right_aligned={3, 4, 5})


def configure_show(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("run_id", metavar="RUN_ID", help="a run id, or its first characters as `retinue runs` shows")
    parser.add_argument("--full", action="store_true", help="print tool inputs, outputs and answers in full")


def show(args: argparse.Namespace) -> int:
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
    from ..redact import current_redactor
    from ..store import usage_by_agent

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
    print_table(rows, out, right_aligned={1, 2, 3, 4, 5, 6, 7, 8})


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
    from ..store.records import ModelCallRecord

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
