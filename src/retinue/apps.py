"""Applications the CLI can run and evaluate by name (`retinue run travel ...`).

An application is found through the `retinue.apps` entry-point group, so a
package of your own can register one the same way the travel example does.
It may declare command-line options of its own (`AppOption`): `retinue run
APP` takes them beside its own and hands their values to the app's session,
so what they mean stays the app's business.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from .agent import Agent
from .approvals import Approver
from .errors import ConfigurationError
from .evals import Episode, EvalTask
from .models.base import Model


@dataclass(frozen=True, slots=True)
class AppOption:
    """A command-line option of one application: `retinue run APP --NAME VALUE`.

    `aliases` are other names for the same option (`--ALIAS VALUE`). The value is text; the session that
    receives it checks it, and raises `ConfigurationError` with what to give instead for one it cannot use.
    """

    name: str
    help: str
    metavar: str = "VALUE"
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


AppOptionValues = Mapping[str, str]
"""The values of an application's options, by option name: only those that were given."""

NO_OPTIONS: AppOptionValues = MappingProxyType({})


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
    """An application: its assistant for one request (`session`) and for its eval tasks (`episode`).

    `session` receives the values of the command-line options the application declares (see `AppWithOptions`).
    """

    name: str
    description: str
    architectures: Sequence[str]
    example_prompt: str

    def session(
        self,
        architecture: str,
        model: Model | str | None,
        approver: Approver | None,
        options: AppOptionValues = NO_OPTIONS,
    ) -> AppSession: ...

    def eval_tasks(self) -> Sequence[EvalTask]: ...

    def episode(self, architecture: str, model: Model | str | None, task: EvalTask) -> Episode: ...


@runtime_checkable
class AppWithOptions(Protocol):
    """An application with command-line options of its own; an application without may leave `options` out."""

    options: Sequence[AppOption]


def options_of(app: App) -> Sequence[AppOption]:
    """The command-line options `app` declares (none for an app that declares none)."""
    return app.options if isinstance(app, AppWithOptions) else ()


def named_options(app: App, values: Mapping[str, str]) -> dict[str, str]:
    """`values` keyed by the name of the option of `app` each is for, whichever of its names it came under.

    A value for an option `app` does not declare is left out.
    """
    named = {}
    for option in options_of(app):
        given = [values[name] for name in option.names if name in values]
        if given:
            named[option.name] = given[0]
    return named


def load_app(name: str) -> App:
    """The application registered under `name`."""
    found = {point.name: point for point in entry_points(group="retinue.apps")}
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is the package installed?)"
        raise ConfigurationError(f"No application named '{name}'. Installed applications: {known}.")
    app: App = found[name].load()
    return app
