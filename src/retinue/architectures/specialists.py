"""Lead-Specialist: a lead plans and delegates, through tool calls, to domain specialists.

A specialist is an ordinary `Agent` (its own instructions, tools, model and
loop) that the lead sees as one tool, `ask_<name>`. The lead sends a question
and whatever context it chooses; the specialist works in its own conversation
and only its answer comes back, so its working context never floods the lead's.
Specialists asked in one model turn run concurrently, like any tool calls.

With a shared decision record (the default), the lead and its specialists
share what has been decided: each specialist reads the record with its
question and can add to it, and conflicting decisions are flagged to the lead.
With the request shared (also the default), each specialist also reads the
user's own words: a lead's paraphrase loses facts (dates, how many travel) and
adds guesses, and a specialist that only sees the paraphrase searches for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

import pydantic

from ..agent import Agent
from ..errors import ConfigurationError, ToolError
from ..messages import AssistantMessage, SendBack, ToolCall, UserMessage, is_answer_sent_back
from ..run_context import RunContext
from ..tools import Tool, ToolFunction
from .decisions import DecisionRecord, record_decision_tool
from .subagents import answer_text, describe_ending, run_sub_agent


class SpecialistQuestion(pydantic.BaseModel):
    # No description: the lead reads this schema once per specialist in every request, and the specialist reads
    # the user's own words below the question (share_request), so the question need not carry every fact.
    question: str


NeededSpecialists = Callable[[str], Collection[str]]
"""Names of the specialists a request needs, chosen from the request's words."""


def specialist(
    agent: Agent[Any],
    *,
    description: str | None = None,
    share_decisions: bool = True,
    may_decide: bool = True,
    share_request: bool = True,
    teammates: Sequence[str] | Callable[[str], Sequence[str]] = (),
) -> Tool:
    """Expose `agent` to a lead as the tool `ask_<agent.name>`.

    The tool's description is `description`, else the agent's own
    `description`: say what the specialist knows and can do. With
    `share_decisions`, the specialist reads the decisions made so far below its
    question and, with `may_decide`, can record its own (conflicts with earlier
    ones are refused and reported to the lead). With `share_request`, the
    specialist reads the lead's latest user message below the lead's question.
    `teammates` are the `ask_` tools a request needs, the same for every
    request or chosen from its words by a function: the answer ends by naming
    those not yet asked about the latest request, or, once all have been, by
    telling the lead to answer.
    """
    consulted = agent
    if share_decisions and may_decide and not any(t.name == "record_decision" for t in agent.tools_for_run()):
        consulted = agent.override(tools=[*agent.tools, record_decision_tool(can_overrule=False)])
    tool_name = _ask_tool_name(agent)
    domain = description or agent.description or f"Ask the {agent.name} specialist."

    async def ask_specialist(context: RunContext, call: ToolCall, question: str) -> str:
        record = DecisionRecord.of(context)
        prompt = question
        request = _latest_request(context) if share_request else None
        if request is not None and request.strip() != question.strip():
            prompt += f"\n\nThe request this is for, in the user's words:\n{request}"
        if share_decisions:
            prompt += f"\n\nDecisions already made on this task:\n{record.render()}"
        conflicts_before = len(record.conflicts)
        result = await run_sub_agent(consulted, prompt, context, call, kind="specialist")
        answer = answer_text(result)
        # Specialists asked in the same turn share the record: report only the conflicts this one raised.
        new_conflicts = [c for c in record.conflicts[conflicts_before:] if c.proposed.decided_by == agent.name]
        if new_conflicts:
            listed = "\n".join(f"- {conflict.describe()}" for conflict in new_conflicts)
            answer += f"\n\nDecision conflicts raised by {agent.name}:\n{listed}"
        if not result.completed:
            raise ToolError(f"the {agent.name} specialist did not finish ({describe_ending(result)}). {answer}".strip())
        team = teammates(_latest_request(context) or "") if callable(teammates) else teammates
        asked = _tools_called_since_request(context)
        unasked = [name for name in team if name != tool_name and name not in asked]
        if unasked:
            answer += (
                f"\n\nNot asked yet about this request: {', '.join(unasked)}. Ask only those the request needs; "
                "when you have what it needs, answer."
            )
        elif team:
            # Told nothing once its team had answered, the 1.5B travel lead went on to ask for cars and weather
            # nobody wanted, and answered with the last specialist's words instead of the plan.
            answer += (
                f"\n\nAsked about this request: {', '.join(team)}. Answer the user now with what they found, "
                "unless the request asks for more."
            )
        return answer

    return Tool(
        name=tool_name,
        description=domain,
        function=ask_specialist,
        args_model=SpecialistQuestion,
        context_parameter="context",
        call_parameter="call",
        run_in_thread=False,
        # Asked again after a crash, it re-enters the same child run (its id derives from this call's), so a
        # question cut off mid-way is asked again rather than reported uncertain.
        effect="write",
        idempotent=True,
    )


def lead_agent(
    name: str,
    *,
    specialists: Sequence[Agent[Any]],
    instructions: str = "",
    tools: Sequence[Tool | ToolFunction] = (),
    share_decisions: bool = True,
    specialists_decide: bool = True,
    share_request: bool = True,
    remind_unasked: bool | Collection[str] | NeededSpecialists = True,
    send_back_announced_asks: bool = True,
    **agent_options: Any,
) -> Agent[Any]:
    """A lead that can consult each of `specialists`, and record decisions they must all respect.

    Without `specialists_decide`, only the lead records decisions; the specialists still read them. Small
    models, given the tool, record their own search as a decision instead of answering: Qwen2.5-Coder-1.5B's
    flights specialist recorded the whole request as a topic, and the others then answered with that text.
    With `remind_unasked`, each specialist's answer ends by naming the specialists not yet asked about the
    latest request: Qwen2.5-Coder-1.5B, as a travel lead, asked for flights and then answered without a hotel.
    Given names of specialists, only those are named: the ones every request needs (reminded of all four, the
    1.5B asked for cars and weather that nobody wanted). Given a function, it names the specialists each request
    needs from the request's words (reminded of hotels for a flight, the 1.5B asked for a hotel nobody wanted).
    With `send_back_announced_asks`, an answer that says
    the lead will ask a specialist it has not asked about the request ("I will ask the hotels specialist ...")
    is sent back, and the next turn must call a tool: the 1.5B wrote that as its final answer, and the run ended
    there. With named or chosen `remind_unasked`, only those specialists are checked.
    """
    needed = _needed_specialists(remind_unasked, specialists)

    def team(request: str) -> list[str]:
        # A lone specialist has no teammates to name, and nothing else to ask before answering.
        return [_ask_tool_name(member) for member in needed(request)] if len(specialists) > 1 else []

    # Specialists first: delegating is the lead's job, and models (small ones above all) favour the tools
    # they read first.
    lead_tools: list[Tool | ToolFunction] = [
        specialist(
            member,
            share_decisions=share_decisions,
            may_decide=specialists_decide,
            share_request=share_request,
            teammates=team if callable(remind_unasked) else team(""),
        )
        for member in specialists
    ]
    if share_decisions:
        lead_tools.append(record_decision_tool(can_overrule=True))
    lead_tools += tools
    if send_back_announced_asks:
        checks = tuple(agent_options.pop("answer_checks", ()))
        # Named or chosen, the ones a request needs are the only ones checked: made to call whatever its answer
        # mentioned, the 1.5B asked for the cars and weather it offered to look into.
        every_one = isinstance(remind_unasked, bool)
        check = _announced_asks_check(specialists, needed, check_every_announcement=every_one)
        # First: an answer that only announces an ask is no answer for the other checks to judge.
        agent_options["answer_checks"] = (check, *checks)
    return Agent(name=name, instructions=instructions, tools=lead_tools, **agent_options)


def _needed_specialists(
    remind_unasked: bool | Collection[str] | NeededSpecialists, specialists: Sequence[Agent[Any]]
) -> Callable[[str], list[Agent[Any]]]:
    """The specialists a request needs, as `remind_unasked` says, in the lead's order of them."""
    names = [member.name for member in specialists]

    def members(chosen: Collection[str], said_by: str) -> list[Agent[Any]]:
        unknown = set(chosen) - set(names)
        if unknown:
            raise ConfigurationError(f"{said_by} names {sorted(unknown)}, which are not among the specialists {names}.")
        return [member for member in specialists if member.name in chosen]

    if isinstance(remind_unasked, bool):
        every_one = list(specialists) if remind_unasked else []
        return lambda request: every_one
    if callable(remind_unasked):
        choose = remind_unasked
        return lambda request: members(choose(request), "remind_unasked's choice for this request")
    fixed = members(remind_unasked, "remind_unasked")
    return lambda request: fixed


def _announced_asks_check(
    specialists: Sequence[Agent[Any]],
    needed: Callable[[str], list[Agent[Any]]],
    *,
    check_every_announcement: bool,
) -> Callable[[RunContext, str], SendBack | None]:
    """An answer check: the problem with an answer that announces asking a specialist instead of asking it.

    Every specialist's announcement is checked with `check_every_announcement`, else only those of the
    specialists the request needs. Of those the request needs (none by default), naming the domain is enough:
    an answer that asks the user about hotels, the hotels specialist unasked, has not done its work.
    """
    names = {_ask_tool_name(member): member.name for member in specialists}
    intent = (
        r"\b(?:will|'ll|am going to|'m going to|let me|need to|should)\b"
        r"[^.\n]{0,60}?\b(?:ask|consult|check with)\b"
    )
    announced: dict[str, re.Pattern[str]] = {}
    # Of the specialists a request needs, naming the domain is enough.
    announced_or_named: dict[str, re.Pattern[str]] = {}
    for member in specialists:
        tool, domain = _ask_tool_name(member), re.escape(member.name.rstrip("s"))
        announcement = rf"\b{re.escape(tool)}\b|{intent}[^.\n]{{0,40}}?\b{re.escape(member.name)}\b"
        announced[tool] = re.compile(announcement, re.IGNORECASE)
        announced_or_named[tool] = re.compile(rf"{announcement}|\b{domain}s?\b|\bask_{domain}s?\b", re.IGNORECASE)

    def check(context: RunContext, answer: str) -> SendBack | None:
        asked = _tools_called_since_request(context)
        patterns = announced
        if not check_every_announcement:
            needed_by_request = [_ask_tool_name(member) for member in needed(_latest_request(context) or "")]
            patterns = {tool: announced_or_named[tool] for tool in needed_by_request}
        for tool, pattern in patterns.items():
            if tool not in asked and pattern.search(answer):
                # The retry must call a tool: told so in words, the 1.5B answered with the words.
                return SendBack(
                    f"Your answer speaks of asking the {names[tool]} specialist, but you did not call {tool}. "
                    f"Call {tool} now.",
                    reply_with="a tool call",
                )
        return None

    return check


def _latest_request(context: RunContext) -> str | None:
    for message in reversed(context.messages):
        if isinstance(message, UserMessage) and not is_answer_sent_back(message):
            return message.content
    return None


def _tools_called_since_request(context: RunContext) -> set[str]:
    called: set[str] = set()
    for message in reversed(context.messages):
        if isinstance(message, UserMessage) and not is_answer_sent_back(message):
            break
        if isinstance(message, AssistantMessage):
            called.update(call.name for call in message.tool_calls)
    return called


def _ask_tool_name(agent: Agent[Any]) -> str:
    return "ask_" + _tool_safe(agent.name)


def _tool_safe(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_").lower()[:60] or "agent"
