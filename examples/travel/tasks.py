"""Eval tasks for the travel assistant, with their reference solutions.

Each task is what a simulated user wants (hidden from the agent), the tool
calls a correct agent makes (`expected_actions`), calls the world must refuse
(`forbidden_actions`), and facts the final answer must mention. The expected
end state is never written down: `expected_snapshot` replays the expected
actions on a fresh world, so it cannot drift from the data.

The tasks themselves are written in `task_set`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from retinue.errors import ToolError

from .tools import make_tools
from .world import TravelWorld

Difficulty = Literal["easy", "medium", "hard"]
# booking: the end state must change; information: the user only asks, nothing
# changes; refusal: the request breaks a rule and the end state must not change.
TaskKind = Literal["booking", "information", "refusal"]


class Action(BaseModel):
    """One call of an agent-facing tool (see `tools.make_tools`).

    In `arguments`, a value "$N" stands for the id of the booking made by
    expected action N of the same task.
    """

    model_config = ConfigDict(frozen=True)

    tool: str
    arguments: dict[str, Any]


class Task(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    difficulty: Difficulty
    kind: TaskKind
    domains: tuple[str, ...]
    traveller_id: str
    user_instruction: str = Field(description="Hidden from the agent: what the simulated user wants and how to behave.")
    expected_actions: tuple[Action, ...]
    forbidden_actions: tuple[Action, ...] = ()
    facts: tuple[str, ...] = Field(description="Strings the final answer must contain (see answer_contains).")
    rationale: str = Field(description="Why the expected outcome is right, for people reviewing results.")
    seed: int = 0

    @property
    def tags(self) -> tuple[str, ...]:
        """Labels for slicing results: the kind, plus "two-domains" and "changes-mind" where they apply."""
        tags: list[str] = [self.kind]
        if len(set(self.domains) - {"bookings"}) >= 2:
            tags.append("two-domains")
        tools = [action.tool for action in self.expected_actions]
        if "cancel_booking" in tools and any(tool.startswith("book_") for tool in tools):
            tags.append("changes-mind")
        return tuple(tags)


# ----------------------------------------------------------------- references


def reference_solve(task: Task, world: TravelWorld) -> list[str]:
    """Apply the task's expected actions to `world` through the agent-facing tools; return what each call showed.

    A read-only call may fail (that is often the point, e.g. a date beyond the
    booking window); its error text is recorded. A failing write means the
    task no longer fits the data, and raises.
    """
    tools = {tool.name: tool for group in make_tools(world).values() for tool in group}
    transcript: list[str] = []
    created: dict[int, str] = {}
    for index, action in enumerate(task.expected_actions):
        arguments = {key: _resolve(value, created) for key, value in action.arguments.items()}
        tool = tools[action.tool]
        try:
            output = str(tool.function(**arguments))
        except ToolError as error:
            if tool.requires_approval:
                raise RuntimeError(
                    f"task {task.id}: expected action {index} ({action.tool}) failed: {error}"
                ) from error
            output = f"Error: {error}"
        booked = re.match(r"Booked (BK\d+)", output)
        if booked:
            created[index] = booked.group(1)
        transcript.append(output)
    return transcript


def _resolve(value: Any, created: dict[int, str]) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\$\d+", value):
        return created[int(value[1:])]
    return value


def expected_snapshot(task: Task) -> dict[str, Any]:
    """The end state a correct agent leaves: the expected actions replayed on a fresh world."""
    with TravelWorld(seed=task.seed) as world:
        reference_solve(task, world)
        return world.snapshot()


def _normal(text: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()
    plain = re.sub(r"(?<=\d),(?=\d{3})", "", plain)  # 1,234 -> 1234
    return re.sub(r"(?<=[a-z])\s+(?=\d)", "", plain)  # NS 120 -> ns120


def answer_contains(answer: str, fact: str) -> bool:
    """Whether an answer states a fact, forgiving case, accents, thousands separators and punctuation.

    Numbers must stand alone ("463" is not found in "1463"); other facts are
    compared with spaces and punctuation removed ("non-refundable" matches
    "non refundable").
    """
    normal_answer, normal_fact = _normal(answer), _normal(fact)
    if re.fullmatch(r"\d+", normal_fact):
        return re.search(rf"(?<!\d){normal_fact}(?!\d)", normal_answer) is not None
    squeeze = functools.partial(re.sub, r"[^0-9a-z:]", "")
    return squeeze(normal_fact) in squeeze(normal_answer)


def missing_facts(task: Task, answer: str) -> list[str]:
    return [fact for fact in task.facts if not answer_contains(answer, fact)]


# ------------------------------------------------------------------ loading


@functools.cache
def load_tasks(seed: int = 0) -> tuple[Task, ...]:
    """Every task, built against a fresh world of `seed` (the task set is designed for seed 0)."""
    from .task_set import build_tasks  # the task set imports this module's types

    with TravelWorld(seed=seed) as world:
        tasks = build_tasks(world)
    ids = [task.id for task in tasks]
    if len(set(ids)) != len(ids):
        raise RuntimeError("task ids are not unique")
    return tasks


def get_task(task_id: str, seed: int = 0) -> Task:
    for task in load_tasks(seed):
        if task.id == task_id:
            return task
    raise KeyError(f"no task {task_id!r}; ids: {', '.join(task.id for task in load_tasks(seed))}")
