"""A terminal view of running agents: the agent tree, what each is doing, tokens and cost.

    result = await agent.run(prompt, on_event=LiveView())

On a terminal it redraws a block of lines in place (plain ANSI escapes, at
most every `refresh_seconds`, with a spinner so a long model call still looks
alive). Anywhere else (a pipe, a CI log) it writes one line per thing that
happened, since redrawing would only fill the log with escape codes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from ..events import (
    ApprovalRequested,
    ApprovalResolved,
    Event,
    ModelRequestSent,
    ModelResponseReceived,
    Notice,
    RunFinished,
    RunStarted,
    SubAgentStarted,
    ToolCallFinished,
    ToolCallStarted,
)
from ..redact import redact
from ..usage import Usage

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_RESET = "\x1b[0m"
_STYLES = {"dim": "\x1b[2m", "bold": "\x1b[1m", "green": "\x1b[32m", "red": "\x1b[31m", "yellow": "\x1b[33m",
           "cyan": "\x1b[36m"}  # fmt: skip


@dataclass(slots=True)
class _RunView:
    run_id: str
    agent: str
    model_id: str
    started: float
    parent: _RunView | None = None
    kind: str | None = None
    status: str = "running"
    turn: int = 0
    activity: str = "starting"
    usage: Usage = field(default_factory=Usage)
    total: Usage | None = None
    finished: float | None = None
    tools: dict[str, str] = field(default_factory=dict)
    children: list[_RunView] = field(default_factory=list)

    def total_usage(self) -> Usage:
        if self.total is not None:
            return self.total
        total = self.usage.copy()
        for child in self.children:
            total.add(child.total_usage())
        return total


class LiveView:
    """An event sink drawing the agent tree of the runs it sees on a terminal (or logging them line by line)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interactive: bool | None = None,
        color: bool | None = None,
        refresh_seconds: float = 0.1,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        is_tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interactive = is_tty if interactive is None else interactive
        self.color = (self.interactive and "NO_COLOR" not in os.environ) if color is None else color
        self.refresh_seconds = refresh_seconds
        self._runs: dict[str, _RunView] = {}
        self._roots: list[_RunView] = []
        self._pending_kinds: dict[str, str] = {}
        self._drawn_lines = 0
        self._last_draw = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._frame = 0

    # -- events --------------------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        view = self._runs.get(event.run_id)
        match event:
            case RunStarted():
                self._started(event)
            case _ if view is None:
                return
            case ModelRequestSent():
                view.turn = event.turn
                view.activity = f"thinking (turn {event.turn})"
            case ModelResponseReceived():
                view.usage.add(event.response.usage)
                calls = event.response.message.tool_calls
                view.activity = "calling " + ", ".join(call.name for call in calls) if calls else "answering"
                if not self.interactive:
                    self._log(view, f"turn {event.turn}: {_usage_text(event.response.usage)}, "
                                    f"{_seconds(event.duration_seconds)}")  # fmt: skip
            case ToolCallStarted():
                described = f"{event.call.name}({_arguments(event.call.arguments)})"
                view.tools[event.call.id] = described
                view.activity = "running " + "; ".join(view.tools.values())
                if not self.interactive:
                    self._log(view, f"→ {described}")
            case ToolCallFinished():
                view.tools.pop(event.call.id, None)
                view.activity = ("running " + "; ".join(view.tools.values())) if view.tools else "thinking"
                if not self.interactive or event.result.is_error:
                    mark = "✗" if event.result.is_error else "←"
                    self._log(view, f"{mark} {event.call.name}: {_one_line(event.result.content, 100)} "
                                    f"({_seconds(event.duration_seconds)})")  # fmt: skip
            case ApprovalRequested():
                view.activity = f"waiting for approval: {event.call.name}({_arguments(event.call.arguments)})"
                self._log(view, f"approval needed: {event.call.name}({_arguments(event.call.arguments)})")
            case ApprovalResolved():
                verdict = "approved" if event.approved else "denied"
                self._log(view, f"{event.call.name} {verdict}" + (f": {event.reason}" if event.reason else ""))
            case SubAgentStarted():
                child = self._runs.get(event.child_run_id)
                if child is not None:
                    child.kind = event.kind
                else:
                    self._pending_kinds[event.child_run_id] = event.kind
            case Notice():
                self._log(view, f"{event.kind}: {event.message}")
            case RunFinished():
                self._finished(view, event)
        self._schedule()

    def _started(self, event: RunStarted) -> None:
        parent = self._runs.get(event.parent_run_id) if event.parent_run_id else None
        view = _RunView(event.run_id, event.agent, event.model_id, event.timestamp, parent=parent)
        view.kind = self._pending_kinds.pop(event.run_id, None)
        self._runs[event.run_id] = view
        if parent is not None:
            parent.children.append(view)
        else:
            self._roots.append(view)
        if not self.interactive:
            self._log(view, f"started on {event.model_id}: {_one_line(event.prompt, 100)}")

    def _finished(self, view: _RunView, event: RunFinished) -> None:
        result = event.result
        view.status = result.status
        view.finished = event.timestamp
        view.total = result.total_usage.copy()
        view.tools.clear()
        view.activity = "done" if result.completed else result.stop_reason
        if not self.interactive or view.parent is None:
            self._log(view, f"{result.status} after {result.turns} turns: {_usage_text(result.total_usage)}, "
                            f"{_seconds(result.duration_seconds)}")  # fmt: skip

    # -- drawing -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Draw the final state and stop redrawing."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.interactive:
            self._draw()
            self._drawn_lines = 0

    def _running(self) -> bool:
        return any(view.status == "running" for view in self._runs.values())

    def _schedule(self) -> None:
        if not self.interactive:
            return
        now = time.monotonic()
        if now - self._last_draw >= self.refresh_seconds or not self._running():
            self._draw()
        if self._timer is None and self._running():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # called outside an event loop: draw on events only
            self._timer = loop.call_later(self.refresh_seconds, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._draw()
        if self._running():
            self._timer = asyncio.get_running_loop().call_later(self.refresh_seconds, self._tick)
        else:
            self._drawn_lines = 0  # everything finished: leave the last frame on screen

    def _draw(self) -> None:
        self._last_draw = time.monotonic()
        self._frame += 1
        width, height = shutil.get_terminal_size((100, 30))
        lines = self._lines(width - 1, max(height - 2, 3))
        self.stream.write(self._erase() + "".join(line + "\n" for line in lines))
        self.stream.flush()
        self._drawn_lines = len(lines)

    def _erase(self) -> str:
        # Back to the first line of the previous frame, then clear to the end of the screen.
        return f"\x1b[{self._drawn_lines}F\x1b[J" if self._drawn_lines else ""

    def _log(self, view: _RunView, message: str) -> None:
        line = redact(f"[{view.agent}{'#' + view.run_id[:6] if view.parent else ''}] {message}")
        if self.interactive:
            # Above the live block, so it scrolls away like ordinary output.
            width = shutil.get_terminal_size((100, 30))[0] - 1
            self.stream.write(self._erase() + _cut(line, width) + "\n")
            self._drawn_lines = 0
            if self._running():
                self._draw()
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def _lines(self, width: int, max_lines: int) -> list[str]:
        rows: list[tuple[int, _RunView]] = []
        for root in self._roots:
            if root.status == "running" or root.finished is not None:
                _flatten(root, 0, rows)
        total = Usage()
        for root in self._roots:
            total.add(root.total_usage())
        running = sum(1 for _, view in rows if view.status == "running")
        header = f"{len(rows)} agents, {running} running · {_usage_text(total)}"
        lines = [self._style(_cut(header, width), "bold")]
        hidden: list[tuple[int, _RunView]] = []
        if len(rows) + 1 > max_lines:
            # Too many to show: the roots and the running ones first, then as many finished ones as fit.
            ranked = sorted(rows, key=lambda row: (row[1].parent is not None, row[1].status != "running"))
            shown = {id(view) for _, view in ranked[: max_lines - 2]}
            hidden = [row for row in rows if id(row[1]) not in shown]
            rows = [row for row in rows if id(row[1]) in shown]
        for depth, view in rows:
            lines.append(self._row(depth, view, width))
        if hidden:
            still_running = sum(1 for _, view in hidden if view.status == "running")
            lines.append(self._style(_cut(f"  … {len(hidden)} more agents ({still_running} running)", width), "dim"))
        return lines

    def _row(self, depth: int, view: _RunView, width: int) -> str:
        now = time.time()
        elapsed = (view.finished or now) - view.started
        if view.status == "running":
            icon, style = _SPINNER[self._frame % len(_SPINNER)], "cyan"
        elif view.status == "completed":
            icon, style = "✓", "green"
        elif view.status == "limit":
            icon, style = "■", "yellow"
        else:
            icon, style = "✗", "red"
        kind = f" ({view.kind})" if view.kind else ""
        stats = f"turn {view.turn} · {_usage_text(view.total_usage())} · {_seconds(elapsed)}"
        text = redact(f"{'  ' * depth}{icon} {view.agent}{kind}  {view.activity}")
        room = width - len(stats) - 3
        if room < 10:
            return self._style(_cut(text, width), style)
        return self._style(_cut(text, room).ljust(room), style) + "   " + self._style(stats, "dim")

    def _style(self, text: str, style: str) -> str:
        return f"{_STYLES[style]}{text}{_RESET}" if self.color else text


def _flatten(view: _RunView, depth: int, rows: list[tuple[int, _RunView]]) -> None:
    rows.append((depth, view))
    for child in view.children:
        _flatten(child, depth + 1, rows)


def _usage_text(usage: Usage) -> str:
    cost = "$?" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
    return f"{_tokens(usage.input_tokens)} in / {_tokens(usage.output_tokens)} out tok, {cost}"


def _tokens(count: int) -> str:
    return str(count) if count < 10_000 else f"{count / 1000:.1f}k"


def _seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


def _arguments(arguments: dict[str, object]) -> str:
    text = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False, default=str)}" for key, value in arguments.items())
    return _one_line(text, 60)


def _one_line(text: str, width: int) -> str:
    return _cut(" ".join(text.split()), width)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
