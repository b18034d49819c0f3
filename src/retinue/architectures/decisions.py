"""A record of decisions shared by a lead and its specialists.

The seed's known failure of lead-specialist systems: the car-rental specialist
assumes something the flights specialist decided differently. The record
gives every agent of one run tree the same view of what is decided (dates,
cities, budget, the chosen flight). Each specialist sees it in its context
and can add to it; a specialist that decides something contrary to the record
is told so at once, and the conflict is reported back to the lead.

In a durable run the record is journalled state: each change is saved to the
run's journal before `record_decision` answers, and a resumed run starts from
the saved decisions. Concurrent specialists change it in an order no replay
could reproduce, so it is saved, not rebuilt by running their calls again.
`conflicts` lists the conflicts raised in this process: on resume it starts
empty, and a conflict comes back when the call that raised it is replayed (a
lead learns of those raised by the specialist it asked, resumed or not).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..events import Notice
from ..messages import ToolCall
from ..run_context import RunContext, TreeState
from ..tools import IdempotencyKey, Tool, tool_from_function

_STATE_NAME = "decisions"  # its name in the journal


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
    proposals: dict[str, DecisionConflict | None] = field(default_factory=dict)
    """What each proposal with an idempotency key came to: its conflict, or None (recorded)."""

    @staticmethod
    def of(context: RunContext) -> DecisionRecord:
        """The record shared by the whole tree `context` belongs to (as its journal saved it, on resume)."""
        return context.tree_state(DECISION_RECORD)

    def propose(self, decision: Decision, *, overrule: bool = False, key: str | None = None) -> DecisionConflict | None:
        """Record `decision` unless it contradicts an earlier one by another agent (then return the conflict).

        `overrule` lets the lead change a decision on purpose. A proposal repeated with the same idempotency
        `key` (a call run again after a restart) changes nothing and comes to what it came to the first time.
        """
        if key is not None and key in self.proposals:
            return self.raise_again(key)
        topic = _normalise(decision.topic)
        recorded = self.decisions.get(topic)
        if (
            recorded is not None
            and not overrule
            and recorded.decided_by != decision.decided_by
            and _normalise(recorded.value) != _normalise(decision.value)
        ):
            conflict = DecisionConflict(recorded.topic, recorded, decision)
            self.conflicts.append(conflict)
            if key is not None:
                self.proposals[key] = conflict
            return conflict
        self.decisions[topic] = decision
        if key is not None:
            self.proposals[key] = None
        return None

    def raise_again(self, key: str) -> DecisionConflict | None:
        """What the proposal `key` came to; its conflict is listed again if this process had not listed it."""
        conflict = self.proposals.get(key)
        if conflict is not None and not any(listed is conflict for listed in self.conflicts):
            self.conflicts.append(conflict)
        return conflict

    def to_json(self) -> str:
        def conflict_fields(conflict: DecisionConflict | None) -> list[Any] | None:
            if conflict is None:
                return None
            return [conflict.topic, asdict(conflict.recorded), asdict(conflict.proposed)]

        return json.dumps(
            {
                "decisions": {topic: asdict(decision) for topic, decision in self.decisions.items()},
                "proposals": {key: conflict_fields(conflict) for key, conflict in self.proposals.items()},
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> DecisionRecord:
        """A saved record; its conflicts are in `proposals`, listed again as their calls are replayed."""
        data: dict[str, Any] = json.loads(text)
        proposals: dict[str, DecisionConflict | None] = {}
        for key, fields in data["proposals"].items():
            if fields is None:
                proposals[key] = None
            else:
                topic, recorded, proposed = fields
                proposals[key] = DecisionConflict(topic, Decision(**recorded), Decision(**proposed))
        return cls(
            decisions={topic: Decision(**fields) for topic, fields in data["decisions"].items()},
            proposals=proposals,
        )

    def render(self) -> str:
        """The record as the lines a model reads."""
        if not self.decisions:
            return "No decisions recorded yet."
        lines = []
        for decision in self.decisions.values():
            note = f" ({decision.note})" if decision.note else ""
            lines.append(f"- {decision.topic}: {decision.value} [decided by {decision.decided_by}]{note}")
        return "\n".join(lines)


def _saved_record(root: RunContext) -> DecisionRecord:
    """The tree's record as its journal saved it: empty for a new tree or one without a journal."""
    saved = root.journal.load_state(_STATE_NAME)
    return DecisionRecord() if saved is None else DecisionRecord.from_json(saved)


DECISION_RECORD = TreeState("decision record", _saved_record)  # one per run tree, read by the lead and specialists


def record_decision_tool(*, can_overrule: bool) -> Tool:
    """The `record_decision` tool: for the lead (who may overrule) or for specialists (who may not)."""

    async def record_decision(context: RunContext, key: IdempotencyKey, topic: str, value: str, note: str = "") -> str:
        # The model reads this line and the parameters' names in every request of the lead (and of each
        # specialist that may decide): they say enough, and a longer text costs in all of those requests.
        """Record a decision every agent must respect: a date, a city, a budget, a flight."""
        record = DecisionRecord.of(context)
        decision = Decision(topic.strip(), value.strip(), context.agent.name, note.strip())
        conflict = record.propose(decision, overrule=can_overrule, key=key)
        await context.journal.save_state(_STATE_NAME, record.to_json)
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

    def replay_decision(context: RunContext, call: ToolCall, key: str) -> None:
        DecisionRecord.of(context).raise_again(key)

    # A write to the shared record, idempotent by its key: a call cut off by a restart is simply run again.
    decision_tool = tool_from_function(record_decision, run_in_thread=False, effect="write", idempotent=True)
    decision_tool.replay = replay_decision
    return decision_tool


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())
