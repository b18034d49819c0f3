"""The search as it goes, recorded from GEPA's callbacks: the candidates it keeps and its iterations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..evals import EvalTask


@dataclass
class CandidateRecord:
    """A candidate GEPA kept, with its train scores, and (after the gate) its held-out scores."""

    index: int
    iteration: int
    parents: list[int]
    texts: dict[str, str]
    train: float
    train_by_task: dict[str, float]
    held_out: float | None = None  # pass^k
    held_out_pass1: float | None = None
    held_out_by_task: dict[str, float] = field(default_factory=dict)
    gate: str = ""  # "seed", "accepted", "rejected: ...", "not checked: ..."


@dataclass
class IterationRecord:
    """One GEPA iteration: which texts it rewrote, how the minibatch scored before and after, what came of it."""

    iteration: int
    parent: int | None = None
    paths: list[str] = field(default_factory=list)
    minibatch_before: float | None = None
    minibatch_after: float | None = None
    outcome: str = "no proposal"  # "new candidate", "rejected on the minibatch", "no proposal"
    candidate: int | None = None


class SearchLog:
    """GEPA callbacks that record the search as it goes: candidates with their train scores, iterations."""

    def __init__(self, train: Sequence[EvalTask]) -> None:
        self.train_ids = [task.id for task in train]
        self.candidates: list[CandidateRecord] = []
        self.iterations: list[IterationRecord] = []

    def best_train(self) -> float:
        return max((candidate.train for candidate in self.candidates), default=0.0)

    def _iteration(self, number: int) -> IterationRecord:
        if not self.iterations or self.iterations[-1].iteration != number:
            self.iterations.append(IterationRecord(number))
        return self.iterations[-1]

    def on_candidate_selected(self, event: Mapping[str, Any]) -> None:
        self._iteration(event["iteration"]).parent = event["candidate_idx"]

    def on_evaluation_end(self, event: Mapping[str, Any]) -> None:
        if event["iteration"] == 0 or not event["has_trajectories"]:
            return
        record = self._iteration(event["iteration"])
        score = sum(event["scores"]) / max(len(event["scores"]), 1)
        if event["candidate_idx"] is None:  # the new candidate, on the parent's minibatch
            record.minibatch_after = score
        else:
            record.minibatch_before = score

    def on_proposal_end(self, event: Mapping[str, Any]) -> None:
        self._iteration(event["iteration"]).paths = sorted(event["new_instructions"])

    def on_candidate_rejected(self, event: Mapping[str, Any]) -> None:
        self._iteration(event["iteration"]).outcome = "rejected on the minibatch"

    def on_candidate_accepted(self, event: Mapping[str, Any]) -> None:
        record = self._iteration(event["iteration"])
        record.outcome, record.candidate = "new candidate", event["new_candidate_idx"]

    def on_valset_evaluated(self, event: Mapping[str, Any]) -> None:
        # GEPA's validation set is the train set: the held-out tasks are the gate's alone.
        by_task = {self.train_ids[int(key)]: float(score) for key, score in event["scores_by_val_id"].items()}
        self.candidates.append(
            CandidateRecord(
                index=event["candidate_idx"],
                iteration=event["iteration"],
                parents=[parent for parent in event["parent_ids"] if parent is not None],
                texts=dict(event["candidate"]),
                train=float(event["average_score"]),
                train_by_task=by_task,
            )
        )
