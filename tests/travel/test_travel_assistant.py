"""The travel lead's plan names what its specialists found."""

from __future__ import annotations

from retinue.approvals import unattended
from retinue.messages import ModelRequest, ToolResultsMessage, UserMessage
from retinue.testing.scripted import ScriptedModel, call
from retinue_travel.assistant import build_assistant, specialists_needed
from retinue_travel.world import TravelWorld

FLIGHTS_ANSWER = "NS120 Northstar Airlines, 2026-12-12, SFO 06:45 -> JFK 15:20, nonstop, economy, $410."
HOTELS_ANSWER = "H-JFK-09 Cedar House Upper West Side, $189/night, $378 for 2 nights, non-refundable."
TWO_HOTELS = HOTELS_ANSWER + "\nH-JFK-02 Nimbus Suites Lower Manhattan, $196/night, $392 for 2 nights."
HOTELS_ONLY = "The best hotel is H-JFK-09 Cedar House Upper West Side, $378 for 2 nights."
WHOLE_PLAN = "Fly NS120 ($410), stay 2 nights at Cedar House Upper West Side ($378): $788 in all."


def travel_team(lead_answers: list[str], hotels_answer: str = HOTELS_ANSWER) -> ScriptedModel:
    """One scripted model for the whole team: specialists answer at once, the lead asks both, then answers."""
    answers = iter(lead_answers)

    def reply(request: ModelRequest) -> object:
        if request.instructions.startswith("You are the flights specialist"):
            return FLIGHTS_ANSWER
        if request.instructions.startswith("You are the hotels specialist"):
            return hotels_answer
        asked = {r.name for m in request.messages if isinstance(m, ToolResultsMessage) for r in m.results}
        if "ask_flights" not in asked:
            return call("ask_flights", question="SFO to New York on 2026-12-12")
        if "ask_hotels" not in asked:
            return call("ask_hotels", question="New York, 2026-12-12 to 2026-12-14")
        return next(answers)

    return ScriptedModel(reply)


async def test_a_plan_that_leaves_out_the_flight_is_sent_back_naming_it() -> None:
    # Qwen2.5-Coder-1.5B, asked for a trip, answered with the hotels specialist's words alone.
    model = travel_team([HOTELS_ONLY, WHOLE_PLAN])
    with TravelWorld(seed=0) as world:
        lead = build_assistant("lead", world, model=model, approver=unattended)
        result = await lead.run("Plan a 3-day trip from SFO to New York leaving 2026-12-12")

    assert result.output == WHOLE_PLAN
    sent_back = [
        m.content
        for r in model.requests
        for m in r.messages
        if isinstance(m, UserMessage) and "leaves out" in m.content
    ]
    assert sent_back[0] == (
        "[Answer sent back: answer in words] Your plan leaves out the flight "
        "(one of NS120: number, times, price). Answer with the plan in three lines: Flight, Hotel, Trip total."
    )


async def test_a_plan_naming_the_flight_and_the_hotel_brand_stands() -> None:
    model = travel_team(["NS 120 at $410 and two nights at Cedar House for $378."])
    with TravelWorld(seed=0) as world:
        lead = build_assistant("lead", world, model=model, approver=unattended)
        result = await lead.run("Plan a 3-day trip from SFO to New York leaving 2026-12-12")

    assert result.output == "NS 120 at $410 and two nights at Cedar House for $378."
    assert not any("leaves out" in m.content for r in model.requests for m in r.messages if isinstance(m, UserMessage))


async def test_a_plan_without_the_hotel_names_the_hotels_found() -> None:
    model = travel_team(["Fly NS120 for $410.", WHOLE_PLAN])
    with TravelWorld(seed=0) as world:
        lead = build_assistant("lead", world, model=model, approver=unattended)
        result = await lead.run("Plan a 3-day trip from SFO to New York leaving 2026-12-12")

    assert result.output == WHOLE_PLAN
    [problem] = {
        m.content
        for r in model.requests
        for m in r.messages
        if isinstance(m, UserMessage) and "leaves out" in m.content
    }
    assert "the hotel (one of H-JFK-09, Cedar House: name, nights, total price)" in problem


async def test_a_plan_with_every_hotel_and_the_hotels_price_as_total_is_sent_back_with_the_sum() -> None:
    # The main job's answer on Qwen2.5-Coder-1.5B: every hotel it was shown, and the first one's price as the total.
    every_hotel = (
        "Flight: NS120: 06:45 -> JFK 15:20, nonstop, 5h35m, $410\n"
        "Hotel: H-JFK-09 Cedar House Upper West Side, H-JFK-02 Nimbus Suites Lower Manhattan\n"
        "Trip total: $378"
    )
    model = travel_team([every_hotel, WHOLE_PLAN], hotels_answer=TWO_HOTELS)
    with TravelWorld(seed=0) as world:
        lead = build_assistant("lead", world, model=model, approver=unattended)
        result = await lead.run("Plan a 3-day trip from SFO to New York leaving 2026-12-12")

    assert result.output == WHOLE_PLAN
    [problem] = {
        m.content for r in model.requests for m in r.messages if isinstance(m, UserMessage) and "come to" in m.content
    }
    assert problem == (
        "[Answer sent back: answer in words] Your plan names 2 hotels: choose one. NS120 ($410) and 2 nights at "
        "H-JFK-09 Cedar House Upper West Side ($378) come to $788. Answer with the plan in three lines: Flight, "
        "Hotel, Trip total."
    )


async def test_a_plan_whose_total_is_not_the_flight_plus_the_hotel_is_sent_back() -> None:
    flight_as_total = "Fly NS120 ($410), stay 2 nights at H-JFK-09 Cedar House Upper West Side. Trip total: $410."
    model = travel_team([flight_as_total, WHOLE_PLAN])
    with TravelWorld(seed=0) as world:
        lead = build_assistant("lead", world, model=model, approver=unattended)
        result = await lead.run("Plan a 3-day trip from SFO to New York leaving 2026-12-12")

    assert result.output == WHOLE_PLAN
    assert sum("come to $788" in m.content for m in model.requests[-1].messages if isinstance(m, UserMessage)) == 1


def test_the_lead_is_reminded_only_of_the_specialists_the_request_needs() -> None:
    assert specialists_needed("Plan a 3-day trip from SFO to New York leaving 2026-12-12") == {"flights", "hotels"}
    assert specialists_needed("I want to fly from Seattle to San Francisco, nonstop, the cheapest.") == {"flights"}
    assert specialists_needed("A hotel in Madrid for 3 nights, at least 3 stars.") == {"hotels"}
    assert specialists_needed("Rent the cheapest car at Denver airport.") == {"cars"}
    assert specialists_needed("What weather should I pack for in London?") == {"weather"}
    # Bookings already made are the lead's own tools' work.
    assert specialists_needed("Cancel my flight to London.") == set()
    assert specialists_needed("I have a trip to Boston booked; which hotel am I in?") == set()
