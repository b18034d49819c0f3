"""Saved eval reports as the UI shows them: pass^k per task, beside the previous report and the other architectures.

`retinue eval` saves one report per architecture in `<home>/evals/` (see
`retinue.evals.report_files`). The page lists them and, for one report,
charts pass^k per task for each architecture the app was evaluated with: the
newest report of each (up to the chosen one) beside the report it followed, so
a change shows as a delta. Only the fields the page draws are sent, as plain
values, never the report's raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..evals import EvalReport
from .saved_files import SavedFile, SavedFiles

CREATED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # as the harness writes it
MAX_FAILURES_SHOWN = 200
VERDICT_CHARS = 4000


@dataclass(frozen=True, slots=True)
class LoadedReport:
    report: EvalReport
    summary: dict[str, Any]
    """What the list and the charts show, computed once when the file is read (so a bad file fails then)."""


def load_eval_report(path: Path) -> LoadedReport:
    """A saved report and its summary; ValueError (or another error) for a file that is not a readable report."""
    report = EvalReport.load(path)
    return LoadedReport(report, _summary(report))


def eval_reports(files: SavedFiles[LoadedReport]) -> list[dict[str, Any]]:
    """Every report of the directory, newest first, unreadable ones with the reason instead of a summary."""
    listed = []
    for file in sorted(files.files(), key=_made_at, reverse=True):
        entry: dict[str, Any] = {"id": file.id, "modified_at": file.modified_at, "unreadable": file.problem}
        if file.value is not None:
            entry.update({key: value for key, value in file.value.summary.items() if key != "tasks"})
            entry["tasks"] = len(file.value.summary["tasks"])
        listed.append(entry)
    return listed


def eval_report(files: SavedFiles[LoadedReport], report_id: str) -> dict[str, Any] | None:
    """One report with its failed trials' verdicts and its app's architectures; None if there is no such file."""
    every = files.files()
    chosen = next((file for file in every if file.id == report_id), None)
    if chosen is None:
        return None
    if chosen.value is None:
        return {"id": chosen.id, "unreadable": chosen.problem}
    readable = [file for file in every if file.value is not None]
    report = chosen.value.report
    return {
        "id": chosen.id,
        "unreadable": None,
        "report": {**_listed(chosen), "failures": _failures(report)},
        "previous": _listed_or_none(_previous(readable, chosen)),
        "architectures": [
            {
                "architecture": _value(newest).report.architecture,
                "current": _listed(newest),
                "previous": _listed_or_none(_previous(readable, newest)),
            }
            for newest in _newest_per_architecture(readable, chosen)
        ],
    }


# -- what is compared with what ------------------------------------------------------------------------


def _previous(readable: list[SavedFile[LoadedReport]], file: SavedFile[LoadedReport]) -> SavedFile[LoadedReport] | None:
    # The rule `retinue eval` compares by (`retinue.evals.previous_report`): the same app, architecture and
    # model, on the same tasks, made before it. Here over the files already read, and with their ids.
    report = _value(file).report
    earlier = [
        other
        for other in readable
        if other is not file
        and _evaluated(_value(other).report) == _evaluated(report)
        and sorted(_value(other).report.task_ids) == sorted(report.task_ids)
        and _when(other) < _when(file)
    ]
    return max(earlier, key=_when, default=None)


def _newest_per_architecture(
    readable: list[SavedFile[LoadedReport]], chosen: SavedFile[LoadedReport]
) -> list[SavedFile[LoadedReport]]:
    """For each architecture the chosen report's app and model were evaluated with, its newest report up to then."""
    report = _value(chosen).report
    newest: dict[str, SavedFile[LoadedReport]] = {report.architecture: chosen}
    for file in readable:
        other = _value(file).report
        if (other.app, other.model) != (report.app, report.model) or other.architecture == report.architecture:
            continue
        if _when(file) <= _when(chosen) and (
            other.architecture not in newest or _when(file) > _when(newest[other.architecture])
        ):
            newest[other.architecture] = file
    return [newest[name] for name in sorted(newest)]


def _evaluated(report: EvalReport) -> tuple[str, str, str]:
    return report.app, report.architecture, report.model


def _when(file: SavedFile[LoadedReport]) -> tuple[str, float]:
    # Reports name their time in UTC; two made in one second (or old ones without a time) go by the file's.
    return _value(file).report.created_at, file.modified_at


def _made_at(file: SavedFile[LoadedReport]) -> float:
    """When the report was made, as its `created_at` says, else when its file was written."""
    created_at = file.value.report.created_at if file.value is not None else ""
    try:
        return datetime.strptime(created_at, CREATED_AT_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return file.modified_at


def _value(file: SavedFile[LoadedReport]) -> LoadedReport:
    assert file.value is not None, "only readable files are compared"
    return file.value


# -- the values sent ------------------------------------------------------------------------------------


def _listed(file: SavedFile[LoadedReport]) -> dict[str, Any]:
    return {"id": file.id, "modified_at": file.modified_at, **_value(file).summary}


def _listed_or_none(file: SavedFile[LoadedReport] | None) -> dict[str, Any] | None:
    return None if file is None else _listed(file)


def _summary(report: EvalReport) -> dict[str, Any]:
    for name in ("label", "app", "architecture", "model", "user_model", "created_at"):
        _require(isinstance(getattr(report, name), str), f"its {name} is not text")
    _require(isinstance(report.trials, int), "its trials is not a number")
    _require(all(isinstance(task, str) for task in report.task_ids), "a task id is not text")
    by_task = report.by_task()
    for task_id, results in by_task.items():
        _require(isinstance(task_id, str), f"the task id {task_id!r} is not text")
        _require(all(isinstance(result.passed, bool) for result in results), f"a trial of {task_id} has no pass/fail")
    most_trials = min((len(results) for results in by_task.values()), default=0)
    ks = list(range(1, most_trials + 1))
    per_k = {k: report.pass_hat_by_task(k) for k in ks}
    order = [
        *[task for task in report.task_ids if task in by_task],
        *[task for task in by_task if task not in report.task_ids],
    ]
    tasks = [
        {
            "id": task_id,
            "trials": len(by_task[task_id]),
            "passed": sum(result.passed for result in by_task[task_id]),
            "pass_hat": {str(k): per_k[k][task_id] for k in ks},
        }
        for task_id in order
    ]
    return {
        "label": report.label,
        "app": report.app,
        "architecture": report.architecture,
        "model": report.model,
        "user_model": report.user_model,
        "created_at": report.created_at,
        "trials": report.trials,
        "ks": ks,
        "pass_hat": {str(k): report.pass_hat(k) for k in ks},
        "tasks": tasks,
        "split": _split(report),
    }


def _split(report: EvalReport) -> dict[str, Any] | None:
    split = report.split
    if not isinstance(split, dict):
        return None
    seed, held_out = split.get("seed"), split.get("held_out")
    if not isinstance(seed, int) or not isinstance(held_out, list):
        return None
    return {"seed": seed, "held_out": [str(task) for task in held_out]}


def _failures(report: EvalReport) -> list[dict[str, Any]]:
    failed = [result for result in report.results if not result.passed]
    return [
        {
            "task_id": result.task_id,
            "trial": result.trial if isinstance(result.trial, int) else None,
            "ending": str(result.ending),
            "verdict": _cut(result.verdict or result.error or "failed", VERDICT_CHARS),
        }
        for result in failed[:MAX_FAILURES_SHOWN]
    ]


def _cut(text: object, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise ValueError(f"not a readable eval report: {problem}")
