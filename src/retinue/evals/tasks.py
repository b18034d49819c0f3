"""What an eval task is: a hidden user goal, the expected end state, and facts the answer must hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Difficulty = Literal["easy", "medium", "hard"]


@dataclass(frozen=True)
class EvalTask:
    """One task, in the style of tau-bench.

    Args:
        id: A stable name, used to compare runs.
        instruction: What the (simulated) user wants, hidden from the assistant: who they are, their goal,
            what they will accept, when they change their mind.
        expected_state: The environment's state after a correct episode (compared with `==`); None when
            only the answer is graded.
        required_facts: Strings the assistant's messages must contain, such as a price or a flight number;
            matched after normalising both (see `retinue.evals.normalise`), so "$23,553" is found in "23553".
        opening: The user's first message; None lets the simulated user write it.
        difficulty: For reporting, and to keep both sides of a train/held-out split alike.
        tags: Free labels for slicing results ("two-domains", "changes-mind", "refusal").
        max_turns: The most user messages an episode may have.
    """

    id: str
    instruction: str
    expected_state: Any = None
    required_facts: tuple[str, ...] = ()
    opening: str | None = None
    difficulty: Difficulty = "medium"
    tags: tuple[str, ...] = ()
    max_turns: int = 8
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A task that cannot be graded as written would pass or fail for a reason nobody sees.
        if not isinstance(self.id, str) or not self.id.strip():
            raise ValueError(f"EvalTask(id={self.id!r}): give every task a non-empty id")
        if isinstance(self.required_facts, str):
            raise ValueError(
                f"EvalTask {self.id!r}: required_facts is one string, {self.required_facts!r}; give a tuple of "
                'facts, such as ("HX-1",)'
            )
        blank = [fact for fact in self.required_facts if not isinstance(fact, str) or not fact.strip()]
        if blank:
            raise ValueError(f"EvalTask {self.id!r}: required facts must be non-empty strings, not {blank!r}")
        if self.difficulty not in get_args(Difficulty):
            raise ValueError(
                f"EvalTask {self.id!r}: difficulty must be one of {', '.join(get_args(Difficulty))}, "
                f"not {self.difficulty!r}"
            )
        if isinstance(self.max_turns, bool) or not isinstance(self.max_turns, int) or self.max_turns < 1:
            raise ValueError(
                f"EvalTask {self.id!r}: max_turns must be a whole number of at least 1, not {self.max_turns!r}"
            )
