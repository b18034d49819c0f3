"""Tool testing: an agent exercises one tool with calls it makes up, and proposes a better description.

`retinue improve APP --tool NAME` builds the app's agent tree for an eval episode (a fresh world, as an eval
has), takes the tool out of it, and gives it to the `tool-tester` agent (TESTER_INSTRUCTIONS, below). The
tester calls it the ways an agent would, right and wrong; every call and result is recorded from the run's
events. It answers with a `ToolReview`: the problems it saw, a new description, and better error messages.

The description becomes the patch's change. Error messages are code, so they go into the patch as
suggestions for whoever owns the tool; applying the patch leaves them alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pydantic

from ..agent import Agent
from ..approvals import approve_all
from ..errors import ConfigurationError
from ..evals import EvalTask
from ..events import Event, EventSink, ToolCallFinished, fan_out
from ..limits import Limits
from ..models.base import Model
from .patch import Patch, Suggestion, TextChange
from .rollouts import ImprovableApp, model_name
from .spending import Spending
from .texts import tree_tools

TESTER_INSTRUCTIONS = """You test one tool of an AI agent system before agents rely on it. Its description and \
parameters are what the agents read; you see the same.

Call the tool many ways, the way agents would: typical calls, edge cases (empty or odd text, unusual \
capitalisation, dates or numbers at the ends of their range, values written as words), and mistakes agents make \
(a missing or misspelt argument, a wrong type, a value out of range, a name instead of an id). Make at least \
{calls} calls; put several in one turn when they do not depend on each other.

Watch each result: an error that does not say how to fix the call, an exception, a result that is confusing or \
wrong, an argument silently ignored, a description that promises what the tool does not do or leaves out what \
an agent needs to know.

Then answer with your review: the problems you found, each with the call that showed it; a new description of \
the tool that tells an agent what it needs to call it right the first time; and, for each error message that did \
not say how to fix the call, the situation, the message today and a better one."""


class Problem(pydantic.BaseModel):
    call: str = pydantic.Field(description="The call that showed the problem, as name(arguments).")
    problem: str = pydantic.Field(description="What went wrong, or what would mislead an agent.")


class ErrorMessageSuggestion(pydantic.BaseModel):
    when: str = pydantic.Field(description="The situation the message is for, e.g. 'a date in the past'.")
    current: str = pydantic.Field(description="The message the tool gives today.")
    suggested: str = pydantic.Field(description="A message that says what was wrong and how to fix the call.")


class ToolReview(pydantic.BaseModel):
    """The tester's answer."""

    problems: list[Problem] = pydantic.Field(default_factory=list)
    description: str = pydantic.Field(description="The whole new description of the tool.")
    error_messages: list[ErrorMessageSuggestion] = pydantic.Field(default_factory=list)


@dataclass(frozen=True)
class ExercisedCall:
    """One call the tester made, and what the tool gave back."""

    arguments: dict[str, Any]
    ok: bool
    result: str


@dataclass
class ToolTestResult:
    """What tool testing found: every call, the failing ones, the tester's review, and the patch it makes."""

    app: str
    architecture: str
    path: str
    model: str
    calls: list[ExercisedCall]
    review: ToolReview | None
    patch: Patch | None
    cost_usd: float | None
    seconds: float
    stop_reason: str

    @property
    def failures(self) -> list[ExercisedCall]:
        return [call for call in self.calls if not call.ok]

    def describe(self) -> str:
        lines = [
            f"Tool testing of {self.path} ({self.app}, {self.architecture}) by {self.model}: {len(self.calls)} calls, "
            f"{len(self.failures)} failed"
        ]
        lines += [f"  x {_short(call.arguments)} -> {_short(call.result)}" for call in self.failures[:20]]
        if self.review is not None:
            lines.append(f"Problems the tester reported ({len(self.review.problems)}):")
            lines += [f"  - {problem.call}: {problem.problem}" for problem in self.review.problems]
        if self.patch is not None and self.patch.changes:
            lines.append("A new description is proposed (see the patch).")
        if self.patch is not None and self.patch.suggestions:
            lines.append(f"{len(self.patch.suggestions)} error message(s) to change in the code (see the patch).")
        cost = "unknown" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        lines.append(f"Spent {cost}, {self.seconds:.1f}s; {self.stop_reason}.")
        return "\n".join(lines)


async def exercise_tool(
    app: ImprovableApp | str,
    *,
    tool: str,
    architecture: str | None = None,
    model: Model | str | None = None,
    calls: int = 12,
    max_cost: float | None = None,
    task: EvalTask | None = None,
    on_event: EventSink | None = None,
    instructions: str = TESTER_INSTRUCTIONS,
) -> ToolTestResult:
    """Have the tester agent (on `model`) exercise the tool `tool` of `app` and review it.

    `tool` is a tool's name, or its text path ("travel-lead/flights.tool.search_flights") when several agents
    have a tool of that name. The tool works in the world of an eval episode of `task` (the app's first task
    by default), with every call approved, as in an eval. `calls` is how many calls the tester is asked for;
    its run may take up to `calls` turns. `max_cost` (dollars) bounds the run.
    """
    started = time.perf_counter()
    if isinstance(app, str):
        from ..apps import load_app

        app = load_app(app)
    architecture = architecture or app.architectures[0]
    if architecture not in app.architectures:
        raise ConfigurationError(
            f"{app.name} has no architecture {architecture!r}; it has {', '.join(app.architectures)}"
        )
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise ConfigurationError(f"calls must be a whole number of at least 1, not {calls!r}")
    tasks = [task] if task is not None else list(app.eval_tasks())
    if not tasks:
        raise ConfigurationError(f"{app.name} has no eval tasks, whose episodes would give the tool its world")
    episode = app.episode(architecture, model, tasks[0])
    spending = Spending(max_cost_usd=max_cost)
    tool_calls: list[ExercisedCall] = []
    try:
        tools = tree_tools(episode.assistant)
        path = _tool_path(tools, tool)
        exercised = tools[path]

        def record(event: Event) -> None:
            if isinstance(event, ToolCallFinished) and event.call.name == exercised.name:
                result = event.result
                tool_calls.append(ExercisedCall(dict(event.call.arguments), not result.is_error, result.content))

        tester: Agent[ToolReview] = Agent(
            name="tool-tester",
            instructions=instructions.format(calls=calls),
            model=model,
            tools=[exercised],
            output_type=ToolReview,
            limits=Limits(max_turns=calls + 2, max_cost_usd=max_cost),
        )
        prompt = f"Test the tool `{exercised.name}`. Its description:\n{exercised.description}"
        result = await tester.run(prompt, approver=approve_all, on_event=fan_out(record, spending, on_event))
    finally:
        if episode.close is not None:
            closing = episode.close()
            if closing is not None:
                await closing
    review = result.output if result.completed else None
    patch = None
    if review is not None:
        patch = _patch(app.name, architecture, path, exercised.description, review)
    return ToolTestResult(
        app=app.name,
        architecture=architecture,
        path=path,
        model=model_name(model),
        calls=tool_calls,
        review=review,
        patch=patch,
        cost_usd=spending.known_cost,
        seconds=time.perf_counter() - started,
        stop_reason="the tester answered" if review is not None else f"the tester gave no review: {result.describe()}",
    )


def _patch(app: str, architecture: str, path: str, description: str, review: ToolReview) -> Patch:
    changes: tuple[TextChange, ...] = ()
    if review.description.strip() and review.description.strip() != description.strip():
        changes = (TextChange(path, description, review.description.strip()),)
    suggestions = tuple(
        Suggestion(path, f"the error message for {item.when} (today: {item.current!r})", item.suggested)
        for item in review.error_messages
    )
    report = {"problems": [problem.model_dump() for problem in review.problems]}
    return Patch(app, architecture, changes, suggestions, report)


def _tool_path(tools: dict[str, Any], wanted: str) -> str:
    if wanted in tools:
        return wanted
    matches = [path for path in tools if path.rsplit(".tool.", 1)[-1] == wanted]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        names = sorted({path.rsplit(".tool.", 1)[-1] for path in tools})
        raise ConfigurationError(f"the agent tree has no tool {wanted!r}; its tools: {', '.join(names)}")
    raise ConfigurationError(f"several agents have a tool {wanted!r}; name one by its path: {', '.join(matches)}")


def _short(value: Any, width: int = 160) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
