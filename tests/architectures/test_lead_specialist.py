"""Lead-Specialist: a lead delegates to domain specialists through tool calls."""

from __future__ import annotations

import asyncio

import pytest

from retinue import Agent, tool
from retinue.architectures import lead_agent, specialist
from retinue.errors import ConfigurationError, ProviderUnavailableError
from retinue.events import Event, Notice, RunFinished, RunStarted, SubAgentStarted
from retinue.messages import ModelRequest, ToolResultsMessage, UserMessage
from retinue.testing.scripted import ScriptedModel, call


def last_user_text(request: ModelRequest) -> str:
    return next(m.content for m in reversed(request.messages) if isinstance(m, UserMessage))


def tool_results(request: ModelRequest) -> list[str]:
    return [r.content for m in request.messages if isinstance(m, ToolResultsMessage) for r in m.results]


@tool
def search_flights(origin: str, destination: str) -> str:
    """Find flights."""
    return "UA 1142 SFO-JFK 08:05 $312\n" + "seat map and fare rules ... " * 200


flights = Agent(
    name="flights",
    description="Finds and compares flights.",
    model=ScriptedModel([call("search_flights", origin="SFO", destination="JFK"), "UA 1142 at 08:05, $312."]),
    tools=[search_flights],
)


async def test_the_lead_sees_the_specialists_answer_but_not_its_working_context() -> None:
    lead_model = ScriptedModel([call("ask_flights", question="Cheapest SFO to JFK on 2026-12-12?"), "Book UA 1142."])
    lead = lead_agent("lead", specialists=[flights], model=lead_model, share_decisions=False)

    result = await lead.run("Plan my trip to New York.")

    assert result.output == "Book UA 1142."
    [answer] = tool_results(lead_model.requests[1])
    assert answer == "UA 1142 at 08:05, $312."
    assert "seat map" not in str(lead_model.requests[1].messages)


async def test_a_specialist_reads_the_users_own_words_below_the_leads_question() -> None:
    # A small lead paraphrases "3 days from the 12th" as "a hotel in New York"; the specialist still sees the dates.
    hotels_model = ScriptedModel(["The Pierre, $410 a night."])
    hotels = Agent(name="hotels", model=hotels_model)
    lead_model = ScriptedModel([call("ask_hotels", question="A hotel in New York?"), "The Pierre."])
    lead = lead_agent("lead", specialists=[hotels], model=lead_model, share_decisions=False)

    await lead.run("Plan a 3-day trip from SFO to New York leaving 2026-12-12.")

    prompt = last_user_text(hotels_model.requests[0])
    assert prompt.startswith("A hotel in New York?")
    assert "in the user's words:\nPlan a 3-day trip from SFO to New York leaving 2026-12-12." in prompt


async def test_a_lead_can_keep_the_users_words_from_its_specialists() -> None:
    hotels_model = ScriptedModel(["The Pierre."])
    hotels = Agent(name="hotels", model=hotels_model)
    lead_model = ScriptedModel([call("ask_hotels", question="A hotel in New York?"), "The Pierre."])
    lead = lead_agent("lead", specialists=[hotels], model=lead_model, share_decisions=False, share_request=False)

    await lead.run("Plan a 3-day trip, and keep my name out of it: Ada Lovelace.")

    assert last_user_text(hotels_model.requests[0]) == "A hotel in New York?"


async def test_each_answer_names_the_specialists_not_yet_asked_about_the_request() -> None:
    team = [Agent(name=domain, model=ScriptedModel([f"{domain} answer"] * 2)) for domain in ("flights", "hotels")]
    lead_model = ScriptedModel(
        [call("ask_flights", question="SFO to JFK?"), call("ask_hotels", question="Midtown?"), "Planned."]
    )
    lead = lead_agent("lead", specialists=team, model=lead_model, share_decisions=False)

    await lead.run("Plan my trip to New York.")

    [after_flights] = tool_results(lead_model.requests[1])
    assert after_flights == (
        "flights answer\n\nNot asked yet about this request: ask_hotels. Ask only those the request needs; "
        "when you have what it needs, answer."
    )
    # Once every teammate has answered, the lead is told to answer: the 1.5B went on to ask for what nobody wanted.
    assert tool_results(lead_model.requests[2])[-1] == (
        "hotels answer\n\nAsked about this request: ask_flights, ask_hotels. Answer the user now with what they "
        "found, unless the request asks for more."
    )


async def test_the_reminder_can_name_only_the_specialists_every_request_needs() -> None:
    team = [Agent(name=name, model=ScriptedModel([f"{name} answer"])) for name in ("flights", "hotels", "weather")]
    lead_model = ScriptedModel([call("ask_weather", question="Rain?"), "Done."])
    lead = lead_agent("lead", specialists=team, model=lead_model, share_decisions=False, remind_unasked=["flights"])

    await lead.run("Plan my trip to New York.")

    [after_weather] = tool_results(lead_model.requests[1])
    assert "Not asked yet about this request: ask_flights." in after_weather
    assert "ask_hotels" not in after_weather
    with pytest.raises(ConfigurationError, match="cars"):
        lead_agent("lead", specialists=team, remind_unasked=["cars"])


async def test_the_specialists_a_request_needs_can_be_chosen_from_its_words() -> None:
    def needed(request: str) -> set[str]:
        return {"flights"} if "fly" in request else {"flights", "hotels"}

    team = [Agent(name=name, model=ScriptedModel([f"{name} answer"] * 2)) for name in ("flights", "hotels")]
    lead_model = ScriptedModel(
        [call("ask_flights", question="SEA to SFO?"), "NS154, $198.", call("ask_flights", question="SFO to JFK?"), "?"]
    )
    lead = lead_agent("lead", specialists=team, model=lead_model, share_decisions=False, remind_unasked=needed)

    await lead.run("I want to fly from Seattle to San Francisco.")
    [after_flights] = tool_results(lead_model.requests[1])
    # Reminded of hotels for a flight, the 1.5B asked the hotels specialist for a stay nobody wanted.
    assert after_flights.endswith("Asked about this request: ask_flights. Answer the user now with what they "
                                  "found, unless the request asks for more.")  # fmt: skip

    await lead.run("Plan my trip to New York.")
    assert "Not asked yet about this request: ask_hotels." in tool_results(lead_model.requests[3])[-1]


async def test_a_chosen_specialist_must_be_one_of_the_team() -> None:
    team = [Agent(name=name, model=ScriptedModel(["answer"])) for name in ("flights", "hotels")]
    lead_model = ScriptedModel([call("ask_flights", question="SEA to SFO?"), "Done."])
    lead = lead_agent("lead", specialists=team, model=lead_model, remind_unasked=lambda request: {"trains"})

    result = await lead.run("By train?")

    assert result.status == "error" and isinstance(result.error, ConfigurationError)
    assert "names ['trains'], which are not among the specialists ['flights', 'hotels']" in str(result.error)


async def test_an_answer_that_announces_asking_a_specialist_is_sent_back_to_be_done() -> None:
    # Qwen2.5-Coder-1.5B, as the travel lead, ended its run with "I will ask the hotels specialist ...".
    hotels_model = ScriptedModel(["The Pierre, $410 a night."])
    team = [Agent(name="flights", model=ScriptedModel(["NS120, $410."])), Agent(name="hotels", model=hotels_model)]
    lead_model = ScriptedModel(
        [
            call("ask_flights", question="SFO to JFK on 2026-12-12?"),
            "I will ask the hotels specialist for the best hotel for 3 nights.",
            call("ask_hotels", question="3 nights in New York from 2026-12-12?"),
            "NS120 ($410) and The Pierre ($410 a night).",
        ]
    )
    lead = lead_agent("lead", specialists=team, model=lead_model, share_decisions=False)

    result = await lead.run("Plan a 3-day trip from SFO to New York leaving 2026-12-12.")

    assert result.output == "NS120 ($410) and The Pierre ($410 a night)."
    assert last_user_text(lead_model.requests[2]).endswith("you did not call ask_hotels. Call ask_hotels now.")
    # Told in words alone, the 1.5B answered with the words: the retry must call a tool.
    assert lead_model.requests[2].settings.tool_choice == "required"
    assert lead_model.requests[3].settings.tool_choice is None
    # The hotels specialist still reads the user's request, not the note that sent the answer back.
    assert "in the user's words:\nPlan a 3-day trip from SFO" in last_user_text(hotels_model.requests[0])


async def test_a_specialist_is_described_to_the_lead_by_its_domain() -> None:
    lead = lead_agent("lead", specialists=[flights], model=ScriptedModel(["ok"]))
    schema = next(t.schema for t in lead.tools if t.name == "ask_flights")
    assert schema.description == "Finds and compares flights."
    assert list(schema.parameters["properties"]) == ["question"]


async def test_a_lead_of_four_specialists_adds_few_words_of_its_own_to_every_request() -> None:
    team = [Agent(name=domain, description=f"Knows {domain}.") for domain in ("flights", "hotels", "cars", "weather")]
    lead_model = ScriptedModel(["Done."])
    await lead_agent("lead", specialists=team, instructions="Plan trips.", model=lead_model).run("Paris?")
    [request] = lead_model.requests
    assert request.instructions == "Plan trips."
    schema_text = sum(
        len(schema.name) + len(schema.description) + sum(len(name) + len(prop.get("description", ""))
        for name, prop in schema.parameters["properties"].items())
        for schema in request.tools
    )  # fmt: skip
    users_text = sum(len(f"ask_{member.name}") + len(member.description) for member in team)
    # The specialists' names and descriptions are the user's; the question parameters and record_decision are
    # what the lead adds (once per tool, in every request the lead sends).
    assert schema_text - users_text <= 150


async def test_specialists_asked_in_one_turn_run_concurrently() -> None:
    specialists = [
        Agent(name=domain, model=ScriptedModel([f"{domain} answer"], latency=0.2)) for domain in ("hotels", "weather")
    ]
    lead_model = ScriptedModel(
        [[call("ask_hotels", question="A hotel in Midtown?"), call("ask_weather", question="Rain on 12-12?")], "Done."]
    )
    events: list[Event] = []
    lead = lead_agent("lead", specialists=specialists, model=lead_model, share_decisions=False)

    await lead.run("Plan it.", on_event=events.append)

    child_runs = {e.run_id for e in events if isinstance(e, RunStarted) and e.parent_run_id}
    starts = [e.timestamp for e in events if isinstance(e, RunStarted) and e.run_id in child_runs]
    ends = [e.timestamp for e in events if isinstance(e, RunFinished) and e.run_id in child_runs]
    assert len(starts) == 2
    assert max(starts) < min(ends), "the second specialist started only after the first finished"


async def test_a_failing_specialist_becomes_an_error_the_lead_can_work_around() -> None:
    broken = Agent(name="cars", model=ScriptedModel([ProviderUnavailableError("upstream down")]))
    lead_model = ScriptedModel([call("ask_cars", question="A car at JFK?"), "No car info, sorry."])
    lead = lead_agent("lead", specialists=[broken], model=lead_model)

    result = await lead.run("Car?")

    assert result.completed
    message = lead_model.requests[1].messages[-1]
    assert isinstance(message, ToolResultsMessage)
    assert message.results[0].is_error
    assert "cars specialist did not finish" in message.results[0].content
    assert "upstream down" in message.results[0].content


async def test_events_of_lead_and_specialists_form_one_tree_and_usage_rolls_up() -> None:
    lead_model = ScriptedModel([call("ask_flights", question="SFO to JFK?"), "Done."])
    specialist_model = ScriptedModel([call("search_flights", origin="SFO", destination="JFK"), "UA 1142."])
    lead = lead_agent("lead", specialists=[flights.override(model=specialist_model)], model=lead_model)
    events: list[Event] = []

    result = await lead.run("Go.", on_event=events.append)

    [root] = [e for e in events if isinstance(e, RunStarted) and e.parent_run_id is None]
    [child] = [e for e in events if isinstance(e, RunStarted) and e.parent_run_id == root.run_id]
    [started] = [e for e in events if isinstance(e, SubAgentStarted)]
    assert started.child_run_id == child.run_id and started.kind == "specialist"
    assert result.usage.requests == 2
    assert result.total_usage.requests == 4
    assert result.total_usage.input_tokens > result.usage.input_tokens


async def test_decisions_made_by_one_specialist_reach_the_next() -> None:
    """The seed's failure case: the car specialist must not assume a different return date."""

    def flights_script(request: ModelRequest) -> object:
        if not tool_results(request):
            return call("record_decision", topic="Return date", value="2026-12-14", note="UA 1143 JFK-SFO")
        return "Return on UA 1143, 2026-12-14."

    def cars_script(request: ModelRequest) -> object:
        # The car specialist reads the return date from the shared record in its question.
        question = last_user_text(request)
        return_date = "2026-12-14" if "Return date: 2026-12-14" in question else "2026-12-15"
        return f"Compact car from 2026-12-12 to {return_date}."

    lead_model = ScriptedModel(
        [
            call("ask_flights", question="Round trip SFO-JFK leaving 2026-12-12, back about 3 days later."),
            call("ask_cars", question="A car at JFK for the stay."),
            "All set.",
        ]
    )
    lead = lead_agent(
        "lead",
        specialists=[
            Agent(name="flights", model=ScriptedModel(flights_script)),
            Agent(name="cars", model=ScriptedModel(cars_script)),
        ],
        model=lead_model,
    )

    await lead.run("Trip to New York, 3 days, with a car.")

    assert tool_results(lead_model.requests[2])[-1].startswith("Compact car from 2026-12-12 to 2026-12-14.\n")


async def test_specialists_can_read_the_leads_decisions_without_recording_their_own() -> None:
    seen: list[ModelRequest] = []

    def flights_script(request: ModelRequest) -> object:
        seen.append(request)
        return "UA 1143 returns on 2026-12-14."

    lead_model = ScriptedModel(
        [
            call("record_decision", topic="Return date", value="2026-12-14"),
            call("ask_flights", question="A flight back from JFK."),
            "All set.",
        ]
    )
    lead = lead_agent(
        "lead",
        specialists=[Agent(name="flights", model=ScriptedModel(flights_script))],
        model=lead_model,
        specialists_decide=False,
    )

    await lead.run("Back from New York on the 14th.")

    [question] = seen
    assert "Return date: 2026-12-14" in last_user_text(question)
    assert [schema.name for schema in question.tools] == []
    assert "record_decision" in [schema.name for schema in lead_model.requests[0].tools]


async def test_a_conflicting_decision_is_refused_and_flagged_to_the_lead() -> None:
    def flights_script(request: ModelRequest) -> object:
        if not tool_results(request):
            return call("record_decision", topic="return date", value="2026-12-14")
        return "Back on 2026-12-14."

    def cars_script(request: ModelRequest) -> object:
        if not tool_results(request):
            return call("record_decision", topic="Return Date", value="2026-12-15")
        return "Car booked until 2026-12-15."

    lead_model = ScriptedModel(
        [call("ask_flights", question="Flights?"), call("ask_cars", question="Car?"), "Checking the dates."]
    )
    lead = lead_agent(
        "lead",
        specialists=[
            Agent(name="flights", model=ScriptedModel(flights_script)),
            Agent(name="cars", model=ScriptedModel(cars_script)),
        ],
        model=lead_model,
    )
    events: list[Event] = []

    await lead.run("Trip.", on_event=events.append)

    car_answer = tool_results(lead_model.requests[2])[-1]
    assert "Decision conflict" in car_answer
    assert "'cars' wanted return date = '2026-12-15'" in car_answer
    assert "'flights' had decided return date = '2026-12-14'" in car_answer
    [notice] = [e for e in events if isinstance(e, Notice)]
    assert notice.kind == "decision_conflict" and notice.agent == "cars"


async def test_a_conflict_is_reported_with_the_answer_of_the_specialist_that_raised_it_only() -> None:
    # Asked in the same turn, the hotels specialist is still at work when the flights one raises a conflict.
    flights_done = asyncio.Event()

    def flights_script(request: ModelRequest) -> object:
        if not tool_results(request):
            return call("record_decision", topic="city", value="Lyon")
        flights_done.set()
        return "Flying to Lyon."

    async def hotels_script(request: ModelRequest) -> object:
        if not tool_results(request):
            return call("record_decision", topic="city", value="Paris")
        await flights_done.wait()
        return "Hotel in Paris."

    lead_model = ScriptedModel(
        [[call("ask_hotels", question="Hotel?"), call("ask_flights", question="Flights?")], "Checking the city."]
    )
    lead = lead_agent(
        "lead",
        specialists=[
            Agent(name="hotels", model=ScriptedModel(hotels_script)),
            Agent(name="flights", model=ScriptedModel(flights_script)),
        ],
        model=lead_model,
    )

    await lead.run("Trip.")

    hotels_answer, flights_answer = tool_results(lead_model.requests[1])
    assert "'flights' wanted city = 'Lyon'" in flights_answer
    assert "conflict" not in hotels_answer


async def test_the_lead_may_overrule_a_decision() -> None:
    lead_model = ScriptedModel(
        [
            call("record_decision", topic="budget", value="$2000"),
            call("record_decision", topic="budget", value="$2500", note="user raised it"),
            "ok",
        ]
    )
    lead = lead_agent("lead", specialists=[], model=lead_model)
    await lead.run("Go.")
    assert "budget: $2500 [decided by lead] (user raised it)" in tool_results(lead_model.requests[2])[-1]


def test_a_specialist_tool_is_named_after_its_agent() -> None:
    assert specialist(Agent(name="Car Rental")).name == "ask_car_rental"
