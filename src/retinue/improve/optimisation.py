"""`improve`: optimise the texts of an app's agent tree with GEPA, and keep only what held-out tasks confirm.

1. The app's eval tasks are split into train and held-out sides (`retinue.evals.split_tasks`, fixed seed).
2. The seed (today's texts) is measured on the held-out tasks as pass^k: k trials of each.
3. GEPA searches on the train tasks alone: it runs minibatches, hands the failures (verdicts, failing tool
   calls) to the reflection model, which rewrites one text at a time, and keeps what scores better.
4. The gate: each candidate GEPA kept that beats the seed on train is measured on the held-out tasks; it is
   accepted only if its pass^k there is higher than the seed's. The best accepted one becomes the patch.

The search never sees the held-out tasks, so a candidate that only fits the train tasks is rejected.

`budget` is the most episodes the whole optimisation runs (train and held-out together): the search keeps
back what the gate needs for one candidate. `max_cost` (dollars) stops it the same way, counted from every
model call's priced usage; see `retinue.improve.spending` for how close to the limit it stops.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from ..errors import ConfigurationError, MissingDependencyError
from ..evals import EvalReport, EvalTask, TaskSplit, TrialResult, split_tasks
from ..events import EventSink, fan_out
from ..models.base import Model
from .patch import Patch
from .reflection import ReflectionModel, reflection_templates, submitter
from .rollouts import ImprovableApp, Rollouts, model_name
from .run_record import save_run_record
from .search_log import CandidateRecord, IterationRecord, SearchLog
from .spending import SearchStopped, Spending
from .texts import TextSite, text_sites

GATE_LABEL = "improve/held-out"


@dataclass
class ImprovementResult:
    """What an improvement run found: the split, every candidate's scores, the accepted one and its patch.

    `accepted` is None when no candidate beat the seed on the held-out tasks; `patch` is then None too.
    """

    run_id: str
    app: str
    architecture: str
    model: str
    reflection_model: str
    split: TaskSplit
    k: int
    seed: CandidateRecord
    candidates: list[CandidateRecord]
    iterations: list[IterationRecord]
    accepted: CandidateRecord | None
    patch: Patch | None
    rollouts: int
    model_calls: int
    reflections: int
    cost_usd: float | None
    seconds: float
    stop_reason: str
    started_at: str
    budget: int
    max_cost_usd: float | None
    record_path: Path | None = None
    log: list[str] = field(default_factory=list, repr=False)

    def describe(self) -> str:
        """The before/after report, for people."""
        split = self.split
        lines = [
            f"Improvement run {self.run_id} of {self.app} ({self.architecture}) on {self.model}, reflection by "
            f"{self.reflection_model}",
            f"Split (seed {split.seed}, {split.held_out_fraction:.0%} held out): train {_ids(split.train)}; "
            f"held out {_ids(split.held_out)}",
            f"Gate: a candidate is accepted only if its pass^{self.k} on the held-out tasks beats the seed's "
            f"({self.k} trials per task).",
            "",
            f"{'candidate':<10} {'iteration':>9} {'train':>6} {'held-out pass^' + str(self.k):>17} {'pass^1':>7}  gate",
        ]
        for candidate in [self.seed, *self.candidates]:
            held = "-" if candidate.held_out is None else f"{candidate.held_out:.3f}"
            once = "-" if candidate.held_out_pass1 is None else f"{candidate.held_out_pass1:.3f}"
            name = "seed" if candidate is self.seed else f"#{candidate.index}"
            lines.append(
                f"{name:<10} {candidate.iteration:>9} {candidate.train:>6.3f} {held:>17} {once:>7}  {candidate.gate}"
            )
        lines.append("")
        if self.accepted is not None and self.patch is not None:
            lines.append(
                f"Accepted #{self.accepted.index}: held-out pass^{self.k} {self.seed.held_out:.3f} -> "
                f"{self.accepted.held_out:.3f}, pass^1 {self.seed.held_out_pass1:.3f} -> "
                f"{self.accepted.held_out_pass1:.3f}; changes {', '.join(c.path for c in self.patch.changes)}"
            )
        else:
            lines.append("No candidate beat the seed on the held-out tasks: nothing to patch.")
        cost = "unknown (some model has no price)" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        lines.append(
            f"Spent {self.rollouts} of {self.budget} episodes, {self.reflections} reflections, {self.model_calls} "
            f"model calls, {cost}, {self.seconds:.1f}s. Stopped: {self.stop_reason}."
        )
        return "\n".join(lines)

    def report(self) -> dict[str, Any]:
        """The before/after numbers as JSON values, kept in the patch beside its texts."""
        accepted = self.accepted
        return {
            "run_id": self.run_id,
            "model": self.model,
            "reflection_model": self.reflection_model,
            "split": self.split.ids(),
            "k": self.k,
            "before": _scores(self.seed),
            "after": _scores(accepted) if accepted is not None else None,
            "rollouts": self.rollouts,
            "cost_usd": self.cost_usd,
            "seconds": round(self.seconds, 2),
            "stop_reason": self.stop_reason,
        }


async def improve(
    app: ImprovableApp | str,
    *,
    architecture: str | None = None,
    model: Model | str | None = None,
    reflection_model: Model | str | None = None,
    user_model: Model | str | None = None,
    budget: int = 60,
    max_cost: float | None = None,
    k: int = 2,
    held_out: float = 0.3,
    seed: int = 0,
    only: Sequence[str] = (),
    minibatch: int = 3,
    concurrency: int = 4,
    tasks: Sequence[EvalTask] | None = None,
    on_event: EventSink | None = None,
    on_progress: Callable[[str], None] | None = None,
    record_dir: Path | None = None,
) -> ImprovementResult:
    """Optimise the texts of `app`'s agent tree in `architecture` against its eval tasks (see the module doc).

    Args:
        app: An app, or the name it is registered under.
        architecture: One of the app's architectures; its first by default.
        model: The assistant's model, as `retinue eval --model` takes it.
        reflection_model: The model that rewrites texts; `model` by default.
        user_model: The simulated user's model; `model` by default; "scripted" sends each task's opening.
        budget: The most episodes to run, the held-out gate's included.
        max_cost: The most dollars to spend, every model call counted; None for no limit.
        k: Trials per held-out task, and the k of the gate's pass^k (at least 2).
        held_out: The fraction of tasks held out; `seed` draws the split.
        only: Patterns (fnmatch) of the text paths to optimise, such as "*.instructions"; all by default.
        minibatch: Train tasks per GEPA reflection step.
        tasks: The tasks to use instead of the app's own.
        on_event: Receives the events of every run (episodes and reflections), to trace them.
        on_progress: Receives a line per step, for a person watching.
        record_dir: Where the run's record (per-iteration scores, accepted diffs) is saved as JSON; None
            saves nothing. The CLI uses `<home>/improve/`.
    """
    try:
        import gepa  # noqa: F401 - imported here to fail early, with the install hint; used by _search
    except ImportError as exc:
        raise MissingDependencyError("retinue improve", "improve", "gepa") from exc

    started, started_at = time.perf_counter(), _now()
    resolved = _resolve_app(app)
    architecture = architecture or resolved.architectures[0]
    if architecture not in resolved.architectures:
        raise ConfigurationError(
            f"{resolved.name} has no architecture {architecture!r}; it has {', '.join(resolved.architectures)}"
        )
    _check_numbers(budget=budget, max_cost=max_cost, k=k, minibatch=minibatch, concurrency=concurrency)
    split = split_tasks(list(tasks if tasks is not None else resolved.eval_tasks()), held_out=held_out, seed=seed)
    train, held = list(split.train), list(split.held_out)
    sites = await _tree_sites(resolved, architecture, model, train[0])
    chosen = _chosen_paths(sites, only)
    root = next(iter(sites.values())).agent_path
    seed_texts = {path: sites[path].text for path in chosen}
    progress = on_progress or (lambda line: None)
    log: list[str] = []

    def say(line: str) -> None:
        log.append(line)
        progress(line)

    gate_size = len(held) * k  # the episodes that measure one candidate on the held-out tasks
    _check_budget(budget, train=len(train), held_out=len(held), k=k, minibatch=minibatch)
    spending = Spending(max_rollouts=budget, max_cost_usd=max_cost)
    events = fan_out(spending, on_event)
    rollouts = Rollouts(
        resolved, architecture, model=model, user_model=user_model, spending=spending, on_event=on_event,
        concurrency=concurrency,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    reflector = ReflectionModel(
        reflection_model if reflection_model is not None else model,
        submit=submitter(loop),
        spending=spending,
        on_event=events,
        reserve=gate_size,
    )
    search = SearchLog(train)
    stop_reason = ""

    say(f"{resolved.name}/{architecture}: {len(chosen)} text(s) to improve; split seed {seed}")
    say(f"train: {_ids(train)}; held out: {_ids(held)}")
    seed_record = CandidateRecord(0, 0, [], dict(seed_texts), 0.0, {}, gate="seed")
    try:
        seed_report = await rollouts.run(held, seed_texts, trials=k, label=GATE_LABEL)
        _set_held_out(seed_record, seed_report, k)
        say(f"seed on the held-out tasks: pass^{k} {seed_record.held_out:.3f}, pass^1 {seed_record.held_out_pass1:.3f}")
        stop_reason = await _search(
            rollouts, reflector, search, sites, seed_texts, train, root, split.seed, minibatch, gate_size, say
        )
    except SearchStopped as stop:
        stop_reason = stop.reason
    if search.candidates:
        seed_record.train, seed_record.train_by_task = search.candidates[0].train, search.candidates[0].train_by_task
    candidates = search.candidates[1:]
    gate_stop = None
    if seed_record.held_out is not None:
        gate_stop = await _gate(rollouts, candidates, seed_record, held, k, say)
    for candidate in candidates:
        candidate.gate = candidate.gate or f"not checked: {gate_stop or stop_reason}"
    accepted = _best_accepted(candidates)
    result = ImprovementResult(
        run_id=uuid.uuid4().hex[:12],
        app=resolved.name,
        architecture=architecture,
        model=model_name(model),
        reflection_model=model_name(reflection_model if reflection_model is not None else model),
        split=split,
        k=k,
        seed=seed_record,
        candidates=candidates,
        iterations=search.iterations,
        accepted=accepted,
        patch=None,
        rollouts=spending.rollouts,
        model_calls=spending.model_calls,
        reflections=reflector.calls,
        cost_usd=spending.known_cost,
        seconds=time.perf_counter() - started,
        stop_reason=stop_reason,
        started_at=started_at,
        budget=budget,
        max_cost_usd=max_cost,
        log=log,
    )
    if accepted is not None:
        all_texts = {path: site.text for path, site in sites.items()}
        result.patch = Patch.between(
            resolved.name, architecture, all_texts, {**all_texts, **accepted.texts}, report=result.report(),
            created_at=_now(),
        )  # fmt: skip
    if record_dir is not None:
        result.record_path = save_run_record(result, record_dir)
    return result


def improve_sync(app: ImprovableApp | str, **options: Any) -> ImprovementResult:
    """`improve` for code that is not async; the same arguments."""

    async def main() -> ImprovementResult:
        from ..models.resolve import close_resolved_models

        try:
            return await improve(app, **options)
        finally:
            await close_resolved_models()

    return asyncio.run(main())


async def _search(
    rollouts: Rollouts,
    reflector: ReflectionModel,
    search: SearchLog,
    sites: dict[str, TextSite],
    seed_texts: dict[str, str],
    train: list[EvalTask],
    root: str,
    seed: int,
    minibatch: int,
    gate_size: int,
    say: Callable[[str], None],
) -> str:
    """GEPA's search on the train tasks, in a thread; why it stopped."""
    from gepa.api import optimize
    from gepa.core.adapter import GEPAAdapter
    from gepa.core.callbacks import GEPACallback

    from .gepa_adapter import BlameSelector, RetinueAdapter

    spending = rollouts.spending
    adapter: GEPAAdapter[EvalTask, TrialResult, TrialResult] = RetinueAdapter(
        rollouts, reflector.submit, sites, train, reserve=gate_size
    )
    reasons: list[str] = []
    cancelled = False
    batch = min(minibatch, len(train))

    def should_stop(gepa_state: Any) -> bool:
        # Read between iterations: stop rather than start one that cannot finish.
        reason = spending.stop_reason(reserve=gate_size, next_batch=2 * batch + len(train))
        if reason is None and reflector.failures:
            reason = reflector.failures[-1]
        if reason is None and search.best_train() >= 1.0:
            seed_only = len(search.candidates) == 1
            reason = "the seed passes every train task" if seed_only else "a candidate passes every train task"
        if reason is None and cancelled:
            reason = "cancelled"
        if reason is not None:
            reasons.append(reason)
        return reason is not None

    class Progress:
        def log(self, message: str) -> None:
            # GEPA logs whole proposed texts; their first line is enough to follow it (the record has them all).
            first = message.strip().splitlines()[0] if message.strip() else ""
            say(f"gepa: {first[:200]}")

    def run() -> None:
        optimize(
            seed_candidate=seed_texts,
            trainset=train,
            valset=train,  # GEPA's frontier is kept on train: the held-out tasks are only the gate's
            adapter=adapter,
            reflection_lm=reflector,
            reflection_prompt_template={
                path: template
                for path, template in reflection_templates(list(sites.values())).items()
                if path in seed_texts
            },
            module_selector=BlameSelector({path: sites[path] for path in seed_texts}, root),
            reflection_minibatch_size=batch,
            stop_callbacks=[should_stop],
            callbacks=[cast("GEPACallback", search)],  # GEPA calls the methods a callback has
            logger=Progress(),
            seed=seed,
            raise_on_exception=True,
        )

    try:
        await asyncio.to_thread(run)
    except SearchStopped as stop:
        return stop.reason
    except asyncio.CancelledError:
        cancelled = True  # GEPA's thread stops at its next check
        raise
    return reasons[-1] if reasons else "the search ended"


async def _gate(
    rollouts: Rollouts,
    candidates: list[CandidateRecord],
    seed: CandidateRecord,
    held: list[EvalTask],
    k: int,
    say: Callable[[str], None],
) -> str | None:
    """Measure on the held-out tasks each candidate that beats the seed on train, best first; why it stopped."""
    assert seed.held_out is not None
    for candidate in sorted(candidates, key=lambda c: (-c.train, c.index)):
        if candidate.train <= seed.train:
            candidate.gate = f"not checked: no better than the seed on train ({candidate.train:.3f})"
            continue
        try:
            report = await rollouts.run(held, candidate.texts, trials=k, label=GATE_LABEL)
        except SearchStopped as stop:
            return stop.reason
        _set_held_out(candidate, report, k)
        assert candidate.held_out is not None
        if candidate.held_out > seed.held_out:
            candidate.gate = "accepted"
        else:
            candidate.gate = f"rejected: held-out pass^{k} {candidate.held_out:.3f} <= the seed's {seed.held_out:.3f}"
        scores = f"train {candidate.train:.3f}, held-out pass^{k} {candidate.held_out:.3f}"
        say(f"candidate #{candidate.index}: {scores}: {candidate.gate}")
    return None


def _best_accepted(candidates: list[CandidateRecord]) -> CandidateRecord | None:
    accepted = [candidate for candidate in candidates if candidate.gate == "accepted"]
    if not accepted:
        return None
    return max(accepted, key=lambda c: (c.held_out or 0.0, c.held_out_pass1 or 0.0, c.train, -c.index))


def _set_held_out(record: CandidateRecord, report: EvalReport, k: int) -> None:
    record.held_out = report.pass_hat(k)
    record.held_out_pass1 = report.pass_hat(1)
    record.held_out_by_task = report.pass_hat_by_task(k)


async def _tree_sites(
    app: ImprovableApp, architecture: str, model: Model | str | None, task: EvalTask
) -> dict[str, TextSite]:
    """The texts of the agent tree the app builds for an episode (one built for the purpose, then closed)."""
    episode = app.episode(architecture, model, task)
    try:
        return {site.path: site for site in text_sites(episode.assistant)}
    finally:
        if episode.close is not None:
            closing = episode.close()
            if closing is not None:
                await closing


def _chosen_paths(sites: dict[str, TextSite], only: Sequence[str]) -> list[str]:
    if not only:
        return list(sites)
    chosen = [path for path in sites if any(fnmatch.fnmatchcase(path, pattern) for pattern in only)]
    if not chosen:
        raise ConfigurationError(
            f"no text path matches {', '.join(map(repr, only))}; the paths are: {', '.join(sites)}"
        )
    return chosen


def _check_budget(budget: int, *, train: int, held_out: int, k: int, minibatch: int) -> None:
    """ConfigurationError unless `budget` episodes hold the seed, one search step and the gate of its candidate."""
    minimum = 2 * held_out * k + train + 2 * min(minibatch, train) + train
    if budget < minimum:
        raise ConfigurationError(
            f"a budget of {budget} episodes cannot hold one round: the seed and one candidate on the held-out tasks "
            f"({held_out} x {k} trials each), the seed on the train tasks ({train}), one proposal on a "
            f"minibatch and its check on the train tasks; give --budget {minimum} or more"
        )


def _check_numbers(*, budget: int, max_cost: float | None, k: int, minibatch: int, concurrency: int) -> None:
    for name, value, least in (
        ("budget", budget, 1),
        ("k", k, 2),
        ("minibatch", minibatch, 1),
        ("concurrency", concurrency, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigurationError(f"{name} must be a whole number of at least {least}, not {value!r}")
    if max_cost is not None and not (isinstance(max_cost, int | float) and max_cost > 0):
        raise ConfigurationError(f"max_cost must be a number of dollars above 0, or None, not {max_cost!r}")


def _resolve_app(app: ImprovableApp | str) -> ImprovableApp:
    if isinstance(app, str):
        from ..apps import load_app

        return load_app(app)
    return app


def _scores(record: CandidateRecord) -> dict[str, Any]:
    return {"train": record.train, "held_out_pass_k": record.held_out, "held_out_pass_1": record.held_out_pass1}


def _ids(tasks: Sequence[EvalTask]) -> str:
    return ", ".join(task.id for task in tasks) or "(none)"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
