"""Improvement runs as the UI shows them: scores per iteration on train and held-out, and the accepted diffs.

`retinue improve` saves a record of each run in `<home>/improve/` (see
`retinue.improve.run_record`), with the patch files it writes beside them. A
record is checked field by field as it is read: what the page gets is plain
values of known types, and a record of another shape is listed as unreadable.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..improve.run_record import load_run_record
from .saved_files import SavedFiles

PATCH_SUFFIX = ".patch.json"
"""Patches `retinue improve` writes beside its records: not records themselves."""
WORD_DIFF_CHARS = 20_000
"""Texts longer than this are shown old and new, without a word diff (which would cost too much to compute)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImprovementRun:
    summary: dict[str, Any]
    """What the list shows."""
    detail: dict[str, Any]
    """What the run's page draws besides the summary: candidates, iterations, the split, the accepted changes."""


def improvement_files(directory: Path) -> SavedFiles[ImprovementRun]:
    return SavedFiles(directory, load_improvement_run, exclude=(PATCH_SUFFIX,))


def load_improvement_run(path: Path) -> ImprovementRun:
    """A saved record, checked and reduced to what the page shows; ValueError for a file that is not one."""
    record = load_run_record(path)
    candidates = _list(record, "candidates", _candidate)
    _check(bool(candidates), "it has no seed candidate")
    by_index = {candidate["index"]: candidate for candidate in candidates}
    accepted = _accepted(record.get("accepted"), by_index)
    seed = candidates[0]
    summary = {
        **{name: _text(record, name) for name in ("app", "architecture", "model", "reflection_model", "started_at")},
        **{name: _number(record, name) for name in ("seconds", "cost_usd", "max_cost_usd")},
        **{name: _count(record, name) for name in ("k", "budget", "rollouts", "model_calls", "reflections")},
        "stop_reason": _text(record, "stop_reason"),
        "seed": {"train": seed["train"], "held_out": seed["held_out"]},
        "accepted": None
        if accepted is None
        else {
            "candidate": accepted["candidate"],
            "train": by_index[accepted["candidate"]]["train"],
            "held_out": by_index[accepted["candidate"]]["held_out"],
            "changes": len(accepted["changes"]),
        },
    }
    detail = {
        "split": _split(record.get("split")),
        "candidates": candidates,
        "iterations": _list(record, "iterations", _iteration),
        "changes": [] if accepted is None else accepted["changes"],
    }
    return ImprovementRun(summary, detail)


def improvement_runs(files: SavedFiles[ImprovementRun]) -> list[dict[str, Any]]:
    """Every record of the directory, newest first; unreadable ones with the reason."""
    listed = []
    for file in sorted(files.files(), key=lambda file: file.modified_at, reverse=True):
        entry: dict[str, Any] = {"id": file.id, "modified_at": file.modified_at, "unreadable": file.problem}
        if file.value is not None:
            entry.update(file.value.summary)
        listed.append(entry)
    return listed


def improvement_run(files: SavedFiles[ImprovementRun], run_id: str) -> dict[str, Any] | None:
    """One record for its page; None if there is no such file."""
    file = files.get(run_id)
    if file is None:
        return None
    if file.value is None:
        return {"id": file.id, "unreadable": file.problem}
    return {
        "id": file.id,
        "modified_at": file.modified_at,
        "unreadable": None,
        **file.value.summary,
        **file.value.detail,
    }


# -- the parts of a record ------------------------------------------------------------------------------


def _candidate(entry: Any) -> dict[str, Any]:
    _check(isinstance(entry, dict), "a candidate is not an object")
    return {
        "index": _count(entry, "index", required=True),
        "iteration": _count(entry, "iteration", required=True),
        "parents": [_whole(parent, "a parent") for parent in _items(entry, "parents")],
        "train": _score(entry, "train"),
        "held_out": _score(entry, "held_out"),
        "held_out_pass1": _score(entry, "held_out_pass1"),
        "gate": _text(entry, "gate"),
    }


def _iteration(entry: Any) -> dict[str, Any]:
    _check(isinstance(entry, dict), "an iteration is not an object")
    return {
        "iteration": _count(entry, "iteration", required=True),
        "parent": _count(entry, "parent"),
        "paths": [_plain(path, "a text path") for path in _items(entry, "paths")],
        "minibatch_before": _score(entry, "minibatch_before"),
        "minibatch_after": _score(entry, "minibatch_after"),
        "outcome": _text(entry, "outcome"),
        "candidate": _count(entry, "candidate"),
        "train": _score(entry, "train"),
        "held_out": _score(entry, "held_out"),
    }


def _accepted(entry: Any, by_index: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    if entry is None:
        return None
    _check(isinstance(entry, dict), "its accepted candidate is not an object")
    candidate = _count(entry, "candidate", required=True)
    _check(candidate in by_index, f"the accepted candidate {candidate} is not among its candidates")
    return {"candidate": candidate, "changes": _list(entry, "changes", _change)}


def _change(entry: Any) -> dict[str, Any]:
    _check(isinstance(entry, dict), "a change is not an object")
    old, new = _text(entry, "old"), _text(entry, "new")
    return {"path": _text(entry, "path"), "old": old, "new": new, "diff": word_diff(old, new)}


def _split(entry: Any) -> dict[str, Any] | None:
    if not isinstance(entry, dict):
        return None
    return {
        "seed": _count(entry, "seed"),
        "held_out_fraction": _number(entry, "held_out_fraction"),
        "train": [_plain(task, "a task id") for task in _items(entry, "train")],
        "held_out": [_plain(task, "a task id") for task in _items(entry, "held_out")],
    }


def word_diff(old: str, new: str) -> list[list[str]] | None:
    """`old` to `new` as [op, text] pieces: "=" kept, "-" removed, "+" added; None for texts too long to diff."""
    if len(old) > WORD_DIFF_CHARS or len(new) > WORD_DIFF_CHARS:
        return None
    before, after = _words(old), _words(new)
    pieces: list[list[str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(["=", "".join(before[i1:i2])])
            continue
        if i2 > i1:
            pieces.append(["-", "".join(before[i1:i2])])
        if j2 > j1:
            pieces.append(["+", "".join(after[j1:j2])])
    return pieces


def _words(text: str) -> list[str]:
    # Words, runs of punctuation and runs of space apart, so "weather." to "weather forecast." adds two words.
    return re.findall(r"\s+|\w+|[^\w\s]+", text)


# -- checking values --------------------------------------------------------------------------------


def _check(condition: bool, problem: str) -> None:
    if not condition:
        raise ValueError(f"not a readable improvement run record: {problem}")


def _text(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name, "")
    _check(isinstance(value, str), f"its {name} is not text")
    return str(value)


def _plain(value: Any, what: str) -> str:
    _check(isinstance(value, str), f"{what} is not text")
    return str(value)


def _whole(value: Any, what: str) -> int:
    _check(isinstance(value, int) and not isinstance(value, bool), f"{what} is not a whole number")
    return int(value)


def _count(entry: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = entry.get(name)
    if value is None and not required:
        return None
    return _whole(value, f"its {name}")


def _number(entry: dict[str, Any], name: str) -> float | None:
    value = entry.get(name)
    if value is None:
        return None
    _check(isinstance(value, int | float) and not isinstance(value, bool), f"its {name} is not a number")
    return float(value)


def _score(entry: dict[str, Any], name: str) -> float | None:
    value = _number(entry, name)
    _check(value is None or 0.0 <= value <= 1.0, f"its {name} ({value}) is not a score from 0 to 1")
    return value


def _items(entry: dict[str, Any], name: str) -> list[Any]:
    value = entry.get(name) or []
    _check(isinstance(value, list), f"its {name} is not a list")
    return list(value)


def _list(entry: dict[str, Any], name: str, read: Callable[[Any], T]) -> list[T]:
    return [read(item) for item in _items(entry, name)]
