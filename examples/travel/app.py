"""The travel assistant as a retinue application: `retinue run travel ...` and `retinue eval travel ...`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retinue.approvals import Approver, approve_all, unattended
from retinue.apps import NO_OPTIONS, AppOption, AppOptionValues, AppSession
from retinue.errors import ConfigurationError
from retinue.evals import Episode, EvalTask
from retinue.models.base import Model

from .assistant import ARCHITECTURES, Architecture, build_assistant
from .errors import NotFoundError
from .snapshot import describe_booking, snapshot_delta
from .tasks import answer_contains, expected_snapshot, load_tasks
from .world import TravelWorld

TRAVELLER = AppOption(
    "traveller",
    help="who asks: a traveller id or the email on their profile (default: the example traveller)",
    metavar="ID_OR_EMAIL",
    # --user is what `retinue run` called this option before applications declared their own.
    aliases=("user",),
)


class TravelApp:
    name = "travel"
    description = "A travel assistant that recommends and books trips (lead-specialist, master-clone or scripting)."
    architectures: Sequence[str] = ARCHITECTURES
    example_prompt = "Plan a 3-day trip from SFO to New York leaving 2026-12-12, with a hotel in Manhattan."
    options: Sequence[AppOption] = (TRAVELLER,)

    def session(
        self,
        architecture: str,
        model: Model | str | None,
        approver: Approver | None,
        options: AppOptionValues = NO_OPTIONS,
    ) -> AppSession:
        return self._session(TravelWorld(seed=0), architecture, model, approver, options.get(TRAVELLER.name))

    def durable_session(
        self,
        architecture: str,
        model: Model | str | None,
        approver: Approver | None,
        options: AppOptionValues = NO_OPTIONS,
        *,
        state_dir: Path,
    ) -> AppSession:
        """A session whose bookings persist with a durable run, in `state_dir` (`retinue run travel --durable`).

        Resumed after a kill, the assistant finds the bookings it had made; a booking cut off mid-way is made
        again with the same idempotency key, which the world recognises, so none is made twice.
        """
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        world = TravelWorld.kept_in(state_dir / "bookings.sqlite", seed=0)
        with TravelWorld(seed=0) as fresh:  # what the run started from: the report shows what it changed
            started_from = fresh.snapshot()
        return self._session(world, architecture, model, approver, options.get(TRAVELLER.name), before=started_from)

    def _session(
        self,
        world: TravelWorld,
        architecture: str,
        model: Model | str | None,
        approver: Approver | None,
        traveller: str | None,
        before: dict[str, Any] | None = None,
    ) -> AppSession:
        agent = build_assistant(_architecture(architecture), world, model=model, approver=approver)
        try:
            profile = world.get_traveller(traveller or _default_traveller(world))
        except NotFoundError as exc:
            world.close()
            raise ConfigurationError(
                f"{self.name} knows no traveller {traveller!r}: give --{TRAVELLER.name} an id or email it knows, or "
                f"leave --{TRAVELLER.name} out to ask as its example traveller"
            ) from exc
        before = world.snapshot() if before is None else before

        def report() -> str:
            delta = snapshot_delta(before, world.snapshot())
            lines = [f"+ {describe_booking(booking)}" for booking in delta["added"]]
            lines += [f"- {describe_booking(booking)}" for booking in delta["removed"]]
            return "Bookings changed:\n" + "\n".join(lines) if lines else "No bookings were made or cancelled."

        # Who is asking, and nothing more: a home airport here (no traveller lives in San Francisco) made the
        # 1.5B search from it when the request said "from SFO". With nobody to approve bookings the answer is a
        # plan for whoever asks: the traveller id sent the 1.5B to look up old bookings, and the name alone to
        # call get_traveller with it, twice, and then give up.
        preface = "" if approver is unattended else f"(I am {profile.name}, traveller id {profile.traveller_id}.)"
        return AppSession(agent, report=report, close=world.close, preface=preface)

    def eval_tasks(self) -> Sequence[EvalTask]:
        return [
            EvalTask(
                id=task.id,
                instruction=task.user_instruction,
                expected_state=expected_snapshot(task),
                required_facts=task.facts,
                difficulty=task.difficulty,
                tags=task.tags,
                metadata={"kind": task.kind, "rationale": task.rationale},
            )
            for task in load_tasks()
        ]

    def episode(self, architecture: str, model: Model | str | None, task: EvalTask) -> Episode:
        world = TravelWorld(seed=0)
        agent = build_assistant(_architecture(architecture), world, model=model, approver=approve_all)
        return Episode(
            agent, final_state=world.snapshot, approver=approve_all, close=world.close, contains=answer_contains
        )


def _architecture(name: str) -> Architecture:
    for architecture in ARCHITECTURES:
        if architecture == name:
            return architecture
    raise ValueError(f"--arch must be one of {', '.join(ARCHITECTURES)}, not {name!r}")


def _default_traveller(world: TravelWorld) -> str:
    for traveller_id in world.traveller_ids():
        if world.get_traveller(traveller_id).home_airport == "SFO":
            return traveller_id
    return world.traveller_ids()[0]


APP = TravelApp()
