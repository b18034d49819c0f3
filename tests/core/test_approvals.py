"""Approvals: consequential tools run only when the run's approver says yes.

A tool marked `requires_approval=True` is refused when the run has no approver,
and the model is told why. An approver is any sync or async function of an
`ApprovalRequest` returning an `Approval` or a bool.
"""

import asyncio

from retinue import Agent, Approval, ApprovalRequest, approve_all, deny_all, tool, unattended
from retinue.approvals import NO_APPROVER_REASON
from retinue.events import ApprovalRequested, ApprovalResolved, Event, ToolCallFinished
from retinue.messages import ToolResult, ToolResultsMessage
from retinue.testing.scripted import ScriptedModel, call


def booking_agent() -> tuple[Agent[str], list[str], ScriptedModel]:
    booked: list[str] = []

    @tool(requires_approval=True)
    def book_flight(flight: str) -> str:
        """Book a flight (charges the card)."""
        booked.append(flight)
        return f"booked {flight}"

    model = ScriptedModel([call("book_flight", flight="AF123"), "done"])
    return Agent("booker", model=model, tools=[book_flight]), booked, model


def result_seen(model: ScriptedModel) -> ToolResult:
    last = model.requests[1].messages[-1]
    assert isinstance(last, ToolResultsMessage)
    return last.results[0]


async def test_without_an_approver_the_tool_is_refused_and_the_model_told_why() -> None:
    agent, booked, model = booking_agent()
    result = await agent.run("Book AF123")

    assert result.status == "completed", "a refusal does not end the run"
    assert booked == [], "the function was not called"
    seen = result_seen(model)
    assert seen.is_error
    assert seen.content == (
        f"Not done: the call to 'book_flight' was not approved ({NO_APPROVER_REASON}). "
        "Do not retry it unless the user asks; tell the user what you wanted to do."
    )


async def test_approve_all_lets_the_call_run() -> None:
    agent, booked, model = booking_agent()
    await agent.run("Book AF123", approver=approve_all)
    assert booked == ["AF123"]
    assert result_seen(model).content == "booked AF123"


async def test_deny_all_refuses_with_its_reason() -> None:
    agent, booked, model = booking_agent()
    await agent.run("Book AF123", approver=deny_all)
    assert booked == []
    assert "denied by policy (deny_all)" in result_seen(model).content


async def test_an_async_approver_sees_the_request_and_decides() -> None:
    requests: list[ApprovalRequest] = []

    async def ask_the_user(request: ApprovalRequest) -> Approval:
        requests.append(request)
        await asyncio.sleep(0.01)
        return Approval(request.arguments["flight"] == "AF123", "the user checked the flight number")

    agent, booked, _ = booking_agent()
    result = await agent.run("Book AF123", approver=ask_the_user)

    assert booked == ["AF123"]
    (request,) = requests
    assert (request.agent, request.tool, request.arguments, request.run_id) == (
        "booker",
        "book_flight",
        {"flight": "AF123"},
        result.run_id,
    )
    assert request.describe() == 'booker wants to call book_flight(flight="AF123")'


async def test_a_plain_bool_is_an_answer_too() -> None:
    agent, booked, model = booking_agent()
    await agent.run("Book AF123", approver=lambda request: False)
    assert booked == []
    assert "denied by the user" in result_seen(model).content


async def test_tools_without_requires_approval_never_ask() -> None:
    asked: list[ApprovalRequest] = []

    @tool
    def look(flight: str) -> str:
        return "on time"

    agent = Agent("a", model=ScriptedModel([call("look", flight="AF123"), "done"]), tools=[look])
    await agent.run("go", approver=lambda request: asked.append(request) or True)
    assert asked == []


async def test_approval_events_surround_the_decision() -> None:
    events: list[Event] = []
    agent, _, _ = booking_agent()
    await agent.run("Book AF123", approver=deny_all, on_event=events.append)

    kinds = [type(e).__name__ for e in events]
    i = kinds.index("ApprovalRequested")
    assert kinds[i - 1 : i + 3] == ["ToolCallStarted", "ApprovalRequested", "ApprovalResolved", "ToolCallFinished"]
    requested, resolved = events[i], events[i + 1]
    assert isinstance(requested, ApprovalRequested)
    assert requested.call.name == "book_flight"
    assert isinstance(resolved, ApprovalResolved)
    assert resolved.call is requested.call
    assert (resolved.approved, resolved.reason) == (False, "denied by policy (deny_all)")
    finished = events[i + 2]
    assert isinstance(finished, ToolCallFinished)
    assert finished.result.is_error


async def test_a_truthy_answer_that_is_not_an_approval_is_a_denial_that_names_it() -> None:
    agent, booked, model = booking_agent()
    await agent.run("Book AF123", approver=lambda request: "no")  # type: ignore[arg-type,return-value]

    assert booked == []
    assert "the approver answered 'no' (a str), not an approval" in result_seen(model).content


async def test_an_approver_that_raises_refuses_the_call_and_the_run_goes_on() -> None:
    def broken(request: ApprovalRequest) -> bool:
        raise RuntimeError("approval service down")

    agent, booked, model = booking_agent()
    result = await agent.run("Book AF123", approver=broken)

    assert result.status == "completed"
    assert booked == []
    assert "the approver failed (RuntimeError: approval service down)" in result_seen(model).content


async def test_an_unattended_run_is_not_offered_what_nobody_can_approve() -> None:
    @tool(requires_approval=True)
    def book_flight(flight: str) -> str:
        """Book a flight (charges the card)."""
        return f"booked {flight}"

    @tool
    def search_flights(city: str) -> str:
        """Flights to a city."""
        return "AF123 at 09:00"

    model = ScriptedModel(["I would book AF123."])
    agent = Agent("booker", model=model, tools=[book_flight, search_flights])

    result = await agent.run("Book a flight to Paris", approver=unattended)

    # The model plans instead of spending turns on bookings that could only be refused, and it is told why.
    assert result.output == "I would book AF123."
    request = model.requests[0]
    assert [schema.name for schema in request.tools] == ["search_flights"]
    assert "unavailable: book_flight" in request.instructions
