"""Applied patches: the texts `retinue run` and `retinue eval` use until the patch is reverted.

`retinue improve apply PATCH` checks the patch against the app's agent tree and records it as the active patch
of that app and architecture, in `<home>/patches/<app>/<architecture>.json` (home: the trace store's directory,
$RETINUE_HOME or ~/.retinue). Applying a second patch to the same architecture stacks it on the first: the file
keeps the original old texts and the newest new ones. `retinue improve revert APP --arch A` removes it.

`with_active_patches(app, home)` is the app as the commands run it: each agent tree it builds gets its
architecture's active patch, and `announce` is told once per architecture, so the user sees the line saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..apps import NO_OPTIONS, App, AppOption, AppOptionValues, AppSession, options_of
from ..errors import ConfigurationError
from .patch import Patch

if TYPE_CHECKING:
    from ..approvals import Approver
    from ..evals import Episode, EvalTask
    from ..models.base import Model


def active_patch_path(home: Path, app: str, architecture: str) -> Path:
    return home / "patches" / _safe(app) / f"{_safe(architecture)}.json"


def active_patch(home: Path, app: str, architecture: str) -> Patch | None:
    """The patch applied to `app` in `architecture`, if any."""
    path = active_patch_path(home, app, architecture)
    return Patch.load(path) if path.exists() else None


def activate(patch: Patch, home: Path, app: App) -> Path:
    """Record `patch` as active for its app and architecture, after checking it fits the app's agent tree.

    Raises ConfigurationError when the patch is for another app or architecture, or its old texts are not
    the app's (see `Patch.apply`).
    """
    if patch.app != app.name:
        raise ConfigurationError(f"the patch is for the app {patch.app!r}, not {app.name!r}")
    if patch.architecture not in app.architectures:
        raise ConfigurationError(
            f"the patch is for the architecture {patch.architecture!r}, which {app.name} does not have "
            f"({', '.join(app.architectures)})"
        )
    current = active_patch(home, patch.app, patch.architecture)
    combined = patch if current is None else current.then(patch)
    _check_fits(combined, app)
    path = active_patch_path(home, patch.app, patch.architecture)
    combined.save(path)
    return path


def deactivate(home: Path, app: str, architecture: str) -> Path | None:
    """Remove the active patch of `app` in `architecture`; the path it was at, or None if there was none."""
    path = active_patch_path(home, app, architecture)
    if not path.exists():
        return None
    path.unlink()
    return path


def with_active_patches(app: App, home: Path, announce: Callable[[str], None] | None = None) -> App:
    """`app`, or a copy whose agent trees get the active patch of their architecture (when there are any)."""
    patches = {
        architecture: patch
        for architecture in app.architectures
        if (patch := active_patch(home, app.name, architecture)) is not None
    }
    if not patches:
        return app
    return PatchedApp(app, patches, home, announce)


class PatchedApp:
    """An app whose agent trees get a patch per architecture; everything else is the app's own."""

    def __init__(
        self, app: App, patches: dict[str, Patch], home: Path, announce: Callable[[str], None] | None = None
    ) -> None:
        self.app = app
        self.patches = patches
        self.home = home
        self.announce = announce
        self._announced: set[str] = set()
        self.name = app.name
        self.description = app.description
        self.architectures: Sequence[str] = app.architectures
        self.example_prompt = app.example_prompt
        self.options: Sequence[AppOption] = options_of(app)

    def session(
        self,
        architecture: str,
        model: Model | str | None,
        approver: Approver | None,
        options: AppOptionValues = NO_OPTIONS,
    ) -> AppSession:
        session = self.app.session(architecture, model, approver, options)
        patch = self._patch_for(architecture)
        if patch is not None:
            # A session without an approver can leave out the tools that need one; their texts stay unused.
            session.agent = patch.apply(session.agent, missing="skip")
        return session

    def eval_tasks(self) -> Sequence[EvalTask]:
        return self.app.eval_tasks()

    def episode(self, architecture: str, model: Model | str | None, task: EvalTask) -> Episode:
        episode = self.app.episode(architecture, model, task)
        patch = self._patch_for(architecture)
        if patch is not None:
            episode.assistant = patch.apply(episode.assistant)
        return episode

    def _patch_for(self, architecture: str) -> Patch | None:
        patch = self.patches.get(architecture)
        if patch is not None and architecture not in self._announced and self.announce is not None:
            self._announced.add(architecture)
            where = active_patch_path(self.home, self.name, architecture)
            self.announce(
                f"{self.name}/{architecture} runs with the patch applied by `retinue improve apply` ({where}, "
                f"{len(patch.changes)} text(s) changed); `retinue improve revert {self.name} --arch {architecture}` "
                "runs without it"
            )
        return patch


def _check_fits(patch: Patch, app: App) -> None:
    tasks = list(app.eval_tasks())
    if not tasks:
        raise ConfigurationError(f"{app.name} has no eval tasks to build its agent tree from, to check the patch")
    episode = app.episode(patch.architecture, None, tasks[0])
    try:
        patch.apply(episode.assistant)
    finally:
        _close(episode)


def _close(episode: Any) -> None:
    import asyncio
    import inspect

    if episode.close is None:
        return
    closing = episode.close()
    if inspect.isawaitable(closing):
        asyncio.run(_wait(closing))


async def _wait(awaitable: Any) -> None:
    await awaitable


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "_"
