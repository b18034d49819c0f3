"""A reviewable patch: old and new texts per path of an agent tree, with the report that justified it.

`retinue improve` writes one as JSON; nothing changes until it is applied (`retinue improve apply PATCH`). The
file is meant to be read by a person:

    {"format": "retinue.text_patch", "version": 1,
     "app": "travel", "architecture": "lead", "created_at": "2026-05-01T12:00:00Z",
     "changes": [{"path": "travel-lead.instructions", "old": "...", "new": "..."}],
     "suggestions": [{"path": "travel-lead/flights.tool.search_flights", "about": "...", "suggestion": "..."}],
     "report": {... how the new texts scored against the old, see `retinue.improve.improve` ...}}

`changes` are texts the patch replaces. `suggestions` are what it cannot change because they are code (a
tool's error messages, from tool testing): they are for the person who owns the tool, and applying the patch
leaves them alone.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..agent import Agent
from ..errors import ConfigurationError
from .texts import tree_texts, with_texts

PATCH_FORMAT = "retinue.text_patch"
PATCH_VERSION = 1


@dataclass(frozen=True, slots=True)
class TextChange:
    path: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A change the patch proposes but cannot make: `about` what (an error message, say), and the proposal."""

    path: str
    about: str
    suggestion: str


@dataclass(frozen=True)
class Patch:
    """New texts for some paths of one app's agent tree in one architecture."""

    app: str
    architecture: str
    changes: tuple[TextChange, ...]
    suggestions: tuple[Suggestion, ...] = ()
    report: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @staticmethod
    def between(
        app: str,
        architecture: str,
        old: Mapping[str, str],
        new: Mapping[str, str],
        *,
        suggestions: Sequence[Suggestion] = (),
        report: Mapping[str, Any] | None = None,
        created_at: str = "",
    ) -> Patch:
        """The patch that turns the texts `old` into `new` (paths whose text is the same are left out)."""
        changes = tuple(TextChange(path, old[path], text) for path, text in new.items() if old.get(path) != text)
        unknown = [change.path for change in changes if change.path not in old]
        if unknown:
            raise ConfigurationError(f"a patch can only change existing texts; no old text at {', '.join(unknown)}")
        return Patch(app, architecture, changes, tuple(suggestions), dict(report or {}), created_at)

    @property
    def new_texts(self) -> dict[str, str]:
        return {change.path: change.new for change in self.changes}

    def apply(self, agent: Agent[Any], *, missing: Literal["error", "skip"] = "error") -> Agent[Any]:
        """The tree under `agent` with this patch's new texts.

        Raises ConfigurationError when a text the patch changes is no longer what the patch was made from:
        the code changed since, and the patch would undo that change unseen. A path the tree does not have
        is an error too, or, with `missing="skip"`, left out (a tree built without some tools).
        """
        current = tree_texts(agent)
        changes = [c for c in self.changes if c.path in current] if missing == "skip" else list(self.changes)
        for change in changes:
            if change.path not in current:
                raise ConfigurationError(
                    f"the patch changes {change.path!r}, which {self.app}/{self.architecture} no longer has; "
                    "run `retinue improve` again to make a new patch"
                )
            if current[change.path] not in (change.old, change.new):
                raise ConfigurationError(
                    f"the text at {change.path!r} changed since the patch was made, so applying it would undo "
                    "that change; run `retinue improve` again to make a new patch"
                )
        return with_texts(agent, {change.path: change.new for change in changes})

    def then(self, later: Patch) -> Patch:
        """One patch doing this one and then `later` (made on the texts this one gives): old texts from here."""
        if (later.app, later.architecture) != (self.app, self.architecture):
            raise ConfigurationError(
                f"a patch for {later.app}/{later.architecture} cannot follow one for {self.app}/{self.architecture}"
            )
        merged = {change.path: change for change in self.changes}
        for change in later.changes:
            first = merged.get(change.path)
            merged[change.path] = TextChange(change.path, first.old if first else change.old, change.new)
        kept = tuple(change for change in merged.values() if change.old != change.new)
        return Patch(
            self.app, self.architecture, kept, self.suggestions + later.suggestions, later.report, later.created_at
        )

    def render(self) -> str:
        """The patch for review: a unified diff of each changed text, then the suggestions."""
        lines = [f"Patch for {self.app} ({self.architecture}): {len(self.changes)} text(s) changed"]
        for change in self.changes:
            diff = difflib.unified_diff(
                change.old.splitlines(),
                change.new.splitlines(),
                f"{change.path} (old)",
                f"{change.path} (new)",
                lineterm="",
            )
            lines += ["", *diff]
        if self.suggestions:
            lines += ["", "Suggestions to make in the code (not applied):"]
            lines += [f"- {item.path}: {item.about}\n  {item.suggestion}" for item in self.suggestions]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PATCH_FORMAT,
            "version": PATCH_VERSION,
            "app": self.app,
            "architecture": self.architecture,
            "created_at": self.created_at,
            "changes": [{"path": c.path, "old": c.old, "new": c.new} for c in self.changes],
            "suggestions": [{"path": s.path, "about": s.about, "suggestion": s.suggestion} for s in self.suggestions],
            "report": dict(self.report),
        }

    @staticmethod
    def from_json(payload: Any, source: str = "the patch") -> Patch:
        if not isinstance(payload, dict) or payload.get("format") != PATCH_FORMAT:
            raise ConfigurationError(f'{source} is not a retinue patch (no "format": "{PATCH_FORMAT}")')
        if payload.get("version", 0) > PATCH_VERSION:
            raise ConfigurationError(f"{source} is a patch of version {payload['version']}, newer than this retinue")
        try:
            return Patch(
                app=str(payload["app"]),
                architecture=str(payload["architecture"]),
                changes=tuple(TextChange(str(c["path"]), str(c["old"]), str(c["new"])) for c in payload["changes"]),
                suggestions=tuple(
                    Suggestion(str(s["path"]), str(s["about"]), str(s["suggestion"]))
                    for s in payload.get("suggestions", [])
                ),
                report=dict(payload.get("report") or {}),
                created_at=str(payload.get("created_at", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"{source} is not a complete retinue patch: {exc!r} is missing or wrong") from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n")

    @staticmethod
    def load(path: Path) -> Patch:
        """The patch in the file `path`; ConfigurationError, saying what is wrong, for anything else."""
        try:
            payload = json.loads(path.read_text())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the patch {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path} is not a retinue patch: not JSON ({exc})") from exc
        return Patch.from_json(payload, str(path))
