"""Where eval reports are kept: `<home>/evals/`, one JSON file per report, beside the trace store.

`<home>` is the trace store's directory ($RETINUE_HOME, else ~/.retinue), so the
UI that reads a store finds its reports. A file is named after what it
evaluated and when: `travel-lead-local-20260501-120000.json`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from .results import EvalReport


def reports_dir(store: Path | str | None = None) -> Path:
    """The directory of eval reports for the trace store at `store` (default: the default store)."""
    from ..store import default_store_path

    return Path(store if store is not None else default_store_path()).expanduser().parent / "evals"


def save_report(report: EvalReport, directory: Path) -> Path:
    """Save `report` in `directory` under a name no other report has; the path it was saved at."""
    stamp = _stamp(report.created_at)
    stem = f"{_slug(report.app or 'eval')}-{_slug(report.architecture or 'agent')}-{_slug(report.model)}-{stamp}"
    path = directory / f"{stem}.json"
    copy = 2
    while path.exists():  # two evals in one second; "_2" sorts after ".json", so names sort by time
        path = directory / f"{stem}_{copy}.json"
        copy += 1
    report.save(path)
    return path


def previous_report(directory: Path, report: EvalReport) -> EvalReport | None:
    """The latest report in `directory` that `report` can be compared with, if any.

    Comparable: the same app, architecture and model, run on the same tasks, and made no later (so call it
    before saving `report`). Files that cannot be read as reports are skipped.
    """
    candidates: list[tuple[str, float, EvalReport]] = []
    prefix = f"{_slug(report.app or 'eval')}-{_slug(report.architecture or 'agent')}-{_slug(report.model)}-"
    for path in directory.glob(f"{prefix}*.json"):
        try:
            earlier = EvalReport.load(path)
        except (OSError, ValueError, json.JSONDecodeError):
            continue
        same_run = (earlier.app, earlier.architecture, earlier.model) in {
            (report.app, report.architecture, report.model),
            ("", "", ""),  # saved before reports named what they evaluated: the file name did
        }
        same_tasks = sorted(earlier.task_ids) == sorted(report.task_ids)
        if same_run and same_tasks and (not report.created_at or earlier.created_at <= report.created_at):
            # Reports saved before version 2 have no time of their own: their file's tells.
            candidates.append((earlier.created_at, path.stat().st_mtime, earlier))
    if not candidates:
        return None
    return max(candidates, key=lambda candidate: candidate[:2])[2]


def _stamp(created_at: str) -> str:
    try:
        moment = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        moment = datetime.now(UTC)
    return moment.strftime("%Y%m%d-%H%M%S")


def _slug(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-." else "_" for char in (text or "default"))
