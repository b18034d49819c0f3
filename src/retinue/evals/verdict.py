"""A failed trial, explained in words: what went wrong, in the order an engineer would look.

The verdict is what a person reads in a report and what a reflecting model reads
when it proposes a better prompt, so it names the concrete evidence: the error,
the rows of the end state that differ, the facts never stated, the failing tool
calls with the errors they returned, and the assistant's last words.
"""

from __future__ import annotations

from .results import TrialResult
from .tasks import EvalTask

MAX_FAILING_CALLS = 8
LAST_WORDS_CHARS = 400

_ENDINGS = {
    "user": "the user ended the conversation",
    "max_turns": "the conversation reached the task's limit of {max_turns} user messages",
    "tool": "a tool ended the conversation",
    "max_steps": "the episode's step budget ran out",
    "assistant_failed": "the assistant's run did not complete",
    "user_failed": "the user could not reply",
}


def write_verdict(result: TrialResult, task: EvalTask) -> str:
    """Why `result` failed, as a few labelled paragraphs; "passed" for a trial that passed."""
    if result.passed:
        return "passed"
    ending = _ENDINGS[result.ending].format(max_turns=task.max_turns)
    parts = [
        f"FAILED: task {task.id!r}, trial {result.trial}: {ending} after {result.user_turns} user "
        f"message(s) and {result.steps} assistant step(s)."
    ]
    if result.error:
        parts.append(f"Error: {result.error}")
    if not result.state_matches:
        listed = "\n".join(f"  - {line}" for line in result.state_diff) or "  (no difference described)"
        parts.append(f"The end state differs from the expected state:\n{listed}")
    if result.missing_facts:
        facts = ", ".join(repr(fact) for fact in result.missing_facts)
        parts.append(f"Missing facts (not found in anything the assistant said): {facts}")
    if result.tool_call_problems:
        listed = "\n".join(f"  - {problem}" for problem in result.tool_call_problems)
        parts.append(f"The tool calls broke the task's rules:\n{listed}")
    failing = result.failing_tool_calls()
    if failing:
        shown = "\n".join(
            f"  - user message {call.user_turn}, {call.agent}: {call.describe()}"
            for call in failing[:MAX_FAILING_CALLS]
        )
        more = f"\n  ... and {len(failing) - MAX_FAILING_CALLS} more" if len(failing) > MAX_FAILING_CALLS else ""
        parts.append(f"Failing tool calls ({len(failing)} of {len(result.tool_calls)} calls):\n{shown}{more}")
    elif not result.tool_calls:
        parts.append("The assistant made no tool calls.")
    last = _last_words(result)
    if last is not None:
        parts.append(f"The assistant's last message: {last}")
    return "\n".join(parts)


def _last_words(result: TrialResult) -> str | None:
    said = [text for role, text in result.transcript if role == "assistant"]
    if not said:
        return None
    text = " ".join(said[-1].split())
    return repr(text if len(text) <= LAST_WORDS_CHARS else text[: LAST_WORDS_CHARS - 3] + "...")
