"""Saved eval reports for the UI tests, written by the harness's own `save_report` into an evals directory."""

from __future__ import annotations

from pathlib import Path

from retinue.evals import EvalReport, TrialResult, save_report


def trial(task_id: str, number: int, passed: bool) -> TrialResult:
    verdict = "passed" if passed else f"{task_id}: the booking row differs: seats 1, expected 2"
    return TrialResult(
        task_id=task_id,
        trial=number,
        passed=passed,
        state_matches=passed,
        missing_facts=[] if passed else ["2 seats"],
        user_turns=2,
        cost_usd=0.001,
        input_tokens=300,
        output_tokens=40,
        seconds=1.5,
        verdict=verdict,
    )


def save_eval(
    directory: Path, architecture: str, created_at: str, outcomes: dict[str, list[bool]], *, model: str = "local"
) -> str:
    """Save a travel report of `architecture` whose trials passed as `outcomes` says; its id (file name stem)."""
    results = [trial(task, number, passed) for task, trials in outcomes.items() for number, passed in enumerate(trials)]
    report = EvalReport(
        label=f"travel/{architecture}/{model}",
        trials=max(len(trials) for trials in outcomes.values()),
        results=results,
        app="travel",
        architecture=architecture,
        model=model,
        user_model="scripted",
        created_at=created_at,
    )
    return save_report(report, directory).stem


def save_travel_history(directory: Path) -> dict[str, str]:
    """Two lead reports (the second better on `paris`) and one clones report, by name: their ids."""
    return {
        "lead_before": save_eval(
            directory, "lead", "2026-05-01T10:00:00Z", {"paris": [True, False], "lisbon": [True, True]}
        ),
        "clones": save_eval(
            directory, "clones", "2026-05-01T10:30:00Z", {"paris": [False, False], "lisbon": [True, False]}
        ),
        "lead_after": save_eval(
            directory, "lead", "2026-05-01T11:00:00Z", {"paris": [True, True], "lisbon": [True, False]}
        ),
    }
