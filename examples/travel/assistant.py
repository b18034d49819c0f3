"""The travel assistant, built three ways on the same world and tools.

- lead: a travel lead that consults flights, hotels, car-rental and weather
  specialists, records shared decisions, and books.
- clones: a travel master with every tool that hands sub-tasks to copies of itself.
- script: a travel scripter with the CSV files and the world's APIs in a
  sandbox, writing and running its own solver.

The instructions are goals and context, not workflows: who the assistant
serves, what "today" is, and the rules that matter.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import uuid
from collections.abc import Callable
from typing import Any, Literal

from retinue import Agent, Limits
from retinue.agent import AnswerCheck
from retinue.approvals import Approval, ApprovalRequest, Approver, ask, unattended
from retinue.architectures import ScriptingEnvironment, clone_tool, lead_agent
from retinue.messages import ModelSettings, SendBack, ToolResultsMessage, UserMessage, is_answer_sent_back
from retinue.models.base import Model
from retinue.run_context import RunContext
from retinue.tools import Tool

from .catalog import data_text
from .render import money
from .timeline import FIRST_DAY, LAST_DAY
from .tools import make_tools
from .world import TravelWorld

Architecture = Literal["lead", "clones", "script"]
ARCHITECTURES: tuple[Architecture, ...] = ("lead", "clones", "script")

DATES = f"""Today is {FIRST_DAY.isoformat()}. Trips can be booked from {FIRST_DAY.isoformat()} to \
{LAST_DAY.isoformat()}. Prices are in US dollars."""

CONTEXT = f"""{DATES}
Booking and cancelling charge or refund the traveller: the system asks the traveller to approve each one, so call
the booking tool when the traveller has said what they want, and never book or cancel for someone who has not
authorised the person asking."""

# Written for small models too. Told only to "get the facts from them", Qwen2.5-Coder-1.5B looked up the traveller's
# bookings and booked a flight from one of them; told to ask all its specialists, it asked for cars and weather
# nobody wanted; given the steps of a trip, it asks flights, then hotels, then answers. Asked for "a 3-day trip", it
# once asked the user how many nights instead of planning: the rule on what was left open is for that.
LEAD_INSTRUCTIONS = f"""You are a travel assistant. Only your specialists can search. For a trip:
1. ask_flights, giving the cities and the date the user gave.
2. ask_hotels, giving the destination city (where the traveller goes, not where they leave from) and the dates.
3. Answer with the plan written out: the flight (number, date, times, price) and the hotel (name, nights, total
price) they found, and what the trip costs in all. Nothing is booked until the traveller chooses.
Ask ask_cars or ask_weather only if the user mentions a car or the weather. Pass on no wish the user did not state
(no budget, no times). Ask the user nothing: settle what they left open the usual way (a 3-day trip from the 12th
stays 2 nights, the 12th to the 14th) and say so in the plan.
Bookings: book only an option a specialist found and the traveller explicitly chose; a plan is not a booking. A
booking that was not approved is not retried: say in your plan what you would book.
Use record_decision only for a choice the traveller made that every specialist must respect, never for the plan.
{DATES} Never book or cancel for someone who has not authorised the person asking."""

# Asked for "the best options" briefly, the 1.5B's hotels specialist described the search ("the hotels are sorted
# by price and include options for wifi...") and named no hotel: one line per option, field by field, it follows.
SPECIALIST_INSTRUCTIONS = {
    "flights": "You are the flights specialist. Find flights for the question: search_flights shows all you "
    "answer with. Answer with the two best, one line each: flight number, airline, date, departure and arrival "
    "times, stops, cabin, price.",
    "hotels": "You are the hotels specialist. Find hotels in the city the traveller goes to, for the stay: a 3-day "
    "trip from the 12th checks in on the 12th and out on the 14th. Answer with the two best, one line each: "
    "hotel name and id, neighbourhood, price per night, total for the stay, cancellation policy.",
    "cars": "You are the car-rental specialist. Find rental cars for the question. Answer with the two best, one "
    "line each: car id, company, class, price per day, total.",
    "weather": "You are the weather specialist. Give the forecast for the places and dates asked, one line per day, "
    "and what it means for the trip.",
}

SPECIALIST_DESCRIPTIONS = {
    "flights": "Ask the flights specialist: it searches flights and answers with the two best.",
    "hotels": "Ask the hotels specialist: it searches hotels for a stay and answers with the two best.",
    "cars": "Ask the car-rental specialist: it searches rental cars and answers with the two best.",
    "weather": "Ask the weather specialist: it gives the forecast for places and dates.",
}

MASTER_INSTRUCTIONS = f"""You are a travel assistant. Understand what the traveller wants, find the facts, book what
the traveller chose, and answer with a short plan with flight numbers, hotel names, dates and prices.
For a trip with several independent parts, hand each part to a clone of yourself with spawn_clone (several in one
turn run in parallel), giving each every fact it needs, then combine their results.
{CONTEXT}"""

SCRIPTER_INSTRUCTIONS = f"""You are a travel assistant who works by writing and running Python. The workspace holds
flights.csv, hotels.csv, cars.csv and README.md (what every column means, fare and cancellation rules). Explore the
data, write a script such as custom_travel_solver.py that finds the best options for the traveller's request, run
it, fix it until it works, and book through the host API what the traveller chose. Answer with a short plan with
flight numbers, hotel names, dates and prices.
{CONTEXT}"""

# A specialist's reply is a tool call or a two-line answer: 300 tokens hold either. Unbounded, Qwen2.5-Coder-1.5B
# once spent its whole 1,024-token allowance (several minutes on 2 cores) on one specialist answer.
SPECIALIST_SETTINGS = ModelSettings(max_tokens=300)

# Twelve model calls per agent and user message are plenty for these tasks; the last one must be an answer.
DEFAULT_LIMITS = Limits(max_turns=12, answer_on_last_turn=True)

# A specialist answers one question: a search, perhaps a closer look, an answer. Given twelve turns, the 1.5B's flights
# specialist searched three days and looked up every flight of each in turn before it answered.
SPECIALIST_TURNS = 3


FLIGHT_NUMBER = re.compile(r"\b[A-Z]{2}\d{2,4}\b")
HOTEL_ID = re.compile(r"\bH-[A-Z]{3}-\d{2}\b")
MONEY = re.compile(r"\$ ?(\d[\d,]*)")


# What a request's words say it needs, for the lead's reminders. Reminded of hotels while booking a flight,
# the 1.5B asked the hotels specialist for a stay nobody wanted until its turns ran out.
_PLANNED_TRIP = re.compile(r"\bplan\w*\b[^.]{0,40}\btrip\b|\bitinerary\b", re.IGNORECASE)
_ABOUT_BOOKINGS = re.compile(r"\b(?:cancel\w*|booked)\b", re.IGNORECASE)
_DOMAIN_WORDS = {
    "flights": re.compile(r"\b(?:fly|flying|flights?|nonstop|plane)\b", re.IGNORECASE),
    "hotels": re.compile(r"\b(?:hotels?|stay|rooms?|nights?)\b", re.IGNORECASE),
    "cars": re.compile(r"\b(?:cars?|rent|rental)\b", re.IGNORECASE),
    "weather": re.compile(r"\b(?:weather|forecast|temperature|rain|snow|pack)\b", re.IGNORECASE),
}


def specialists_needed(request: str) -> set[str]:
    """The specialists a traveller's request needs: a planned trip needs a way there and a bed.

    A question about bookings already made needs none (the lead's own tools list and cancel them).
    """
    if _ABOUT_BOOKINGS.search(request):
        return set()
    needed = {domain for domain, words in _DOMAIN_WORDS.items() if words.search(request)}
    if _PLANNED_TRIP.search(request):
        needed |= {"flights", "hotels"}
    return needed


def plan_names_what_was_found(context: RunContext, answer: str) -> SendBack | None:
    """An answer check for the lead: a plan names a flight and a hotel its specialists found, if they found any.

    Asked for flights and then hotels, Qwen2.5-Coder-1.5B answered with the hotels specialist's words alone, the
    flight it had been given left out.
    """
    found = _specialist_answers(context)
    missing = []
    flights = {number for text in found["ask_flights"] for number in FLIGHT_NUMBER.findall(text)}
    if flights and not flights & _flights_named(answer):
        missing.append(f"the flight (one of {', '.join(sorted(flights))}: number, times, price)")
    hotels = _hotel_names(found["ask_hotels"])
    if hotels and not any(name.lower() in answer.lower() for name in hotels):
        missing.append(f"the hotel (one of {', '.join(hotels)}: name, nights, total price)")
    if not missing:
        return None
    # An answer, not another search: sent back in words alone, the 1.5B asked for cars nobody wanted.
    problem = (
        f"Your plan leaves out {' and '.join(missing)}. Answer with the plan in three lines: Flight, Hotel, Trip total."
    )
    return SendBack(problem, reply_with="an answer")


def plan_adds_up(world: TravelWorld) -> AnswerCheck:
    """An answer check for the lead: a plan with a flight and a hotel chooses one hotel and totals the two.

    The arithmetic is the application's: Qwen2.5-Coder-1.5B gave the hotel's $378 as the trip total where NS120
    ($410) and two nights at Cedar House make $788, listed the three hotels it was shown instead of one, and on
    another engine gave the flight's price as the total.
    """

    def check(context: RunContext, answer: str) -> SendBack | None:
        found = _specialist_answers(context)
        fares = _fares(found["ask_flights"])
        flights = [number for number in fares if number in _flights_named(answer)]
        shown = [world.catalog.hotels.get(hotel) for hotel in HOTEL_ID.findall(" ".join(found["ask_hotels"]))]
        hotels = [
            hotel
            for hotel in dict.fromkeys(hotel for hotel in shown if hotel is not None)  # never an invented id
            if hotel.hotel_id.lower() in answer.lower() or hotel.name.lower() in answer.lower()
        ]
        nights = _nights(found["ask_hotels"])
        if not flights or not hotels or nights is None:
            return None  # not a trip plan, or not one the application can price
        flight, hotel = flights[0], hotels[0]
        stay = hotel.nightly_price * nights
        total = fares[flight] + stay
        if len(hotels) == 1 and total in _amounts(answer):
            return None
        sum_up = (
            f"{flight} ({money(fares[flight])}) and {nights} nights at {hotel.hotel_id} {hotel.name} "
            f"({money(stay)}) come to {money(total)}."
        )
        choose = f"Your plan names {len(hotels)} hotels: choose one. " if len(hotels) > 1 else ""
        problem = f"{choose}{sum_up} Answer with the plan in three lines: Flight, Hotel, Trip total."
        return SendBack(problem, reply_with="an answer")

    return check


def _specialist_answers(context: RunContext) -> dict[str, list[str]]:
    """What the flights and hotels specialists answered about the latest request."""
    found: dict[str, list[str]] = {"ask_flights": [], "ask_hotels": []}
    for message in reversed(context.messages):
        if isinstance(message, UserMessage) and not is_answer_sent_back(message):
            break
        if isinstance(message, ToolResultsMessage):
            for result in message.results:
                if result.name in found and not result.is_error:
                    found[result.name].append(result.content)
    return found


def _flights_named(answer: str) -> set[str]:
    return set(FLIGHT_NUMBER.findall(re.sub(r"\b([A-Z]{2}) (\d)", r"\1\2", answer)))


def _fares(answers: list[str]) -> dict[str, int]:
    # Each flight's fare is the first price on its own line, as search_flights shows it and the specialist copies it.
    fares: dict[str, int] = {}
    for line in "\n".join(answers).splitlines():
        if (number := FLIGHT_NUMBER.search(line)) and (price := MONEY.search(line, number.end())):
            fares.setdefault(number.group(), int(price.group(1).replace(",", "")))
    return fares


def _nights(answers: list[str]) -> int | None:
    match = re.search(r"\b(\d+) nights?\b|\((\d+) night\(s\)\)", " ".join(answers))
    return int(match.group(1) or match.group(2)) if match else None


def _amounts(answer: str) -> set[int]:
    return {int(amount.replace(",", "")) for amount in MONEY.findall(answer)}


def _hotel_names(answers: list[str]) -> list[str]:
    # Each hotel as its id and its brand, the first two words of its name ("H-JFK-09", "Cedar House"): a plan may
    # write either, and the neighbourhood its own way.
    names: list[str] = []
    for text in answers:
        for match in re.finditer(r"\b(H-[A-Z]{3}-\d{2})\b[ ,(]*([A-Z][\w'&.-]* [A-Z][\w'&.-]*)?", text):
            names.extend(item for item in match.groups() if item and item not in names)
    return names


def build_assistant(
    architecture: Architecture,
    world: TravelWorld,
    *,
    model: Model | str | None = None,
    approver: Approver | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Agent[str]:
    """The travel assistant for `architecture`, working in `world`."""
    tools = make_tools(world)
    specialist_turns = min(SPECIALIST_TURNS, limits.max_turns or SPECIALIST_TURNS)
    specialist_limits = dataclasses.replace(limits, max_turns=specialist_turns)
    if approver is unattended:
        # Nobody can approve a booking, and nobody has said who they are: the profile and booking tools could
        # only guess at traveller ids (the 1.5B looked up "traveler123", then the id in an error message).
        tools["bookings"] = []
    if architecture == "lead":
        specialists = [
            Agent(
                name=domain,
                description=SPECIALIST_DESCRIPTIONS[domain],
                # Dates, not the booking rules: specialists only search, and the 1.5B repeated the rules as advice.
                instructions=f"{SPECIALIST_INSTRUCTIONS[domain]}\n{DATES}",
                model=model,
                tools=tools[domain],
                limits=specialist_limits,
                settings=SPECIALIST_SETTINGS,
            )
            for domain in ("flights", "hotels", "cars", "weather")
        ]
        return lead_agent(
            "travel-lead",
            specialists=specialists,
            instructions=LEAD_INSTRUCTIONS,
            tools=tools["bookings"],
            # The lead hears the traveller's choices and records them; specialists find options and respect them.
            specialists_decide=False,
            remind_unasked=specialists_needed,
            answer_checks=(plan_names_what_was_found, plan_adds_up(world)),
            model=model,
            limits=limits,
        )
    if architecture == "clones":
        every_tool: list[Tool] = [item for group in tools.values() for item in group]
        return Agent(
            name="travel-master",
            instructions=MASTER_INSTRUCTIONS,
            model=model,
            tools=[*every_tool, clone_tool(inherit="task", max_clones=6)],
            limits=limits,
        )
    if architecture == "script":
        environment = ScriptingEnvironment(
            files={name: data_text(name).encode() for name in ("flights.csv", "hotels.csv", "cars.csv", "README.md")},
            host_functions=host_api(tools["weather"] + tools["bookings"], approver),
        )
        return Agent(
            name="travel-scripter",
            instructions=SCRIPTER_INSTRUCTIONS,
            model=model,
            tools=environment.tools(),
            limits=limits,
        )
    raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}")


def host_api(tools: list[Tool], approver: Approver | None) -> dict[str, Callable[..., Any]]:
    """The world's agent-facing tools as functions a sandboxed script calls.

    Consequential ones ask the same approver as the tool-calling assistants do:
    a script cannot book what a person did not approve.
    """
    functions: dict[str, Callable[..., Any]] = {}
    for item in tools:
        functions[item.name] = _approved(item, approver) if item.requires_approval else item.function
    return functions


def _approved(item: Tool, approver: Approver | None) -> Callable[..., Any]:
    async def call_after_approval(**arguments: Any) -> Any:
        # Each call gets its own id: an approver (the web UI's) files requests and decisions by it.
        call_id = f"sandbox-{uuid.uuid4().hex[:12]}"
        request = ApprovalRequest("travel-scripter", item.name, arguments, run_id="sandbox", tool_call_id=call_id)
        approval: Approval = await ask(approver, request)
        if not approval.approved:
            raise PermissionError(f"{item.name} was not approved ({approval.reason})")
        return item.function(**arguments)

    call_after_approval.__name__ = item.name
    call_after_approval.__doc__ = item.description
    # Without the idempotency key, which is the loop's to give, not the script's.
    signature = inspect.signature(item.function)
    shown = [parameter for name, parameter in signature.parameters.items() if name != item.key_parameter]
    call_after_approval.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
    return call_after_approval
