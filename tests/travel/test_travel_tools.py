"""The agent-facing tools: forgiving inputs, compact ranked output, and errors that say how to fix the call."""

from __future__ import annotations

import re
from typing import Any

import pytest

from retinue.errors import ToolError
from retinue.tools import Tool
from retinue_travel.tools import DOMAINS, SHOWN_RESULTS, all_tools, make_tools
from retinue_travel.world import TravelWorld


@pytest.fixture
def world() -> TravelWorld:
    return TravelWorld(seed=0)


@pytest.fixture
def tools(world: TravelWorld) -> dict[str, Tool]:
    return {tool.name: tool for tool in all_tools(world)}


def call(tools: dict[str, Tool], name: str, **arguments: Any) -> str:
    # Validate through the tool's own schema first, as the agent loop does.
    validated = tools[name].args_model.model_validate(arguments)
    result = tools[name].function(**{field: getattr(validated, field) for field in type(validated).model_fields})
    assert isinstance(result, str)
    return result


def error_of(tools: dict[str, Tool], name: str, **arguments: Any) -> str:
    with pytest.raises(ToolError) as caught:
        call(tools, name, **arguments)
    return str(caught.value)


def test_tools_are_grouped_by_domain_and_consequential_ones_need_approval(world: TravelWorld) -> None:
    groups = make_tools(world)
    assert tuple(groups) == DOMAINS
    names = {domain: [tool.name for tool in group] for domain, group in groups.items()}
    assert names == {
        "flights": ["search_flights", "flight_details"],
        "hotels": ["search_hotels"],
        "cars": ["search_cars"],
        "weather": ["get_weather"],
        "bookings": ["get_traveller", "list_bookings", "book_flight", "book_hotel", "book_car", "cancel_booking"],
    }
    approval = {tool.name for group in groups.values() for tool in group if tool.requires_approval}
    assert approval == {"book_flight", "book_hotel", "book_car", "cancel_booking"}
    search = groups["flights"][0]
    assert search.description.startswith("Find flights")
    properties = search.schema.parameters["properties"]
    assert "City name or IATA airport code" in properties["origin"]["description"]
    assert search.schema.parameters["required"] == ["origin", "destination", "date"]


def test_city_names_and_codes_in_any_case_find_the_same_flights(tools: dict[str, Tool]) -> None:
    by_name = call(tools, "search_flights", origin="san francisco", destination="new york", date="2026-12-16")
    by_code = call(tools, "search_flights", origin="sfo", destination="NYC", date="2026-12-16")
    assert by_name == by_code
    assert "SFO -> JFK/LGA/EWR" in by_name
    assert re.search(r"^- [A-Z]{2}\d+ ", by_name, re.MULTILINE)


def test_misspelled_places_get_suggestions(tools: dict[str, Tool]) -> None:
    message = error_of(tools, "search_flights", origin="SFO", destination="Nwe York", date="2026-12-16")
    assert message == "No airport or city matches 'Nwe York'. Did you mean New York (JFK, LGA, EWR)?"
    assert "Did you mean London" in error_of(
        tools, "search_hotels", city="Londn", check_in="2026-12-16", check_out="2026-12-18"
    )


def test_dates_in_other_formats_get_a_fix(tools: dict[str, Tool]) -> None:
    message = error_of(tools, "search_flights", origin="SFO", destination="JFK", date="Dec 16")
    assert "YYYY-MM-DD" in message and "Did you mean 2026-12-16?" in message
    message = error_of(tools, "get_weather", city="Paris", date="16/12/2026")
    assert "2026-12-16" in message


def test_results_are_trimmed_with_a_count_of_the_rest(tools: dict[str, Tool]) -> None:
    output = call(tools, "search_cars", location="Denver", pickup_date="2026-12-16", return_date="2026-12-18")
    total = int(output.split(" ", 1)[0])
    assert total > SHOWN_RESULTS
    assert output.count("\n- ") == SHOWN_RESULTS
    assert f"...and {total - SHOWN_RESULTS} more matched" in output
    prices = [int(price) for price in re.findall(r"\$(\d+) for 2 day", output)]
    assert prices == sorted(prices)


def test_filters_and_sorting(tools: dict[str, Tool]) -> None:
    nonstop = call(tools, "search_flights", origin="New York", destination="London", date="2026-12-16", max_stops=0)
    assert "1 stop" not in nonstop
    early = call(
        tools, "search_flights", origin="Toronto", destination="Chicago", date="2026-12-16", arrive_before="12:00"
    )
    for arrival in re.findall(r"-> \w{3} (\d\d:\d\d)", early):
        assert arrival <= "12:00"
    fastest = call(tools, "search_flights", origin="Seattle", destination="Rome", date="2026-12-14", sort_by="duration")
    durations = re.findall(r"(\d+)h(\d\d)m", fastest)
    minutes = [int(hours) * 60 + int(rest) for hours, rest in durations]
    assert minutes == sorted(minutes)


def test_no_flights_that_day_points_to_nearby_days(tools: dict[str, Tool]) -> None:
    output = call(tools, "search_flights", origin="Phoenix", destination="Rome", date="2026-12-04")
    assert output.startswith("No bookable economy flight PHX -> FCO")
    assert "Nearest days with flights on this route: 2026-12-03" in output


def test_cabins_are_forgiving_but_first_class_is_explained(tools: dict[str, Tool]) -> None:
    premium = call(tools, "search_flights", origin="LHR", destination="JFK", date="2026-12-16", cabin="Premium Economy")
    assert "premium economy" in premium
    message = error_of(tools, "search_flights", origin="LHR", destination="JFK", date="2026-12-16", cabin="first")
    assert "business is the highest cabin" in message


def test_hotel_search_explains_neighbourhoods_and_amenities(tools: dict[str, Tool]) -> None:
    message = error_of(
        tools, "search_hotels", city="Paris", check_in="2026-12-16", check_out="2026-12-18", neighbourhood="Marias"
    )
    assert "Did you mean Le Marais?" in message and "Montmartre" in message
    with_pool = call(
        tools, "search_hotels", city="Miami", check_in="2026-12-16", check_out="2026-12-18", amenities=["swimming pool"]
    )
    for line in with_pool.splitlines()[1:]:
        if line.startswith("- "):
            assert "pool" in line
    assert "known amenities" in error_of(
        tools, "search_hotels", city="Miami", check_in="2026-12-16", check_out="2026-12-18", amenities=["helipad"]
    )


def test_unknown_car_class_lists_the_classes(tools: dict[str, Tool]) -> None:
    message = error_of(
        tools, "search_cars", location="DEN", pickup_date="2026-12-16", return_date="2026-12-18", car_class="truck"
    )
    assert "economy, compact, midsize, suv, minivan, convertible or luxury" in message.replace(", luxury", " or luxury")


def test_weather_range(tools: dict[str, Tool]) -> None:
    output = call(tools, "get_weather", city="SEA", date="2026-12-16", end_date="2026-12-19")
    assert len(output.splitlines()) == 4
    assert all(line.startswith("Seattle ") and "°C" in line for line in output.splitlines())
    assert "at most 14 days" in error_of(tools, "get_weather", city="SEA", date="2026-12-01", end_date="2026-12-31")


def test_booking_with_a_payment_kind_and_the_confirmation(tools: dict[str, Tool], world: TravelWorld) -> None:
    flight = world.search_flights("SFO", "LAX", "2026-12-16")[0].flight
    confirmation = call(
        tools,
        "book_flight",
        traveller_id="t1009",
        flight_number=flight.flight_number.lower(),
        date="2026-12-16",
        cabin="economy",
        payment_method="my card",
    )
    assert confirmation.startswith("Booked BK")
    assert "pm-T1009-card" in confirmation
    listed = call(tools, "list_bookings", traveller="T1009")
    assert flight.flight_number in listed and "[confirmed]" in listed


def test_a_delegate_may_pay_with_the_travellers_points(tools: dict[str, Tool], world: TravelWorld) -> None:
    flight = world.search_flights("MIA", "JFK", "2026-12-16")[0].flight
    confirmation = call(
        tools,
        "book_flight",
        traveller_id="T1001",
        flight_number=flight.flight_number,
        date="2026-12-16",
        cabin="economy",
        payment_method="points",
        booked_by="T1006",
    )
    assert "pm-T1001-points" in confirmation


def result_lines(text: str) -> list[str]:
    return [line.removeprefix("- ") for line in text.splitlines() if line.startswith("- ")]


def test_a_whole_result_line_passed_as_the_id_books_what_it_names(tools: dict[str, Tool], world: TravelWorld) -> None:
    # The 1.5B's lead passed car_id="C-DEN-14 Budgetwise economy (Toyota Yaris or similar)" and repeated the
    # refused call until its turns ran out.
    cars = result_lines(
        call(tools, "search_cars", location="Denver", pickup_date="2026-12-16", return_date="2026-12-18")
    )
    hotels = result_lines(call(tools, "search_hotels", city="Denver", check_in="2026-12-16", check_out="2026-12-18"))
    flights = result_lines(call(tools, "search_flights", origin="SFO", destination="Denver", date="2026-12-16"))
    assert cars[0].startswith("C-DEN-14 ") and hotels[0].startswith("H-DEN-01 ") and flights[0].startswith("BJ106 ")
    payment = {"traveller_id": "T1009", "payment_method": "card"}
    car = call(tools, "book_car", car_id=cars[0], pickup_date="2026-12-16", return_date="2026-12-18", **payment)
    hotel = call(tools, "book_hotel", hotel_id=hotels[0], check_in="2026-12-16", check_out="2026-12-18", **payment)
    flight = call(tools, "book_flight", flight_number=flights[0], date="2026-12-16", cabin="economy", **payment)
    assert all(text.startswith("Booked BK") for text in (car, hotel, flight))
    booked = {booking.item_ref for booking in world.list_bookings("T1009") if booking.status == "confirmed"}
    assert {"C-DEN-14", "H-DEN-01", "BJ106"} <= booked


def test_a_flight_number_with_a_space_or_a_prefix_is_found(tools: dict[str, Tool]) -> None:
    details = call(tools, "flight_details", flight_number="flight BJ 106 to Denver", date="2026-12-16")
    assert details == call(tools, "flight_details", flight_number="BJ106", date="2026-12-16")


def test_an_argument_naming_two_ids_is_refused_and_books_nothing(tools: dict[str, Tool], world: TravelWorld) -> None:
    before = world.list_bookings("T1009")
    message = error_of(
        tools,
        "book_hotel",
        traveller_id="T1009",
        hotel_id="H-DEN-01 Wayfarer Lodge or H-DEN-03 Kestrel Inn",
        check_in="2026-12-16",
        check_out="2026-12-18",
        payment_method="card",
    )
    assert "H-DEN-01" in message and "H-DEN-03" in message and "give one hotel id" in message
    assert world.list_bookings("T1009") == before


def test_an_id_of_nothing_in_the_catalog_is_still_refused_by_the_lookup(tools: dict[str, Tool]) -> None:
    message = error_of(
        tools,
        "book_car",
        traveller_id="T1009",
        car_id="C-DEN-99 Imaginary Rentals",
        pickup_date="2026-12-16",
        return_date="2026-12-18",
        payment_method="card",
    )
    assert "There is no car 'C-DEN-99 Imaginary Rentals'" in message


def test_a_booking_line_cancels_the_booking_it_starts_with(tools: dict[str, Tool], world: TravelWorld) -> None:
    line = next(line for line in result_lines(call(tools, "list_bookings", traveller="T1009")) if "[confirmed]" in line)
    booking_id = line.split()[0]
    assert "Cancelled" in call(tools, "cancel_booking", booking_id=line)
    assert world.get_booking(booking_id).status == "cancelled"


def test_a_neighbourhood_that_is_the_city_itself_filters_nothing(tools: dict[str, Tool]) -> None:
    # The 1.5B's hotels specialist searched San Francisco with neighbourhood="San Francisco", five times.
    dates = {"city": "San Francisco", "check_in": "2026-12-12", "check_out": "2026-12-14"}
    assert call(tools, "search_hotels", neighbourhood="San Francisco", **dates) == call(tools, "search_hotels", **dates)
    assert "Neighbourhoods: Union Square" in error_of(tools, "search_hotels", neighbourhood="Chinatown", **dates)


def test_a_metro_code_means_the_citys_airports(tools: dict[str, Tool]) -> None:
    # The 1.5B's flights specialist searched SEA -> TYO for Tokyo.
    by_code = call(tools, "search_flights", origin="SEA", destination="TYO", date="2027-01-16", cabin="business")
    assert by_code == call(
        tools, "search_flights", origin="SEA", destination="Tokyo", date="2027-01-16", cabin="business"
    )
    assert "SEA -> NRT/HND" in by_code


def test_refusals_come_back_as_tool_errors(tools: dict[str, Tool], world: TravelWorld) -> None:
    flight = world.search_flights("SFO", "LAX", "2026-12-16")[0].flight
    message = error_of(
        tools,
        "book_flight",
        traveller_id="T1009",
        flight_number=flight.flight_number,
        date="2026-12-16",
        cabin="economy",
        payment_method="pm-T1003-card",
    )
    assert "belongs to T1003" in message
    basic = next(b for b in world.list_bookings("T1004") if b.cabin == "basic_economy")
    assert "non-refundable" in error_of(tools, "cancel_booking", booking_id=basic.booking_id)


def test_profile_shows_payment_ids_and_delegations(tools: dict[str, Tool]) -> None:
    profile = call(tools, "get_traveller", traveller="T1001")
    assert "pm-T1001-card" in profile and "pm-T1001-points" in profile
    assert "May be booked for by: T1006." in profile
    assert "Authorised to book for: T1001." in call(tools, "get_traveller", traveller="T1006")


@pytest.mark.parametrize(
    ("tool_name", "arguments", "zero_limits"),
    [
        ("search_flights", {"origin": "New York", "destination": "London", "date": "2026-12-16"}, {"max_price": 0}),
        (
            "search_hotels",
            {"city": "Paris", "check_in": "2026-12-16", "check_out": "2026-12-18"},
            {"max_price_per_night": 0, "min_stars": 0},
        ),
        (
            "search_cars",
            {"location": "Denver", "pickup_date": "2026-12-16", "return_date": "2026-12-18"},
            {"max_price_per_day": 0, "min_seats": 0},
        ),
    ],
)
def test_a_zero_limit_means_no_limit(
    tools: dict[str, Tool], tool_name: str, arguments: dict[str, Any], zero_limits: dict[str, int]
) -> None:
    # Small models fill every optional field; a 0 they put there must not exclude everything.
    assert call(tools, tool_name, **arguments, **zero_limits) == call(tools, tool_name, **arguments)
    description = tools["search_flights"].schema.parameters["properties"]["max_price"]["description"]
    assert "0 means no limit" in description


def test_filters_that_exclude_everything_show_the_nearest_flights_and_what_excluded_them(
    tools: dict[str, Tool], world: TravelWorld
) -> None:
    output = call(
        tools,
        "search_flights",
        origin="New York",
        destination="London",
        date="2026-12-16",
        max_price=0,
        max_stops=0,
        depart_after="08:00",
        arrive_before="10:00",
    )
    assert output.startswith("No flight JFK/LGA/EWR -> LHR")
    shown = re.findall(r"^- ([A-Z]{2}\d+) .*\(excluded by (.+)\)$", output, re.MULTILINE)
    assert 1 <= len(shown) <= 3
    bookable = {offer.flight.flight_number for offer in world.search_flights("New York", "London", "2026-12-16")}
    for number, reasons in shown:
        assert number in bookable
        assert "max_price" not in reasons
        assert re.search(r"max_stops 0|depart_after 08:00|arrive_before 10:00", reasons)


def test_an_airport_with_no_flights_points_to_the_other_airports_of_its_city(tools: dict[str, Tool]) -> None:
    output = call(tools, "search_flights", origin="Dallas", destination="JFK", date="2026-12-16")
    assert "-> JFK" in output
    assert "Other airports of the same cities have 1 flight(s) that day" in output
    assert "-> LGA" in output
    by_city = call(tools, "search_flights", origin="Dallas", destination="New York", date="2026-12-16")
    assert by_city.startswith("1 flight(s)") and "Other airports" not in by_city


def test_tool_descriptions_hold_no_example_values_a_model_could_copy(tools: dict[str, Tool]) -> None:
    value_like = re.compile(r"e\.g\.|like [A-Za-z]*\d|\b[A-Z]{2}\d{2,}\b|\bT\d{4}\b|pm-|BK\d|H-[A-Z]{3}|C-[A-Z]{3}")
    for item in tools.values():
        texts = [item.description] + [
            str(spec.get("description", "")) for spec in item.schema.parameters["properties"].values()
        ]
        for text in texts:
            assert not value_like.search(text), (item.name, text)


@pytest.mark.parametrize("placeholder", ["unknown", "Any", " none ", "N/A", ""])
def test_a_placeholder_in_an_optional_filter_means_no_filter(tools: dict[str, Tool], placeholder: str) -> None:
    # Qwen2.5-Coder-1.5B, told to leave a filter out, wrote neighbourhood "unknown" and got no hotel at all.
    hotels = dict(city="New York", check_in="2026-12-12", check_out="2026-12-15")
    assert call(tools, "search_hotels", **hotels, neighbourhood=placeholder) == call(tools, "search_hotels", **hotels)
    flights = dict(origin="SFO", destination="New York", date="2026-12-12")
    filtered = call(tools, "search_flights", **flights, depart_after=placeholder, arrive_before=placeholder)
    assert filtered == call(tools, "search_flights", **flights)
    cars = dict(location="New York", pickup_date="2026-12-12", return_date="2026-12-15")
    assert call(tools, "search_cars", **cars, car_class=placeholder) == call(tools, "search_cars", **cars)


def test_with_nobody_to_approve_the_assistant_plans_without_profile_or_booking_tools(world: TravelWorld) -> None:
    from retinue.approvals import approve_all, unattended
    from retinue_travel.assistant import build_assistant

    def offered(approver: Any) -> set[str]:
        lead = build_assistant("lead", world, model="scripted", approver=approver)
        return {item.name for item in lead.tools_for_run()}

    assert {"get_traveller", "book_flight"} <= offered(approve_all)
    assert offered(unattended) == {"ask_flights", "ask_hotels", "ask_cars", "ask_weather", "record_decision"}
