"""An app's eval episodes, run for the optimiser: with a candidate's texts, recorded, counted and priced."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

from ..evals import Episode, EvalReport, EvalTask, ScriptedUser, SimulatedUser, User, run_eval
from ..events import EventSink, fan_out
from ..models.base import Model
from .spending import Spending
from .texts import with_texts

SCRIPTED_USER = "scripted"
"""As the user model: a user whose only message is the task's opening (or its instruction), as in `retinue eval`."""


class ImprovableApp(Protocol):
    """What `retinue improve` needs of an app: its eval tasks, and an episode of one in an architecture.

    Every `retinue.apps.App` is one.
    """

    @property
    def name(self) -> str: ...

    @property
    def architectures(self) -> Sequence[str]: ...

    def eval_tasks(self) -> Sequence[EvalTask]: ...

    def episode(self, architecture: str, model: Model | str | None, task: EvalTask) -> Episode: ...


class Rollouts:
    """Runs episodes of `app` in `architecture` with given texts; every run's events go to `on_event`."""

    def __init__(
        self,
        app: ImprovableApp,
        architecture: str,
        *,
        model: Model | str | None,
        user_model: Model | str | None,
        spending: Spending,
        on_event: EventSink | None = None,
        concurrency: int = 4,
    ) -> None:
        self.app = app
        self.architecture = architecture
        self.model = model
        self.user_model = user_model
        self.spending = spending
        self.on_event = fan_out(spending, on_event)
        self.concurrency = concurrency

    async def run(
        self, tasks: Sequence[EvalTask], texts: Mapping[str, str], *, trials: int = 1, reserve: int = 0, label: str
    ) -> EvalReport:
        """One trial per task and trial number, in that order; SearchStopped when they do not fit the limits.

        `reserve` episodes of the budget (and their estimated cost) are kept back: see `Spending`.
        """
        self.spending.start_rollouts(len(tasks) * trials, reserve=reserve)

        def episode(task: EvalTask) -> Episode:
            built = self.app.episode(self.architecture, self.model, task)
            built.assistant = with_texts(built.assistant, texts)
            built.on_event = fan_out(built.on_event, self.on_event)
            return built

        report = await run_eval(tasks, episode, self._user, trials=trials, label=label, concurrency=self.concurrency)
        self.spending.rollout_cost_usd += sum(result.cost_usd or 0.0 for result in report.results)
        return dataclasses.replace(
            report, app=self.app.name, architecture=self.architecture, model=model_name(self.model)
        )

    def _user(self, task: EvalTask) -> User:
        if self.user_model == SCRIPTED_USER:
            return ScriptedUser([task.opening or task.instruction])
        # The user's calls are traced and priced with the assistant's: --max-cost counts them too.
        return SimulatedUser(
            task, self.user_model if self.user_model is not None else self.model, on_event=self.on_event
        )


def model_name(model: Model | str | None) -> str:
    """How a model is named in reports: its string, its model id, or "default"."""
    if model is None or isinstance(model, str):
        return model or "default"
    return str(getattr(model, "model_id", type(model).__name__))
