"""Applications the CLI can run and evaluate by name (`retinue run travel ...`).

An application is found through the `retinue.apps` entry-point group, so a
package of your own can register one the same way the travel example does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from .agent import Agent
from .approvals import Approver
from .errors import ConfigurationError
from .evals import Episode, EvalTask
from .models.base import Model


@dataclass
class AppSession:
    """One ready-to-run assistant: the agent, what its tools need, and how to report what it did.

    `preface` is put before the user's prompt (for example who the user is); it is shown with the run.
    """

    agent: Agent[Any]
    preface: str = ""
    deps: Any = None
    report: Callable[[], str] = lambda: ""
    close: Callable[[], Awaitable[None] | None] | None = None


class App(Protocol):
    name: str
    description: str
    architectures: Sequence[str]
    example_prompt: str

    def session(
        self, architecture: str, model: Model | str | None, approver: Approver | None, traveller: str | None = None
    ) -> AppSession: ...

    def eval_tasks(self) -> Sequence[EvalTask]: ...

    def episode(self, architecture: str, model: Model | str | None, task: EvalTask) -> Episode: ...


def load_app(name: str) -> App:
    """The application registered under `name`."""
    found = {point.name: point for point in entry_points(group="retinue.apps")}
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is the package installed?)"
        raise ConfigurationError(f"No application named '{name}'. Installed applications: {known}.")
    app: App = found[name].load()
    return app
