"""Durable runs of applications (`retinue run APP --durable`): where each keeps its state, what it was run with.

    retinue run travel "Fly me to New York" --durable --run-id trip-42     # killed mid-booking; then either:
    retinue run travel --durable --run-id trip-42
    retinue resume trip-42

An application's tools act on state of their own (the travel app's bookings database), which must outlive
the process as the journal does: each durable run of an application gets a directory, `run-state/RUN_ID`
beside a SQLite journal (in `$RETINUE_HOME` for a Postgres one), where the application keeps that state
(`DurableApp.durable_session`) and where `launch.json` records how the run was started (application,
architecture, model and the application's own options), so that it can be resumed without saying it all again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import JournalError
from .resume import default_journal_path, is_postgres_url

if TYPE_CHECKING:
    from ..approvals import Approver
    from ..apps import AppOptionValues, AppSession
    from ..models.base import Model

STATE_DIR_NAME = "run-state"
LAUNCH_FILE_NAME = "launch.json"
_PLAIN_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@runtime_checkable
class DurableApp(Protocol):
    """An application whose sessions can keep their state with a durable run, in `state_dir`."""

    def durable_session(
        self,
        architecture: str,
        model: Model | str | None,
        approver: Approver | None,
        options: AppOptionValues = ...,
        *,
        state_dir: Path,
    ) -> AppSession: ...


@dataclass(frozen=True, slots=True)
class Launch:
    """How `retinue run APP --durable` started a run: what it is resumed with when nothing else is said.

    `options` are the values of the application's own options (see `retinue.apps.AppOption`), by name.
    """

    app: str
    architecture: str
    model: str | None
    options: dict[str, str] = field(default_factory=dict)


def state_dir_of(journal_location: str | os.PathLike[str], run_id: str) -> Path:
    """The directory where the application of durable run `run_id` keeps its state."""
    if is_postgres_url(journal_location):
        base = default_journal_path().parent
    else:
        base = Path(journal_location).expanduser().parent
    # A run id is any text: one that is not a plain file name becomes its digest.
    name = run_id if _PLAIN_RUN_ID.match(run_id) else hashlib.sha256(run_id.encode()).hexdigest()[:32]
    return base / STATE_DIR_NAME / name


def save_launch(state_dir: Path, launch: Launch) -> None:
    """Record how the run was started, once: the first launch is the one a resume repeats."""
    path = state_dir / LAUNCH_FILE_NAME
    if path.exists():
        return
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = path.with_name(path.name + ".writing")
    descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(launch), file)
    os.replace(written, path)


def load_launch(state_dir: Path) -> Launch | None:
    """How the run kept in `state_dir` was started, or None if no application started it."""
    path = state_dir / LAUNCH_FILE_NAME
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        return Launch(str(fields["app"]), str(fields["architecture"]), fields.get("model"), _options(fields))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JournalError(f"{path} is not readable ({exc}): it says how the run was started; restore it") from exc


def _options(fields: dict[str, Any]) -> dict[str, str]:
    """The application options a launch record holds.

    Records written before applications declared their options hold one, `user`: the value of the `--user`
    the command then took for every application, which an application that still answers to it declares among
    the names of one of its options (`retinue.apps.named_options` finds it there).
    """
    if "options" not in fields:
        user = fields.get("user")
        return {} if user is None else {"user": str(user)}
    options = fields["options"]
    if not isinstance(options, dict) or not all(isinstance(value, str) for value in options.values()):
        raise TypeError(f"options must map names to text, not {options!r}")
    return {str(name): value for name, value in options.items()}
