"""Run eval tasks end to end and grade them: end state, required facts, pass^k, cost and turns.

An application provides an `EpisodeFactory`: for each trial of a task, a
fresh environment and the assistant agent working in it. The harness plays
the conversation between a user (simulated or scripted) and the assistant,
then compares the environment's final state with the task's expected state
and checks the required facts in what the assistant said.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..agent import Agent
from ..approvals import Approver, approve_all
from ..limits import Limits
from ..messages import Message
from ..usage import Usage
from .tasks import EvalTask
from .users import STOP, User


@dataclass
class Episode:
    """One trial's world: the assistant, and how to read the final state.

    In an eval the conversation itself is the user's consent, so consequential
    tools are approved by default (`approve_all`); pass another approver to
    test refusals. `contains(said, fact)` decides whether what the assistant
    said holds a required fact (by default, case-insensitive substring).
    """

    assistant: Agent[Any]
    final_state: Callable[[], Any]
    deps: Any = None
    approver: Approver | None = approve_all
    close: Callable[[], Awaitable[None] | None] | None = None
    contains: Callable[[str, str], bool] = lambda said, fact: fact.lower() in said.lower()
    limits: Limits | None = None  # instead of the assistant's own, for every run of the episode


EpisodeFactory = Callable[[EvalTask], Episode]
UserFactory = Callable[[EvalTask], User]


@dataclass
class TrialResult:
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


async def run_episode(task: EvalTask, episode: Episode, user: User, *, trial: int = 0) -> TrialResult:
    """Play one conversation and grade it."""
    started = time.perf_counter()
    usage = Usage()
    history: list[Message] = []
    transcript: list[tuple[str, str]] = []
    error: str | None = None
    user_message = await user.reply(None)
    turns = 0
    try:
        while user_message.strip() != STOP and turns < task.max_turns:
            turns += 1
            transcript.append(("user", user_message))
            result = await episode.assistant.run(
                user_message, history=history, deps=episode.deps, approver=episode.approver, limits=episode.limits
            )
            usage.add(result.total_usage)
            history = result.messages
            if not result.completed:
                error = result.describe()
                transcript.append(("assistant", f"[run did not complete: {error}]"))
                break
            answer = str(result.output)
            transcript.append(("assistant", answer))
            user_message = await user.reply(answer)
        final_state = episode.final_state()
    finally:
        if episode.close is not None:
            closing = episode.close()
            if closing is not None:
                await closing
    said = "\n".join(text for role, text in transcript if role == "assistant")
    missing = [fact for fact in task.required_facts if not episode.contains(said, fact)]
    state_matches = task.expected_state is None or final_state == task.expected_state
    return TrialResult(
        task_id=task.id,
        trial=trial,
        passed=state_matches and not missing and error is None,
        state_matches=state_matches,
        missing_facts=missing,
        user_turns=turns,
        cost_usd=usage.cost_usd,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        seconds=time.perf_counter() - started,
        error=error,
        transcript=transcript,
    )


@dataclass
class EvalReport:
    label: str
    trials: int
    results: list[TrialResult]

    def by_task(self) -> dict[str, list[TrialResult]]:
        grouped: dict[str, list[TrialResult]] = {}
        for result in self.results:
            grouped.setdefault(result.task_id, []).append(result)
        return grouped

    def pass_hat(self, k: int) -> float:
        """pass^k: the chance that k trials of a task, drawn from those run, all succeed; mean over tasks."""
        scores = []
        for results in self.by_task().values():
            n, successes = len(results), sum(r.passed for r in results)
            if k > n:
                raise ValueError(f"pass^{k} needs at least {k} trials per task; ran {n}")
            scores.append(math.comb(successes, k) / math.comb(n, k))
        return sum(scores) / len(scores) if scores else 0.0

    def mean_cost(self) -> float | None:
        costs = [r.cost_usd for r in self.results]
        if any(cost is None for cost in costs):
            return None
        return sum(c for c in costs if c is not None) / max(len(costs), 1)

    def summary_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"label": self.label, "tasks": len(self.by_task()), "trials": self.trials}
        for k in range(1, self.trials + 1):
            row[f"pass^{k}"] = round(self.pass_hat(k), 3)
        cost = self.mean_cost()
        row["$/trial"] = "unknown" if cost is None else round(cost, 5)
        row["turns/trial"] = round(sum(r.user_turns for r in self.results) / max(len(self.results), 1), 2)
        row["tokens/trial"] = round(
            sum(r.input_tokens + r.output_tokens for r in self.results) / max(len(self.results), 1)
        )
        return row

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"label": self.label, "trials": self.trials, "summary": self.summary_row()}
        payload["results"] = [asdict(result) for result in self.results]
        path.write_text(json.dumps(payload, indent=2))

    @staticmethod
    def load(path: Path) -> EvalReport:
        payload = json.loads(path.read_text())
        results = [TrialResult(**{**r, "transcript": [tuple(t) for t in r["transcript"]]}) for r in payload["results"]]
        return EvalReport(payload["label"], payload["trials"], results)


async def run_eval(
    tasks: Sequence[EvalTask],
    episodes: EpisodeFactory,
    users: UserFactory,
    *,
    trials: int = 1,
    label: str = "eval",
    concurrency: int = 4,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> EvalReport:
    """Run `trials` episodes of every task, at most `concurrency` at once."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(task: EvalTask, trial: int) -> TrialResult:
        async with semaphore:
            result = await run_episode(task, episodes(task), users(task), trial=trial)
        if on_trial is not None:
            on_trial(result)
        return result

    results = await asyncio.gather(*(one(task, trial) for task in tasks for trial in range(trials)))
    return EvalReport(label, trials, list(results))


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
