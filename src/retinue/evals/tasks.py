"""What an eval task is: a hidden user goal, the expected end state, and facts the answer must hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
        required_facts: Strings the assistant's messages must contain (case-insensitive), such as a price
            or a flight number.
        opening: The user's first message; None lets the simulated user write it.
        difficulty: For reporting.
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
