"""GEPA, plugged into retinue: the adapter that evaluates candidates, and the selector of texts to rewrite.

A GEPA candidate is {path: text} over the texts of an agent tree (see `retinue.improve.texts`). Evaluating it
runs the app's eval episodes with those texts; a task scores 1.0 when its trial passes, else 0.0, and the trial
itself is the trajectory the reflection model learns from (`retinue.improve.reflection`).

GEPA runs in a thread of its own (it is synchronous); every episode and reflection runs on the optimisation's
event loop, handed over by `submit`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gepa.core.adapter import EvaluationBatch, ProposalFn

from ..evals import EvalTask, TrialResult
from .reflection import Submit, owner_path, records_for
from .rollouts import Rollouts
from .texts import TextSite

SEARCH_LABEL = "improve/search"


class RetinueAdapter:
    """GEPA's adapter for an app's eval tasks (GEPA's `DataInst` is `EvalTask`; trajectories are trials)."""

    # None: GEPA's own reflective proposal, with our templates and reflection model.
    propose_new_texts: ProposalFn | None = None

    def __init__(
        self,
        rollouts: Rollouts,
        submit: Submit[Any],
        sites: Mapping[str, TextSite],
        tasks: Sequence[EvalTask],
        *,
        reserve: int = 0,
    ) -> None:
        self.rollouts = rollouts
        self.submit = submit
        self.sites = dict(sites)
        self.tasks = {task.id: task for task in tasks}
        self.reserve = reserve  # episodes of the budget the search must leave for the held-out gate

    def evaluate(
        self, batch: list[EvalTask], candidate: dict[str, str], capture_traces: bool = False
    ) -> EvaluationBatch[TrialResult, TrialResult]:
        report = self.submit(self.rollouts.run(batch, candidate, reserve=self.reserve, label=SEARCH_LABEL))
        by_task = {result.task_id: result for result in report.results}
        results = [by_task[task.id] for task in batch]
        scores = [1.0 if result.passed else 0.0 for result in results]
        return EvaluationBatch(outputs=results, scores=scores, trajectories=results if capture_traces else None)

    def make_reflective_dataset(
        self,
        candidate: dict[str, str],
        eval_batch: EvaluationBatch[TrialResult, TrialResult],
        components_to_update: list[str],
    ) -> dict[str, list[dict[str, str]]]:
        return records_for(self.sites, components_to_update, eval_batch.trajectories or [], self.tasks)


class BlameSelector:
    """Chooses the one text to rewrite next: the one the minibatch's failures point at, not yet tried.

    The most specific text first: a failing tool call blames that tool's description (twice as much) and the
    instructions of the agent that made it; a failed trial without a failing call blames the root agent's
    instructions. Ties, and texts nothing blames, go in tree order. A text already rewritten from this candidate
    waits until every other text has had its turn.
    """

    def __init__(self, sites: Mapping[str, TextSite], root_path: str) -> None:
        self.sites = dict(sites)
        self.root_instructions = f"{root_path}.instructions"
        self.agent_paths = sorted({site.agent_path for site in sites.values()})
        self.tried: dict[int, set[str]] = {}

    def __call__(
        self,
        state: Any,
        trajectories: list[Any],  # the parent's trials on the minibatch
        subsample_scores: list[float],
        candidate_idx: int,
        candidate: dict[str, str],
    ) -> list[str]:
        order = list(candidate)
        blame = dict.fromkeys(order, 0)
        for result in trajectories:
            if result.passed:
                continue
            failing = [call for call in result.tool_calls if not call.ok]
            if not failing and self.root_instructions in blame:
                blame[self.root_instructions] += 1
            for call in failing:
                owner = owner_path(call.agent, self.agent_paths)
                for path, weight in ((f"{owner}.tool.{call.name}", 2), (f"{owner}.instructions", 1)):
                    if owner is not None and path in blame:
                        blame[path] += weight
        tried = self.tried.setdefault(candidate_idx, set())
        if tried >= set(order):
            tried.clear()
        ranked = sorted(
            (path for path in order if path not in tried), key=lambda path: (-blame[path], order.index(path))
        )
        chosen = ranked[0]
        tried.add(chosen)
        return [chosen]
