"""A deterministic train/held-out split of eval tasks, so an improvement can be checked on tasks it never saw.

The same tasks, fraction and seed give the same split on every machine and in
every Python process: each task's place comes from a SHA-256 of the seed and its
id, not from `random` or `hash()`. The split is stratified by difficulty, so
the held-out side is not, by chance, all easy tasks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from .results import SplitIds
from .tasks import Difficulty, EvalTask


@dataclass(frozen=True)
class TaskSplit:
    """The tasks to learn from (`train`) and those to check on (`held_out`), each in the order given."""

    train: tuple[EvalTask, ...]
    held_out: tuple[EvalTask, ...]
    seed: int
    held_out_fraction: float

    def ids(self) -> SplitIds:
        """The split as it is recorded in a report: the seed, the fraction and the ids of each side."""
        return {
            "seed": self.seed,
            "held_out_fraction": self.held_out_fraction,
            "train": [task.id for task in self.train],
            "held_out": [task.id for task in self.held_out],
        }


def split_tasks(tasks: Sequence[EvalTask], held_out: float = 0.3, seed: int = 0) -> TaskSplit:
    """Split `tasks` into train and held-out sides, `held_out` of them (rounded) held out, at least one each.

    Within each difficulty, tasks are ordered by a hash of `seed` and their id, and the first ones are held
    out; how many per difficulty is its share of the total, rounded so the total comes out right.
    """
    if isinstance(held_out, bool) or not isinstance(held_out, int | float) or not 0 < held_out < 1:
        raise ValueError(f"held_out is the fraction of tasks to hold out, between 0 and 1 (e.g. 0.3), not {held_out!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be a whole number, not {seed!r}")
    ids = [task.id for task in tasks]
    repeated = sorted({task_id for task_id in ids if ids.count(task_id) > 1})
    if repeated:
        raise ValueError(f"task ids must be unique to split them; repeated: {', '.join(repeated)}")
    if len(tasks) < 2:
        raise ValueError(f"a split needs at least 2 tasks, one on each side; got {len(tasks)}")
    total = min(max(round(len(tasks) * held_out), 1), len(tasks) - 1)
    groups = {level: [task for task in tasks if task.difficulty == level] for level in get_args(Difficulty)}
    quotas = _shares(total, {level: len(group) for level, group in groups.items()})
    chosen: set[str] = set()
    for level, group in groups.items():
        ordered = sorted(group, key=lambda task: _place(seed, task.id))
        chosen.update(task.id for task in ordered[: quotas[level]])
    return TaskSplit(
        train=tuple(task for task in tasks if task.id not in chosen),
        held_out=tuple(task for task in tasks if task.id in chosen),
        seed=seed,
        held_out_fraction=float(held_out),
    )


def _place(seed: int, task_id: str) -> str:
    return hashlib.sha256(f"{seed}/{task_id}".encode()).hexdigest()


def _shares(total: int, sizes: dict[Difficulty, int]) -> dict[Difficulty, int]:
    """`total` divided among the groups in proportion to their sizes, largest remainders rounded up."""
    count = sum(sizes.values())
    exact = {level: total * size / count for level, size in sizes.items()}
    shares = {level: int(value) for level, value in exact.items()}
    by_remainder = sorted(sizes, key=lambda level: exact[level] - shares[level], reverse=True)
    for level in by_remainder[: total - sum(shares.values())]:
        shares[level] += 1
    return shares
