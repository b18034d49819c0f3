"""Run eval tasks end to end and grade them: end state, required facts, tool calls, pass^k, cost and turns.

An application provides an `EpisodeFactory`: for each trial of a task, a
fresh environment and the assistant agent working in it. The harness plays
the conversation between a user (simulated or scripted) and the assistant,
then compares the environment's final state with the task's expected state,
checks the required facts in what the assistant said, and writes a verdict.

A conversation ends when the user sends the stop signal (anywhere in a
message), at the task's limit of user messages, when a tool raises
`EndEpisode`, or as a failure: the assistant's run did not complete, the
episode's step budget ran out, or the user could not reply.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..agent import Agent
from ..approvals import Approver, approve_all
from ..events import Event, EventSink, ToolCallFinished, fan_out
from ..limits import Limits
from ..messages import Message
from ..result import RunResult
from ..usage import Usage
from .endings import EndEpisode, _episode_endings
from .facts import contains_fact, normalise
from .results import RESULT_EXCERPT_CHARS, EpisodeEnding, EvalReport, ToolCallRecord, TrialResult
from .split import TaskSplit
from .state_diff import diff_states
from .tasks import EvalTask
from .users import User, UserSimulationError, split_at_stop
from .verdict import write_verdict


@dataclass
class Episode:
    """One trial's world: the assistant, how to read the final state, and how to grade what happened.

    In an eval the conversation itself is the user's consent, so consequential tools are approved by default
    (`approve_all`); pass another approver to test refusals.

    Grading: a required fact is found when `normalise(fact)` appears in `normalise(said)` (see
    `contains_fact`); replace `normalise`, or the whole `contains(said, fact)` test. `diff_state(expected,
    actual)` describes how the end state differs, for the verdict. `check_tool_calls`, when given, reads every
    tool call of the episode and returns the rules they broke (an empty list when none); any problem fails the
    trial.

    `limits` replace the assistant's own for each of its runs (one per user message). `max_steps` bounds the
    assistant's model calls over the whole episode, all user messages together; running out fails the
    episode. `on_event` receives the events of every run of the episode (to record them, for example).
    """

    assistant: Agent[Any]
    final_state: Callable[[], Any]
    deps: Any = None
    approver: Approver | None = approve_all
    close: Callable[[], Awaitable[None] | None] | None = None
    contains: Callable[[str, str], bool] | None = None  # None: contains_fact with `normalise`
    limits: Limits | None = None
    normalise: Callable[[str], str] = normalise
    diff_state: Callable[[Any, Any], list[str]] = diff_states
    check_tool_calls: Callable[[Sequence[ToolCallRecord]], list[str]] | None = None
    max_steps: int | None = None
    on_event: EventSink | None = None

    def __post_init__(self) -> None:
        steps = self.max_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"Episode(max_steps={steps!r}): give a whole number of at least 1, or None for no budget")

    def said_contains(self, said: str, fact: str) -> bool:
        if self.contains is not None:
            return self.contains(said, fact)
        return contains_fact(said, fact, self.normalise)


EpisodeFactory = Callable[[EvalTask], Episode]
UserFactory = Callable[[EvalTask], User]


class _ToolCallLog:
    """Listens to an episode's runs: records every tool call, and which one ended the episode."""

    def __init__(self) -> None:
        self.calls: list[ToolCallRecord] = []
        self.user_turn = 0
        self.endings: list[EndEpisode] = []  # appended to by EndEpisode itself, through the context
        self.ended_by: str | None = None

    def __call__(self, event: Event) -> None:
        if not isinstance(event, ToolCallFinished):
            return
        call, result = event.call, event.result
        ok = not result.is_error
        text = result.content
        if self.endings and result.is_error and self.endings[0].reason in text:
            # The loop reports the call as stopped, and the calls it ran under (a specialist, a clone) with it:
            # the first did its work and ended the conversation, as designed; the others failed at nothing.
            ok = True
            if self.ended_by is None:
                self.ended_by, text = call.name, f"ended the conversation: {self.endings[0].reason}"
            else:
                text = f"stopped: {self.ended_by!r} ended the conversation"
        excerpt = text[:RESULT_EXCERPT_CHARS]
        self.calls.append(ToolCallRecord(self.user_turn, event.agent, call.name, dict(call.arguments), ok, excerpt))


@dataclass
class _Conversation:
    """What an episode has come to so far, as the harness plays it."""

    log: _ToolCallLog = field(default_factory=_ToolCallLog)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    runs: list[RunResult[Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    ending: EpisodeEnding = "user"
    error: str | None = None

    def end(self, ending: EpisodeEnding, error: str | None = None) -> None:
        self.ending, self.error = ending, error


async def run_episode(task: EvalTask, episode: Episode, user: User, *, trial: int = 0) -> TrialResult:
    """Play one conversation and grade it. The episode is closed afterwards, however it ended."""
    started = time.perf_counter()
    conversation = _Conversation()
    endings_token = _episode_endings.set(conversation.log.endings)
    try:
        answer: str | None = None  # what the user replies to; None asks for the opening
        while True:
            words = await _hear_user(user, answer, episode, conversation)
            if words is None:
                break
            answer = await _run_assistant(words, episode, conversation)
            if answer is None:
                break
            if conversation.log.user_turn >= task.max_turns:
                conversation.end("max_turns")
                break
        final_state = episode.final_state()
    finally:
        _episode_endings.reset(endings_token)
        if episode.close is not None:
            closing = episode.close()
            if closing is not None:
                await closing
    result = _graded(task, episode, trial, final_state, conversation, time.perf_counter() - started)
    user_usage = getattr(user, "usage", None)
    if isinstance(user_usage, Usage):
        result.user_cost_usd = user_usage.cost_usd
        result.user_tokens = user_usage.input_tokens + user_usage.output_tokens
    return result


async def _hear_user(user: User, answer: str | None, episode: Episode, conversation: _Conversation) -> str | None:
    """The user's next message, to send to the assistant; None when the conversation is over."""
    try:
        message = await user.reply(answer)
        if not isinstance(message, str):
            raise TypeError(f"reply() returned {type(message).__name__}, not a message")
    except Exception as exc:  # noqa: BLE001 - any failure of the user's side fails the episode, named
        why = str(exc) if isinstance(exc, UserSimulationError) else f"{type(exc).__name__}: {exc}"
        conversation.end("user_failed", f"the user failed: {why}")
        return None
    words, stopped = split_at_stop(message)
    if words:
        conversation.transcript.append(("user", words))  # the last words before a stop signal too, but not sent
    if stopped:
        conversation.end("user")
        return None
    if not words:
        conversation.end("user_failed", "the user failed: it sent an empty message")
        return None
    if episode.max_steps is not None and conversation.steps >= episode.max_steps:
        conversation.end("max_steps", _out_of_steps(episode, conversation))
        return None
    return words


async def _run_assistant(words: str, episode: Episode, conversation: _Conversation) -> str | None:
    """The assistant's answer to the user's `words`; None when the conversation is over."""
    log = conversation.log
    log.user_turn += 1
    result = await episode.assistant.run(
        words,
        history=conversation.history,
        deps=episode.deps,
        approver=episode.approver,
        on_event=fan_out(log, episode.on_event),
        limits=_limits_for_turn(episode.limits or episode.assistant.limits, episode.max_steps, conversation.steps),
    )
    conversation.runs.append(result)
    conversation.usage.add(result.total_usage)
    conversation.history = result.messages
    conversation.steps += result.turns
    if log.endings:
        ended_by = f"'{log.ended_by}'" if log.ended_by else "a tool"
        conversation.transcript.append(("note", f"[{ended_by} ended the conversation: {log.endings[0].reason}]"))
        if result.completed:  # a script's host function: the run went on to its answer
            conversation.transcript.append(("assistant", str(result.output)))
        conversation.end("tool")
        return None
    if not result.completed:
        out_of_steps = episode.max_steps is not None and conversation.steps >= episode.max_steps
        if result.stop_reason == "max_turns" and out_of_steps:
            conversation.end("max_steps", _out_of_steps(episode, conversation))
        else:
            conversation.end("assistant_failed", f"the assistant's run did not complete: {result.describe()}")
        conversation.transcript.append(("note", f"[{conversation.error}]"))
        return None
    answer = str(result.output)
    conversation.transcript.append(("assistant", answer))
    return answer


def _limits_for_turn(limits: Limits, max_steps: int | None, steps: int) -> Limits:
    """The assistant's limits for one run: its own, with no more turns than the episode has steps left."""
    if max_steps is None:
        return limits
    left = max_steps - steps
    if limits.max_turns is not None and limits.max_turns <= left:
        return limits
    return dataclasses.replace(limits, max_turns=left)


def _out_of_steps(episode: Episode, conversation: _Conversation) -> str:
    return (
        f"the episode's step budget ran out: {conversation.steps} of {episode.max_steps} assistant steps (model "
        f"calls of '{episode.assistant.name}') used over {conversation.log.user_turn} user message(s), and the "
        "conversation was not over"
    )


def _graded(
    task: EvalTask, episode: Episode, trial: int, final_state: Any, conversation: _Conversation, seconds: float
) -> TrialResult:
    said = "\n".join(text for role, text in conversation.transcript if role == "assistant")
    missing = [fact for fact in task.required_facts if not episode.said_contains(said, fact)]
    state_matches = task.expected_state is None or final_state == task.expected_state
    state_diff = [] if state_matches else episode.diff_state(task.expected_state, final_state)
    calls = conversation.log.calls
    problems = list(episode.check_tool_calls(calls)) if episode.check_tool_calls is not None else []
    usage = conversation.usage
    result = TrialResult(
        task_id=task.id,
        trial=trial,
        passed=state_matches and not missing and not problems and conversation.error is None,
        state_matches=state_matches,
        missing_facts=missing,
        user_turns=conversation.log.user_turn,
        cost_usd=usage.cost_usd,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        seconds=seconds,
        error=conversation.error,
        transcript=conversation.transcript,
        ending=conversation.ending,
        steps=conversation.steps,
        state_diff=state_diff,
        tool_calls=calls,
        tool_call_problems=problems,
        runs=conversation.runs,
    )
    result.verdict = write_verdict(result, task)
    return result


async def run_eval(
    tasks: Sequence[EvalTask],
    episodes: EpisodeFactory,
    users: UserFactory,
    *,
    trials: int = 1,
    label: str = "eval",
    concurrency: int = 4,
    on_trial: Callable[[TrialResult], None] | None = None,
    split: TaskSplit | None = None,
) -> EvalReport:
    """Run `trials` episodes of every task, at most `concurrency` at once.

    The report records when it started and the task ids; `split`, when the tasks are one side of a
    `split_tasks` split, records the seed and both sides' ids. Set the app, architecture and models on the
    returned report (`dataclasses.replace`) to have them saved with it.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a whole number of at least 1, not {trials!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number of at least 1, not {concurrency!r}")
    created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    semaphore = asyncio.Semaphore(concurrency)

    async def one(task: EvalTask, trial: int) -> TrialResult:
        async with semaphore:
            result = await run_episode(task, episodes(task), users(task), trial=trial)
        if on_trial is not None:
            on_trial(result)
        return result

    results = await asyncio.gather(*(one(task, trial) for task in tasks for trial in range(trials)))
    return EvalReport(
        label,
        trials,
        list(results),
        created_at=created_at,
        task_ids=[task.id for task in tasks],
        split=split.ids() if split is not None else None,
    )
