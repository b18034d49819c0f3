"""What an eval produces: one `TrialResult` per episode, gathered in an `EvalReport` that is saved as JSON.

A saved report is one JSON object (`EvalReport.to_json`):

    {"format": "retinue.eval_report", "version": 2,
     "label": "travel/lead/local", "app": "travel", "architecture": "lead", "model": "local",
     "user_model": "scripted", "created_at": "2026-05-01T12:00:00Z", "trials": 2,
     "task_ids": [...], "split": {"seed": 0, "held_out_fraction": 0.3, "train": [...], "held_out": [...]} | null,
     "pass_hat": {"1": 0.5, "2": 0.25},
     "per_task": {"task-id": {"trials": 2, "passed": 1, "pass^1": 0.5, "pass^2": 0.0}},
     "summary": {...the row `summary_row` prints...},
     "results": [{...each TrialResult's fields but `runs`...}]}

It holds the text of the conversation and a compact list of tool calls per trial
(name, arguments, ok, a cut result), not whole message histories, and every
string in it is redacted. Reports written before version 2 load too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypedDict

from ..result import RunResult

EpisodeEnding: TypeAlias = Literal["user", "max_turns", "tool", "max_steps", "assistant_failed", "user_failed"]
"""How a conversation ended: the user stopped; the task's user-turn limit; a tool raised `EndEpisode`; the
episode's step budget ran out; the assistant's run did not complete; the user could not reply."""

RESULT_EXCERPT_CHARS = 400  # of a tool's result, kept per call in a report


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call made during an episode, by the assistant or any agent under it.

    `user_turn` is the user message it answered (1 for the first). `result` is the start of what the tool
    returned (its error text when `ok` is false), cut to RESULT_EXCERPT_CHARS characters.
    """

    user_turn: int
    agent: str
    name: str
    arguments: dict[str, Any]
    ok: bool
    result: str

    def describe(self, result_chars: int = 300) -> str:
        """`name({"arg": ...}) -> result`, in one line, for a verdict or a log."""
        arguments = json.dumps(self.arguments, ensure_ascii=False, default=repr)
        if len(arguments) > 200:
            arguments = arguments[:197] + "..."
        result = " ".join(self.result.split())
        if len(result) > result_chars:
            result = result[: result_chars - 3] + "..."
        return f"{self.name}({arguments}) -> {result}"


@dataclass
class TrialResult:
    """One graded episode of a task.

    `passed` needs the expected end state, every required fact, no failing tool-call check and no error.
    `verdict` says in words why a trial failed (the state's differences, the missing facts, the error, the
    failing tool calls); for a passed trial it is "passed". `steps` counts the assistant's model calls over
    the whole episode. `cost_usd` and the token counts are the assistant's; `user_cost_usd` and `user_tokens`
    what a simulated user's own model calls cost. `runs` are the assistant's RunResults, one per user turn,
    for inspection in memory: they are not saved with the report (`tool_calls` and `transcript` are).
    """

    task_id: str
    trial: int
    passed: bool
    state_matches: bool
    missing_facts: list[str]
    user_turns: int
    cost_usd: float | None
    input_tokens: int
    output_tokens: int
    seconds: float
    error: str | None = None
    transcript: list[tuple[str, str]] = field(default_factory=list)
    ending: EpisodeEnding = "user"
    steps: int = 0
    state_diff: list[str] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    tool_call_problems: list[str] = field(default_factory=list)
    verdict: str = ""
    user_cost_usd: float | None = 0.0
    user_tokens: int = 0
    runs: list[RunResult[Any]] = field(default_factory=list, repr=False, compare=False)

    def failing_tool_calls(self) -> list[ToolCallRecord]:
        return [call for call in self.tool_calls if not call.ok]

    def to_json(self) -> dict[str, Any]:
        """This result as JSON values, without `runs`."""
        payload = {item.name: getattr(self, item.name) for item in dataclasses.fields(self) if item.name != "runs"}
        payload["tool_calls"] = [dataclasses.asdict(call) for call in self.tool_calls]
        payload["transcript"] = [list(entry) for entry in self.transcript]
        return payload

    @staticmethod
    def from_json(payload: dict[str, Any]) -> TrialResult:
        known = {item.name for item in dataclasses.fields(TrialResult)} - {"runs"}
        values = {key: value for key, value in payload.items() if key in known}
        values["transcript"] = [tuple(entry) for entry in values.get("transcript", [])]
        values["tool_calls"] = [ToolCallRecord(**call) for call in values.get("tool_calls", [])]
        return TrialResult(**values)


class SplitIds(TypedDict):
    """Which tasks were trained on and which held out, and how the split was drawn (see `split_tasks`)."""

    seed: int
    held_out_fraction: float
    train: list[str]
    held_out: list[str]


REPORT_FORMAT = "retinue.eval_report"
REPORT_VERSION = 2


@dataclass
class EvalReport:
    """Every trial of an eval, with what was evaluated: the app, architecture and models, when, on which tasks.

    `task_ids` are the tasks in the order they were given (derived from `results` when left empty); `split`
    records a train/held-out split the tasks came from, when there was one.
    """

    label: str
    trials: int
    results: list[TrialResult]
    app: str = ""
    architecture: str = ""
    model: str = ""
    user_model: str = ""
    created_at: str = ""
    task_ids: list[str] = field(default_factory=list)
    split: SplitIds | None = None

    def __post_init__(self) -> None:
        if not self.task_ids:
            self.task_ids = list(dict.fromkeys(result.task_id for result in self.results))

    def by_task(self) -> dict[str, list[TrialResult]]:
        grouped: dict[str, list[TrialResult]] = {}
        for result in self.results:
            grouped.setdefault(result.task_id, []).append(result)
        return grouped

    def pass_hat(self, k: int) -> float:
        """pass^k: the chance that k trials of a task, drawn from those run, all succeed; mean over tasks."""
        scores = list(self.pass_hat_by_task(k).values())
        return sum(scores) / len(scores) if scores else 0.0

    def pass_hat_by_task(self, k: int) -> dict[str, float]:
        """pass^k of each task: the chance that k of its trials, drawn from those run, all succeed."""
        if k < 1:
            raise ValueError(f"pass^k needs k of at least 1, not {k}")
        scores = {}
        for task_id, results in self.by_task().items():
            n, successes = len(results), sum(r.passed for r in results)
            if k > n:
                raise ValueError(f"pass^{k} needs at least {k} trials per task; ran {n} of {task_id!r}")
            scores[task_id] = math.comb(successes, k) / math.comb(n, k)
        return scores

    def mean_cost(self) -> float | None:
        costs = [r.cost_usd for r in self.results]
        if any(cost is None for cost in costs):
            return None
        return sum(c for c in costs if c is not None) / max(len(costs), 1)

    def summary_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"label": self.label, "tasks": len(self.by_task()), "trials": self.trials}
        for k in range(1, self._most_trials() + 1):
            row[f"pass^{k}"] = round(self.pass_hat(k), 3)
        cost = self.mean_cost()
        row["$/trial"] = "unknown" if cost is None else round(cost, 5)
        row["turns/trial"] = round(sum(r.user_turns for r in self.results) / max(len(self.results), 1), 2)
        row["tokens/trial"] = round(
            sum(r.input_tokens + r.output_tokens for r in self.results) / max(len(self.results), 1)
        )
        return row

    def _most_trials(self) -> int:
        """The largest k pass^k can be computed for: the fewest trials any task has."""
        counts = [len(results) for results in self.by_task().values()]
        return min(counts) if counts else 0

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON object, in the shape the module docstring shows (not yet redacted)."""
        ks = range(1, self._most_trials() + 1)
        per_task: dict[str, dict[str, Any]] = {
            task_id: {"trials": len(results), "passed": sum(r.passed for r in results)}
            for task_id, results in self.by_task().items()
        }
        for k in ks:
            for task_id, score in self.pass_hat_by_task(k).items():
                per_task[task_id][f"pass^{k}"] = round(score, 4)
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "label": self.label,
            "app": self.app,
            "architecture": self.architecture,
            "model": self.model,
            "user_model": self.user_model,
            "created_at": self.created_at,
            "trials": self.trials,
            "task_ids": self.task_ids,
            "split": self.split,
            "pass_hat": {str(k): round(self.pass_hat(k), 4) for k in ks},
            "per_task": per_task,
            "summary": self.summary_row(),
            "results": [result.to_json() for result in self.results],
        }

    def save(self, path: Path) -> None:
        """Write the report to `path` as JSON, every string redacted (transcripts quote what tools showed)."""
        from ..redact import redact_data

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(redact_data(self.to_json()), indent=1, ensure_ascii=False))

    @staticmethod
    def load(path: Path) -> EvalReport:
        """A report saved by `save`, of this version or an earlier one; ValueError if the file is not one."""
        try:
            payload = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not an eval report: not JSON ({exc})") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
            raise ValueError(f"{path} is not an eval report: no list of results")
        if payload.get("version", 1) > REPORT_VERSION:
            raise ValueError(
                f"{path} is an eval report of version {payload['version']}, newer than this retinue reads "
                f"({REPORT_VERSION}): upgrade retinue"
            )
        try:
            results = [TrialResult.from_json(result) for result in payload["results"]]
            return EvalReport(
                label=payload["label"],
                trials=payload["trials"],
                results=results,
                app=payload.get("app", ""),
                architecture=payload.get("architecture", ""),
                model=payload.get("model", ""),
                user_model=payload.get("user_model", ""),
                created_at=payload.get("created_at", ""),
                task_ids=payload.get("task_ids", []),
                split=payload.get("split"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a readable eval report: {type(exc).__name__}: {exc}") from exc


def render_table(rows: Sequence[dict[str, Any]]) -> str:
    """Summary rows (from `EvalReport.summary_row`) as an aligned text table."""
    if not rows:
        return "(no results)"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [columns, *([str(row.get(column, "")) for column in columns] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
