"""The record of an improvement run, saved as JSON in `<home>/improve/` for the web UI to chart.

One file per run, `<app>-<architecture>-<time>-<run id>.json`:

    {"format": "retinue.improvement_run", "version": 1,
     "id": "3f2a9c1b7d4e", "app": "travel", "architecture": "lead", "model": "local",
     "reflection_model": "local", "started_at": "2026-05-01T12:00:00Z", "seconds": 812.4,
     "split": {"seed": 0, "held_out_fraction": 0.3, "train": [...], "held_out": [...]},
     "k": 2, "budget": 60, "max_cost_usd": null,
     "rollouts": 58, "model_calls": 412, "reflections": 6, "cost_usd": 0.0,
     "stop_reason": "the budget of 60 episodes is used up (58 run)",
     "candidates": [{"index": 0, "iteration": 0, "parents": [], "train": 0.25,
                     "train_by_task": {"t1": 0.0, ...}, "held_out": 0.0, "held_out_pass1": 0.5,
                     "held_out_by_task": {"t7": 0.0, ...}, "gate": "seed"}, ...],
     "iterations": [{"iteration": 1, "parent": 0, "paths": ["travel-lead.instructions"],
                     "minibatch_before": 0.33, "minibatch_after": 0.67, "outcome": "new candidate",
                     "candidate": 1, "train": 0.5, "held_out": 0.5}, ...],
     "accepted": {"candidate": 1, "changes": [{"path": "...", "old": "...", "new": "..."}]} | null}

`held_out` is pass^k on the held-out tasks (null for a candidate the gate did not measure). Each iteration
carries the train and held-out scores of the candidate it produced, when it produced one, so a chart can plot
both against the iteration. Every string is redacted, as eval reports are.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .optimisation import ImprovementResult

RECORD_FORMAT = "retinue.improvement_run"
RECORD_VERSION = 1


def run_record(result: ImprovementResult) -> dict[str, Any]:
    """The run as JSON values, in the shape the module doc shows."""
    candidates = [result.seed, *result.candidates]
    by_index = {candidate.index: candidate for candidate in candidates}
    iterations = []
    for iteration in result.iterations:
        entry = dataclasses.asdict(iteration)
        produced = by_index.get(iteration.candidate) if iteration.candidate is not None else None
        entry["train"] = produced.train if produced is not None else None
        entry["held_out"] = produced.held_out if produced is not None else None
        iterations.append(entry)
    accepted = None
    if result.accepted is not None and result.patch is not None:
        accepted = {
            "candidate": result.accepted.index,
            "changes": [dataclasses.asdict(change) for change in result.patch.changes],
        }
    return {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "id": result.run_id,
        "app": result.app,
        "architecture": result.architecture,
        "model": result.model,
        "reflection_model": result.reflection_model,
        "started_at": result.started_at,
        "seconds": round(result.seconds, 2),
        "split": result.split.ids(),
        "k": result.k,
        "budget": result.budget,
        "max_cost_usd": result.max_cost_usd,
        "rollouts": result.rollouts,
        "model_calls": result.model_calls,
        "reflections": result.reflections,
        "cost_usd": result.cost_usd,
        "stop_reason": result.stop_reason,
        "candidates": [{k: v for k, v in dataclasses.asdict(c).items() if k != "texts"} for c in candidates],
        "iterations": iterations,
        "accepted": accepted,
    }


def save_run_record(result: ImprovementResult, directory: Path) -> Path:
    """Save the record of `result` in `directory`; the file's path."""
    from ..redact import redact_data

    stamp = result.started_at.replace("-", "").replace(":", "").replace("T", "-").rstrip("Z")
    path = directory / f"{_slug(result.app)}-{_slug(result.architecture)}-{stamp}-{result.run_id}.json"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(redact_data(run_record(result)), indent=1, ensure_ascii=False) + "\n")
    return path


def load_run_record(path: Path) -> dict[str, Any]:
    """A saved record; ValueError when the file is not one."""
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not an improvement run record: not JSON ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != RECORD_FORMAT:
        raise ValueError(f"{path} is not an improvement run record")
    return payload


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in text) or "_"
