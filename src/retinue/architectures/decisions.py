"""A record of decisions shared by a lead and its specialists.

The seed's known failure of lead-specialist systems: the car-rental specialist
assumes something the flights specialist decided differently. The record
gives every agent of one run tree the same view of what is decided (dates,
cities, budget, the chosen flight). Each specialist sees it in its context
and can add to it; a specialist that decides something contrary to the record
is told so at once, and the conflict is reported back to the lead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..events import Notice
from ..run_context import RunContext
from ..tools import Tool, tool_from_function

_SHARED_KEY = "retinue.decisions"


@dataclass(frozen=True, slots=True)
class Decision:
    topic: str
    value: str
    decided_by: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class DecisionConflict:
    topic: str
    recorded: Decision
    proposed: Decision

    def describe(self) -> str:
        return (
            f"'{self.proposed.decided_by}' wanted {self.topic} = {self.proposed.value!r}, but "
            f"'{self.recorded.decided_by}' had decided {self.topic} = {self.recorded.value!r}"
        )


@dataclass(slots=True)
class DecisionRecord:
    """Decisions by topic, for one run tree. Topics are compared case-insensitively."""

    decisions: dict[str, Decision] = field(default_factory=dict)
    conflicts: list[DecisionConflict] = field(default_factory=list)

    @staticmethod
    def of(context: RunContext) -> DecisionRecord:
        """The record shared by the whole tree `context` belongs to."""
        record = context.shared.get(_SHARED_KEY)
        if record is None:
            record = context.shared[_SHARED_KEY] = DecisionRecord()
        assert isinstance(record, DecisionRecord)
        return record

    def propose(self, decision: Decision, *, overrule: bool = False) -> DecisionConflict | None:
        """Record `decision` unless it contradicts an earlier one by another agent (then return the conflict).

        `overrule` lets the lead change a decision on purpose.
        """
        key = _normalise(decision.topic)
        recorded = self.decisions.get(key)
        if (
            recorded is not None
            and not overrule
            and recorded.decided_by != decision.decided_by
            and _normalise(recorded.value) != _normalise(decision.value)
        ):
            conflict = DecisionConflict(recorded.topic, recorded, decision)
            self.conflicts.append(conflict)
            return conflict
        self.decisions[key] = decision
        return None

    def render(self) -> str:
        """The record as the lines a model reads."""
        if not self.decisions:
            return "No decisions recorded yet."
        lines = []
        for decision in self.decisions.values():
            note = f" ({decision.note})" if decision.note else ""
            lines.append(f"- {decision.topic}: {decision.value} [decided by {decision.decided_by}]{note}")
        return "\n".join(lines)


def record_decision_tool(*, can_overrule: bool) -> Tool:
    """The `record_decision` tool: for the lead (who may overrule) or for specialists (who may not)."""

    async def record_decision(context: RunContext, topic: str, value: str, note: str = "") -> str:
        """Record a decision every agent on this task must respect, such as a date, a city, a budget or a chosen flight.

        Args:
            topic: What the decision is about, in a few words (a date, a flight, a hotel, a budget).
            value: The decision itself, exactly as found or as the user said it.
            note: Why, or anything the other agents should know about it.
        """
        record = DecisionRecord.of(context)
        decision = Decision(topic.strip(), value.strip(), context.agent.name, note.strip())
        conflict = record.propose(decision, overrule=can_overrule)
        if conflict is None:
            return f"Recorded. Decisions so far:\n{record.render()}"
        if context.emit is not None:
            context.emit(
                Notice(
                    run_id=context.run_id,
                    agent=context.agent.name,
                    kind="decision_conflict",
                    message=conflict.describe(),
                    data={"topic": conflict.topic, "recorded": conflict.recorded.value, "proposed": value},
                )
            )
        return (
            f"Not recorded: this conflicts with an earlier decision: {conflict.describe()}. "
            "Work with the recorded value; if you believe it is wrong, say so in your answer and the lead will decide."
        )

    return tool_from_function(record_decision, run_in_thread=False)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())
