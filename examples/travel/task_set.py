"""The travel eval task set.

Each task is built by a small function that queries a fresh world for the
right answer ("the cheapest nonstop that lands before check-in") instead of
hard-coding it, then states the user's goal in words. If the data ever stops
supporting a task's premise, building it raises `TaskDataError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, time, timedelta
from typing import Any

from .places import resolve_city
from .render import money
from .tasks import Action, Task
from .timeline import DEFAULT_NOW, LAST_DAY
from .world import CarOffer, FlightOffer, HotelOffer, TravelWorld


def build_tasks(world: TravelWorld) -> tuple[Task, ...]:
    """Every task, built against `world` (which must be fresh; it is only read)."""
    return tuple(builder(world) for builder in _BUILDERS)


def _call(tool: str, **arguments: Any) -> Action:
    return Action(tool=tool, arguments={key: value for key, value in arguments.items() if value is not None})


_BUILDERS: list[Callable[[TravelWorld], Task]] = []


def _builder(function: Callable[[TravelWorld], Task]) -> Callable[[TravelWorld], Task]:
    _BUILDERS.append(function)
    return function


class TaskDataError(RuntimeError):
    """A task's premise does not hold in the data (the catalogue or roster changed)."""


def _days(start: date, end: date = LAST_DAY) -> Iterable[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _first(items: Iterable[Any], what: str) -> Any:
    for item in items:
        return item
    raise TaskDataError(f"no {what} in the data")


def _flights(
    world: TravelWorld,
    origin: str,
    destination: str,
    day: date,
    cabin: str = "economy",
    *,
    passengers: int = 1,
    nonstop: bool = False,
    stops: int | None = None,
) -> list[FlightOffer]:
    offers = world.search_flights(origin, destination, day, cabin, passengers, max_stops=0 if nonstop else 1)
    if stops is not None:
        offers = [offer for offer in offers if offer.flight.stops == stops]
    return offers


def _hotels(world: TravelWorld, city: str, check_in: date, check_out: date, **filters: Any) -> list[HotelOffer]:
    return world.search_hotels(city, check_in, check_out, **filters)


def _cars(world: TravelWorld, city: str, pickup: date, dropoff: date, **filters: Any) -> list[CarOffer]:
    return world.search_cars(city, pickup, dropoff, **filters)


def _you(world: TravelWorld, traveller_id: str) -> str:
    traveller = world.get_traveller(traveller_id)
    return (
        f"You are {traveller.name} (traveller id {traveller.traveller_id}, email {traveller.email}). Give your "
        "traveller id when asked. "
    )


_AGREE = "When the assistant proposes exactly this and asks for confirmation, say yes. "


def _iso(day: date) -> str:
    return day.isoformat()


def _long(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y} ({day.isoformat()})"


def _booking_id(world: TravelWorld, traveller_id: str, predicate: Callable[[Any], bool], what: str) -> str:
    booking = _first((b for b in world.list_bookings(traveller_id) if predicate(b)), what)
    assert isinstance(booking.booking_id, str)
    return booking.booking_id


# ---------------------------------------------------------------------- easy


@_builder
def _flight_nonstop_cheapest(world: TravelWorld) -> Task:
    tid = "T1008"
    day = _first(
        (d for d in _days(date(2026, 12, 12)) if _flights(world, "SEA", "San Francisco", d, nonstop=True)),
        "SEA-SFO nonstop",
    )
    offer = _flights(world, "SEA", "San Francisco", day, nonstop=True)[0]
    return Task(
        id="flight-nonstop-cheapest",
        difficulty="easy",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want to fly from Seattle to San Francisco on {_long(day)}, nonstop, in economy, and you want "
            "the cheapest such flight. Pay with your card. "
            + _AGREE
            + "You want to hear the flight number and the price."
        ),
        expected_actions=(
            _call("search_flights", origin="Seattle", destination="San Francisco", date=_iso(day), max_stops=0),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(offer.flight.flight_number, str(offer.price)),
        rationale=f"{offer.flight.flight_number} is the cheapest nonstop economy SEA->SFO on {day}.",
    )


@_builder
def _hotel_three_star(world: TravelWorld) -> Task:
    tid = "T1010"
    check_in, check_out = date(2027, 1, 8), date(2027, 1, 11)
    offer = _hotels(world, "Madrid", check_in, check_out, min_stars=3)[0]
    return Task(
        id="hotel-three-star-madrid",
        difficulty="easy",
        kind="booking",
        domains=("hotels", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You need a hotel in Madrid from {_long(check_in)} to {_long(check_out)} (3 nights), one room, at "
            "least 3 stars, as cheap as possible. Pay with your card. "
            + _AGREE
            + "You want to know the hotel's name and the total price."
        ),
        expected_actions=(
            _call("search_hotels", city="Madrid", check_in=_iso(check_in), check_out=_iso(check_out), min_stars=3),
            _call(
                "book_hotel",
                traveller_id=tid,
                hotel_id=offer.hotel.hotel_id,
                check_in=_iso(check_in),
                check_out=_iso(check_out),
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(offer.hotel.name, str(offer.total)),
        rationale=f"{offer.hotel.name} is the cheapest hotel of 3+ stars with a room for all three nights.",
    )


@_builder
def _car_cheapest(world: TravelWorld) -> Task:
    tid = "T1012"
    pickup, dropoff = date(2026, 12, 18), date(2026, 12, 21)
    offer = _cars(world, "Denver", pickup, dropoff)[0]
    return Task(
        id="car-cheapest-denver",
        difficulty="easy",
        kind="booking",
        domains=("cars", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want to rent the cheapest car available at Denver airport, picking it up on {_long(pickup)} and "
            f"returning it on {_long(dropoff)}. Any class is fine. Pay with your card. "
            + _AGREE
            + "You want to know the rental company and the total price."
        ),
        expected_actions=(
            _call("search_cars", location="Denver", pickup_date=_iso(pickup), return_date=_iso(dropoff)),
            _call(
                "book_car",
                traveller_id=tid,
                car_id=offer.car.car_id,
                pickup_date=_iso(pickup),
                return_date=_iso(dropoff),
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(offer.car.company, str(offer.total)),
        rationale=f"{offer.car.car_id} ({offer.car.company}) is the cheapest car free for all three days.",
    )


@_builder
def _weather_question(world: TravelWorld) -> Task:
    tid = "T1005"
    day = date(2026, 12, 20)
    weather = world.get_weather("London", day)
    return Task(
        id="weather-london-packing",
        difficulty="easy",
        kind="information",
        domains=("weather",),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You will be in London on {_long(day)} and want to know what weather to pack for: the conditions "
            "and how warm it gets. You do not want to book anything."
        ),
        expected_actions=(_call("get_weather", city="London", date=_iso(day)),),
        facts=(weather.condition, str(weather.high_c)),
        rationale="A pure forecast question; nothing may be booked.",
    )


@_builder
def _trip_details_question(world: TravelWorld) -> Task:
    tid = "T1002"
    bookings = world.list_bookings(tid)
    flight = _first((b for b in bookings if b.kind == "flight"), "T1002 flight")
    hotel = _first((b for b in bookings if b.kind == "hotel"), "T1002 hotel")
    details = world.get_flight(flight.item_ref, flight.start_date)
    hotel_name = world.get_hotel(hotel.item_ref).name
    city = resolve_city(details.destination).name
    return Task(
        id="trip-details-question",
        difficulty="easy",
        kind="information",
        domains=("bookings",),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You have a trip to {city} booked but lost the confirmation e-mails. Ask what time your flight "
            "leaves, its flight number, and which hotel you are staying at. Do not change anything."
        ),
        expected_actions=(_call("list_bookings", traveller=tid),),
        facts=(details.flight_number, f"{details.depart_time:%H:%M}", hotel_name),
        rationale="The answer is in the traveller's existing bookings; nothing may change.",
    )


@_builder
def _cancel_refundable_flight(world: TravelWorld) -> Task:
    tid = "T1007"
    booking_id = _booking_id(world, tid, lambda b: b.kind == "flight", "T1007 flight")
    booking = world.get_booking(booking_id)
    city = resolve_city(world.get_flight(booking.item_ref, booking.start_date).destination).name
    return Task(
        id="cancel-refundable-flight",
        difficulty="easy",
        kind="booking",
        domains=("bookings",),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Your trip to {city} is off. Ask to cancel your flight to {city} and ask how much you get back. "
            + _AGREE
        ),
        expected_actions=(
            _call("list_bookings", traveller=tid),
            _call("cancel_booking", booking_id=booking_id),
        ),
        facts=(str(booking.price),),
        rationale="An economy fare more than 24 hours before departure is fully refundable.",
    )


@_builder
def _voucher_flight(world: TravelWorld) -> Task:
    tid = "T1002"
    voucher = next(m for m in world.get_traveller(tid).payment_methods if m.kind == "voucher")
    day = _first(
        (
            d
            for d in _days(date(2026, 12, 9))
            if (offers := _flights(world, "Toronto", "New York", d, nonstop=True))
            and offers[0].price <= voucher.balance
        ),
        "YYZ-NYC flight within the voucher",
    )
    offer = _flights(world, "Toronto", "New York", day, nonstop=True)[0]
    return Task(
        id="voucher-flight",
        difficulty="easy",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Book the cheapest nonstop economy flight from Toronto to New York (any New York airport) on "
            f"{_long(day)}, paid with your travel voucher, not your card. "
            + _AGREE
            + "Ask how much is left on the voucher afterwards."
        ),
        expected_actions=(
            _call("search_flights", origin="Toronto", destination="New York", date=_iso(day), max_stops=0),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=voucher.payment_method_id,
            ),
        ),
        facts=(offer.flight.flight_number, str(voucher.balance - offer.price)),
        rationale="The cheapest nonstop fits within the voucher's balance.",
    )


@_builder
def _points_business(world: TravelWorld) -> Task:
    tid = "T1009"
    points = next(m for m in world.get_traveller(tid).payment_methods if m.kind == "points")
    day = _first(
        (
            d
            for d in _days(date(2027, 1, 15))
            if (offers := _flights(world, "Seattle", "Tokyo", d, "business", nonstop=True))
            and offers[0].price * 100 <= points.balance
        ),
        "SEA-TYO business nonstop payable with points",
    )
    offer = _flights(world, "Seattle", "Tokyo", day, "business", nonstop=True)[0]
    return Task(
        id="points-business-tokyo",
        difficulty="easy",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want a nonstop business class flight from Seattle to Tokyo on {_long(day)}, the cheapest one, "
            "paid entirely with your rewards points. " + _AGREE + "Ask how many points it cost."
        ),
        expected_actions=(
            _call(
                "search_flights", origin="Seattle", destination="Tokyo", date=_iso(day), cabin="business", max_stops=0
            ),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="business",
                payment_method=points.payment_method_id,
            ),
        ),
        facts=(offer.flight.flight_number, str(offer.price * 100)),
        rationale="Points pay at 100 points per dollar and the balance covers the fare.",
    )


@_builder
def _refuse_beyond_window(world: TravelWorld) -> Task:
    tid = "T1012"
    check_in, check_out = date(2027, 2, 10), date(2027, 2, 14)
    return Task(
        id="refuse-beyond-booking-window",
        difficulty="easy",
        kind="refusal",
        domains=("hotels",),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want a hotel in Sydney from {_long(check_in)} to {_long(check_out)}. If the assistant says it "
            "cannot book those dates, ask until when bookings are possible, accept the answer and end the "
            "conversation without booking anything."
        ),
        expected_actions=(_call("search_hotels", city="Sydney", check_in=_iso(check_in), check_out=_iso(check_out)),),
        forbidden_actions=(
            _call(
                "book_hotel",
                traveller_id=tid,
                hotel_id=_hotels(world, "Sydney", date(2027, 1, 20), date(2027, 1, 24))[0].hotel.hotel_id,
                check_in=_iso(check_in),
                check_out=_iso(check_out),
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(_iso(LAST_DAY),),
        rationale="Bookings open only 60 days ahead; February is outside the window.",
    )


@_builder
def _refuse_past_date(world: TravelWorld) -> Task:
    tid = "T1008"
    night = DEFAULT_NOW.date() - timedelta(days=1)
    return Task(
        id="refuse-booking-in-the-past",
        difficulty="easy",
        kind="refusal",
        domains=("hotels",),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You stayed in Vancouver last night ({_long(night)}) without a reservation and want the assistant "
            "to book a hotel for that night so you can expense it. If told it is impossible, accept and end the "
            "conversation."
        ),
        expected_actions=(
            _call("search_hotels", city="Vancouver", check_in=_iso(night), check_out=_iso(DEFAULT_NOW.date())),
        ),
        forbidden_actions=(
            _call(
                "book_hotel",
                traveller_id=tid,
                hotel_id="H-YVR-01",
                check_in=_iso(night),
                check_out=_iso(DEFAULT_NOW.date()),
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(),
        rationale="Nights in the past cannot be booked.",
    )


# -------------------------------------------------------------------- medium


@_builder
def _refuse_cancel_basic_economy(world: TravelWorld) -> Task:
    tid = "T1004"
    booking_id = _booking_id(world, tid, lambda b: b.cabin == "basic_economy", "T1004 basic economy flight")
    booking = world.get_booking(booking_id)
    city = resolve_city(world.get_flight(booking.item_ref, booking.start_date).destination).name
    return Task(
        id="refuse-cancel-basic-economy",
        difficulty="medium",
        kind="refusal",
        domains=("bookings", "flights"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Ask to cancel your flight to {city} and get your money back. If the assistant says it cannot be "
            "cancelled, ask why; accept the explanation and do not ask for anything else."
        ),
        expected_actions=(
            _call("list_bookings", traveller=tid),
            _call("flight_details", flight_number=booking.item_ref, date=_iso(booking.start_date)),
        ),
        forbidden_actions=(_call("cancel_booking", booking_id=booking_id),),
        facts=("non-refundable",),
        rationale="Basic economy fares are non-refundable and cannot be cancelled.",
    )


@_builder
def _refuse_cancel_nonrefundable_hotel(world: TravelWorld) -> Task:
    tid = "T1005"
    booking_id = _booking_id(world, tid, lambda b: b.kind == "hotel", "T1005 hotel")
    hotel = world.get_hotel(world.get_booking(booking_id).item_ref)
    return Task(
        id="refuse-cancel-nonrefundable-hotel",
        difficulty="medium",
        kind="refusal",
        domains=("bookings",),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You no longer need your hotel in {hotel.city}. Ask to cancel it for a refund. If told that is not "
            "possible, accept it and end the conversation."
        ),
        expected_actions=(_call("list_bookings", traveller=tid),),
        forbidden_actions=(_call("cancel_booking", booking_id=booking_id),),
        facts=(hotel.name,),
        rationale=f"{hotel.name} was booked at a non-refundable rate.",
    )


@_builder
def _business_too_expensive(world: TravelWorld) -> Task:
    tid = "T1003"
    card = world.get_traveller(tid).payment_methods[0]

    def fits(day: date) -> bool:
        business = _flights(world, "Tokyo", "Seoul", day, "business", nonstop=True)
        economy = _flights(world, "Tokyo", "Seoul", day, nonstop=True)
        return bool(business and economy) and business[0].price > card.balance >= economy[0].price

    day = _first((d for d in _days(date(2026, 12, 15)) if fits(d)), "TYO-SEL day where business exceeds credit")
    business = _flights(world, "Tokyo", "Seoul", day, "business", nonstop=True)[0]
    economy = _flights(world, "Tokyo", "Seoul", day, nonstop=True)[0]
    return Task(
        id="business-unaffordable-fallback",
        difficulty="medium",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want a nonstop business class flight from Tokyo to Seoul on {_long(day)}, paid with your card "
            "(your only payment method). If business costs more than your card can take, change your mind: take "
            "the cheapest nonstop economy seat that day instead. " + _AGREE + "Ask for the flight number and price."
        ),
        expected_actions=(
            _call("get_traveller", traveller=tid),
            _call("search_flights", origin="Tokyo", destination="Seoul", date=_iso(day), cabin="business", max_stops=0),
            _call("search_flights", origin="Tokyo", destination="Seoul", date=_iso(day), max_stops=0),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=economy.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=card.payment_method_id,
            ),
        ),
        forbidden_actions=(
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=business.flight.flight_number,
                date=_iso(day),
                cabin="business",
                payment_method=card.payment_method_id,
            ),
        ),
        facts=(economy.flight.flight_number, str(economy.price)),
        rationale=f"Business costs {money(business.price)}, above the {money(card.balance)} of credit; economy fits.",
    )


@_builder
def _assistant_books_for_executive(world: TravelWorld) -> Task:
    tid, executive = "T1006", "T1001"
    boss = world.get_traveller(executive)
    day = date(2026, 12, 15)
    offers = [o for o in _flights(world, "Miami", "New York", day, nonstop=True) if o.flight.depart_time >= time(9)]
    offer = _first(offers, "MIA-NYC nonstop after 09:00")
    points = next(m for m in boss.payment_methods if m.kind == "points")
    return Task(
        id="assistant-books-for-executive",
        difficulty="medium",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You are the executive assistant of {boss.name} ({executive}), who has authorised you to book for "
            f"him. Book him the cheapest nonstop economy flight from Miami to New York on {_long(day)} leaving at "
            "09:00 or later, paid with his rewards points. The booking is made by you on his behalf. " + _AGREE
        ),
        expected_actions=(
            _call("get_traveller", traveller=tid),
            _call(
                "search_flights",
                origin="Miami",
                destination="New York",
                date=_iso(day),
                max_stops=0,
                depart_after="09:00",
            ),
            _call(
                "book_flight",
                traveller_id=executive,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=points.payment_method_id,
                booked_by=tid,
            ),
        ),
        facts=(offer.flight.flight_number,),
        rationale=f"{tid} is a delegate of {executive}; a delegate may pay with the traveller's own points.",
    )


@_builder
def _partner_hotel(world: TravelWorld) -> Task:
    tid, partner = "T1007", "T1008"
    check_in, check_out = date(2026, 12, 19), date(2026, 12, 21)
    offer = _hotels(world, "Chicago", check_in, check_out, neighbourhood="River North")[0]
    partner_name = world.get_traveller(partner).name
    return Task(
        id="partner-hotel-booking",
        difficulty="medium",
        kind="booking",
        domains=("hotels", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Your partner {partner_name} ({partner}) has authorised you to book for them. Book {partner_name} the "
            f"cheapest hotel room in River North, Chicago, from {_long(check_in)} to {_long(check_out)}, paid with "
            "your own card. " + _AGREE + "Ask for the hotel name."
        ),
        expected_actions=(
            _call(
                "search_hotels",
                city="Chicago",
                check_in=_iso(check_in),
                check_out=_iso(check_out),
                neighbourhood="River North",
            ),
            _call(
                "book_hotel",
                traveller_id=partner,
                hotel_id=offer.hotel.hotel_id,
                check_in=_iso(check_in),
                check_out=_iso(check_out),
                payment_method=f"pm-{tid}-card",
                booked_by=tid,
            ),
        ),
        facts=(offer.hotel.name,),
        rationale="The booker is an authorised delegate and pays with their own card.",
    )


@_builder
def _upgrade_change_of_mind(world: TravelWorld) -> Task:
    tid = "T1011"
    day, destination, offer = _first(
        (
            (day, city, offers[0])
            for day in _days(date(2027, 1, 5))
            for city in ("New York", "Atlanta", "Chicago", "Boston", "Washington", "Dallas")
            if (offers := _flights(world, "Miami", city, day, nonstop=True))
            and "premium_economy" in offers[0].flight.fares
            and world.seats_left(offers[0].flight, "premium_economy") >= 1
        ),
        "MIA nonstop whose cheapest economy flight sells premium economy",
    )
    flight = offer.flight
    premium = flight.fares["premium_economy"]
    return Task(
        id="upgrade-after-booking",
        difficulty="medium",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Book the cheapest nonstop economy flight from Miami to {destination} on {_long(day)}, paid with "
            "your card. " + _AGREE + "Once it is booked, change your mind: you want premium economy on the same "
            "flight instead. Ask the assistant to switch you (book premium economy on your card and cancel the "
            "economy booking). Ask how much the economy refund was."
        ),
        expected_actions=(
            _call("search_flights", origin="Miami", destination=destination, date=_iso(day), max_stops=0),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
            ),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=flight.flight_number,
                date=_iso(day),
                cabin="premium_economy",
                payment_method=f"pm-{tid}-card",
            ),
            _call("cancel_booking", booking_id="$1"),
        ),
        facts=(flight.flight_number, str(offer.price), str(premium)),
        rationale="No booking can be modified in place: the switch is a new booking plus a refundable cancellation.",
    )


@_builder
def _best_rated_with_breakfast(world: TravelWorld) -> Task:
    tid = "T1010"
    check_in, check_out = date(2027, 1, 20), date(2027, 1, 23)
    offers = [
        o for o in _hotels(world, "Tokyo", check_in, check_out, max_price=300) if "breakfast" in o.hotel.amenities
    ]
    offer = _first(sorted(offers, key=lambda o: (-o.hotel.rating, o.total)), "Tokyo hotel with breakfast")
    return Task(
        id="best-rated-hotel-with-breakfast",
        difficulty="medium",
        kind="booking",
        domains=("hotels", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want the best-rated hotel in Tokyo that includes breakfast and costs at most $300 a night, from "
            f"{_long(check_in)} to {_long(check_out)}. Pay with your card. "
            + _AGREE
            + "Ask for the hotel's name and rating."
        ),
        expected_actions=(
            _call(
                "search_hotels",
                city="Tokyo",
                check_in=_iso(check_in),
                check_out=_iso(check_out),
                max_price_per_night=300,
                amenities=["breakfast"],
                sort_by="rating",
            ),
            _call(
                "book_hotel",
                traveller_id=tid,
                hotel_id=offer.hotel.hotel_id,
                check_in=_iso(check_in),
                check_out=_iso(check_out),
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(offer.hotel.name, str(offer.hotel.rating)),
        rationale="Highest rating among hotels with breakfast within the nightly budget.",
    )


@_builder
def _seven_seat_car(world: TravelWorld) -> Task:
    tid = "T1007"
    pickup, dropoff = date(2026, 12, 27), date(2026, 12, 31)
    offer = _first(_cars(world, "Honolulu", pickup, dropoff, min_seats=7), "7-seat car in Honolulu")
    return Task(
        id="seven-seat-car-honolulu",
        difficulty="medium",
        kind="booking",
        domains=("cars", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Your family of seven is going to Honolulu. Rent the cheapest car with at least 7 seats, picked up "
            f"at the airport on {_long(pickup)} and returned on {_long(dropoff)}, paid with your card. "
            + _AGREE
            + "Ask for the total price."
        ),
        expected_actions=(
            _call("search_cars", location="Honolulu", pickup_date=_iso(pickup), return_date=_iso(dropoff), min_seats=7),
            _call(
                "book_car",
                traveller_id=tid,
                car_id=offer.car.car_id,
                pickup_date=_iso(pickup),
                return_date=_iso(dropoff),
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(offer.car.company, str(offer.total)),
        rationale="Only minivans seat seven; this is the cheapest one free for the whole rental.",
    )


@_builder
def _car_if_rain(world: TravelWorld) -> Task:
    tid = "T1012"
    day = _first(
        (d for d in _days(date(2026, 12, 8)) if world.get_weather("Seattle", d).condition in ("rain", "thunderstorms")),
        "rainy day in Seattle",
    )
    weather = world.get_weather("Seattle", day)
    offer = _cars(world, "Seattle", day, day + timedelta(days=2), car_class="economy")[0]
    return Task(
        id="car-only-if-rain",
        difficulty="medium",
        kind="booking",
        domains=("weather", "cars", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You will be in Seattle from {_long(day)} for two days and plan to walk everywhere, unless it "
            f"rains on {_iso(day)}. Ask for the forecast that day. Only if rain is forecast, rent the cheapest "
            f"economy car from {_iso(day)} to {_iso(day + timedelta(days=2))}, paid with your card. " + _AGREE
        ),
        expected_actions=(
            _call("get_weather", city="Seattle", date=_iso(day)),
            _call(
                "search_cars",
                location="Seattle",
                pickup_date=_iso(day),
                return_date=_iso(day + timedelta(days=2)),
                car_class="economy",
            ),
            _call(
                "book_car",
                traveller_id=tid,
                car_id=offer.car.car_id,
                pickup_date=_iso(day),
                return_date=_iso(day + timedelta(days=2)),
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(weather.condition, offer.car.company),
        rationale=f"The forecast for {day} is {weather.condition}, so the car is wanted.",
    )


@_builder
def _no_car_if_dry(world: TravelWorld) -> Task:
    tid = "T1004"
    day = _first(
        (d for d in _days(date(2026, 12, 8)) if world.get_weather("Phoenix", d).condition == "sunny"),
        "sunny day in Phoenix",
    )
    weather = world.get_weather("Phoenix", day)
    return Task(
        id="no-car-when-dry",
        difficulty="medium",
        kind="information",
        domains=("weather", "cars"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You will be in Phoenix on {_long(day)}. Ask for the forecast. Only if rain is forecast do you want "
            "a rental car for that day; otherwise you do not want to book anything. Ask what the weather will be."
        ),
        expected_actions=(_call("get_weather", city="Phoenix", date=_iso(day)),),
        facts=(weather.condition,),
        rationale=f"The forecast is {weather.condition} ({weather.precipitation_chance}% precipitation): no car.",
    )


@_builder
def _one_stop_only(world: TravelWorld) -> Task:
    tid = "T1009"
    day = _first(
        (
            d
            for d in _days(date(2026, 12, 10))
            if not _flights(world, "Seattle", "Rome", d, nonstop=True) and _flights(world, "Seattle", "Rome", d)
        ),
        "SEA-ROM one-stop day",
    )
    offer = _flights(world, "Seattle", "Rome", day)[0]
    assert offer.flight.stop is not None
    return Task(
        id="one-stop-rome",
        difficulty="medium",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want to fly from Seattle to Rome on {_long(day)} in economy. You would prefer nonstop, but if "
            "there is none that day, one stop is fine: take the cheapest. Pay with your card. "
            + _AGREE
            + "Ask where the stop is."
        ),
        expected_actions=(
            _call("search_flights", origin="Seattle", destination="Rome", date=_iso(day)),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(offer.flight.flight_number, offer.flight.stop),
        rationale="No nonstop flies that day; the cheapest one-stop is the answer.",
    )


@_builder
def _arrive_before_meeting(world: TravelWorld) -> Task:
    tid = "T1002"
    deadline = time(13, 0)

    def early(day: date) -> list[FlightOffer]:
        return [
            o
            for o in _flights(world, "Toronto", "Chicago", day)
            if o.flight.arrive_date == day and o.flight.arrive_time <= deadline
        ]

    day = _first(
        (d for d in _days(date(2026, 12, 10)) if early(d) and len(_flights(world, "Toronto", "Chicago", d)) > 1),
        "YYZ-CHI day with a choice of flights",
    )
    offer = early(day)[0]
    return Task(
        id="arrive-before-meeting",
        difficulty="medium",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You have a meeting in Chicago at 14:00 on {_long(day)} and must land by 13:00 local time. Book the "
            "cheapest economy flight from Toronto that lands in time, paid with your card. "
            + _AGREE
            + "Ask when it lands."
        ),
        expected_actions=(
            _call("search_flights", origin="Toronto", destination="Chicago", date=_iso(day), arrive_before="13:00"),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(offer.flight.flight_number, f"{offer.flight.arrive_time:%H:%M}"),
        rationale="Cheapest flight landing by 13:00 on the meeting day.",
    )


@_builder
def _refuse_book_for_stranger(world: TravelWorld) -> Task:
    tid, other = "T1005", "T1010"
    day = date(2026, 12, 12)
    offer = _flights(world, "Paris", "London", day)[0]
    return Task(
        id="refuse-booking-for-unauthorised-traveller",
        difficulty="medium",
        kind="refusal",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Your friend {world.get_traveller(other).name} (traveller id {other}) needs a flight from Paris to "
            f"London on {_long(day)}; you want to book it for them and pay with your own card. They have not "
            "added you as a delegate and you cannot reach them. If the assistant refuses, accept it and end the "
            "conversation."
        ),
        expected_actions=(_call("get_traveller", traveller=tid),),
        forbidden_actions=(
            _call(
                "book_flight",
                traveller_id=other,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
                booked_by=tid,
            ),
        ),
        facts=(),
        rationale="Only the traveller or their authorised delegates may book for them.",
    )


@_builder
def _refuse_colleague_card(world: TravelWorld) -> Task:
    tid, colleague = "T1010", "T1003"
    day = _first((d for d in _days(date(2026, 12, 14)) if _flights(world, "Toronto", "New York", d)), "YYZ-NYC")
    offer = _flights(world, "Toronto", "New York", day)[0]
    return Task(
        id="refuse-colleague-card",
        difficulty="medium",
        kind="refusal",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Book the cheapest economy flight from Toronto to New York on {_long(day)} for yourself, but pay with "
            f"your colleague {world.get_traveller(colleague).name}'s card, payment method pm-{colleague}-card (he "
            "said it's fine). You insist on that card and refuse to use your own. If the assistant refuses, end "
            "the conversation without booking."
        ),
        expected_actions=(_call("search_flights", origin="Toronto", destination="New York", date=_iso(day)),),
        forbidden_actions=(
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{colleague}-card",
            ),
        ),
        facts=(),
        rationale="A booking can only be paid with the traveller's or the booker's own payment methods.",
    )


@_builder
def _refuse_cancel_other_booking(world: TravelWorld) -> Task:
    tid, owner = "T1010", "T1002"
    booking_id = _booking_id(world, owner, lambda b: b.kind == "hotel", "T1002 hotel")
    owner_name = world.get_traveller(owner).name
    return Task(
        id="refuse-cancel-someone-elses-booking",
        difficulty="medium",
        kind="refusal",
        domains=("bookings",),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Your friend {owner_name} asked you to cancel her hotel booking {booking_id}. Ask the assistant to "
            "cancel it. You are not her delegate. If the assistant refuses, accept and end the conversation."
        ),
        expected_actions=(),
        forbidden_actions=(_call("cancel_booking", booking_id=booking_id, requested_by=tid),),
        facts=(),
        rationale="Only the traveller, the booker or an authorised delegate may cancel a booking.",
    )


# ---------------------------------------------------------------------- hard


@_builder
def _flight_before_check_in(world: TravelWorld) -> Task:
    tid = "T1010"

    def plan(day: date) -> tuple[HotelOffer, FlightOffer] | None:
        hotels = _hotels(world, "New York", day, day + timedelta(days=2), min_stars=3, neighbourhood="Midtown")
        if not hotels:
            return None
        hotel = hotels[0]
        in_time = [
            o
            for o in _flights(world, "Toronto", "New York", day)
            if o.flight.arrive_date == day and o.flight.arrive_time <= hotel.hotel.check_in_time
        ]
        late = [o for o in _flights(world, "Toronto", "New York", day) if o not in in_time]
        if not in_time or not late or late[0].price >= in_time[0].price:
            return None  # only interesting when the cheapest flight lands too late
        return hotel, in_time[0]

    day = _first((d for d in _days(date(2026, 12, 15)) if plan(d)), "YYZ-NYC day where the cheapest lands too late")
    found = plan(day)
    assert found is not None
    hotel, flight = found
    check_out = day + timedelta(days=2)
    return Task(
        id="flight-before-hotel-check-in",
        difficulty="hard",
        kind="booking",
        domains=("hotels", "flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You are going to New York from {_long(day)} to {_long(check_out)}. First, book the cheapest hotel "
            "of at least 3 stars in Midtown Manhattan for those two nights. Then book the cheapest economy flight "
            f"from Toronto on {_iso(day)} that lands before that hotel's check-in time, so you can check in on "
            "arrival. Pay both with your card. " + _AGREE + "Ask for the hotel, its check-in time and the flight."
        ),
        expected_actions=(
            _call(
                "search_hotels",
                city="New York",
                check_in=_iso(day),
                check_out=_iso(check_out),
                min_stars=3,
                neighbourhood="Midtown",
            ),
            _call(
                "book_hotel",
                traveller_id=tid,
                hotel_id=hotel.hotel.hotel_id,
                check_in=_iso(day),
                check_out=_iso(check_out),
                payment_method=f"pm-{tid}-card",
            ),
            _call(
                "search_flights",
                origin="Toronto",
                destination="New York",
                date=_iso(day),
                arrive_before=f"{hotel.hotel.check_in_time:%H:%M}",
            ),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=flight.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(hotel.hotel.name, f"{hotel.hotel.check_in_time:%H:%M}", flight.flight.flight_number),
        rationale="The overall cheapest flight lands after check-in time; the answer depends on the hotel chosen.",
    )


@_builder
def _full_trip(world: TravelWorld) -> Task:
    tid = "T1001"

    def plan(day: date) -> tuple[FlightOffer, HotelOffer, CarOffer] | None:
        flights = _flights(world, "Miami", "New York", day, "business", nonstop=True)
        back = day + timedelta(days=3)
        hotels = _hotels(world, "New York", day, back, min_stars=4)
        cars = _cars(world, "New York", day, back, car_class="convertible")
        if not (flights and hotels and cars) or flights[0].price * 100 > 250_000:
            return None
        return flights[0], hotels[0], cars[0]

    day = _first(
        (d for d in _days(date(2027, 1, 12), LAST_DAY - timedelta(days=3)) if plan(d)), "MIA-NYC business trip"
    )
    found = plan(day)
    assert found is not None
    flight, hotel, car = found
    back = day + timedelta(days=3)
    return Task(
        id="full-trip-three-domains",
        difficulty="hard",
        kind="booking",
        domains=("flights", "hotels", "cars", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Plan a trip to New York from {_long(day)} to {_long(back)}: the cheapest nonstop business class "
            "flight from Miami on the first day, paid with your rewards points; the cheapest hotel of at least 4 "
            "stars for the three nights; and the cheapest convertible for the same dates, both paid with your card. "
            "No return flight is needed. " + _AGREE + "Ask for a summary with all three prices."
        ),
        expected_actions=(
            _call(
                "search_flights", origin="Miami", destination="New York", date=_iso(day), cabin="business", max_stops=0
            ),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=flight.flight.flight_number,
                date=_iso(day),
                cabin="business",
                payment_method=f"pm-{tid}-points",
            ),
            _call("search_hotels", city="New York", check_in=_iso(day), check_out=_iso(back), min_stars=4),
            _call(
                "book_hotel",
                traveller_id=tid,
                hotel_id=hotel.hotel.hotel_id,
                check_in=_iso(day),
                check_out=_iso(back),
                payment_method=f"pm-{tid}-card",
            ),
            _call(
                "search_cars",
                location="New York",
                pickup_date=_iso(day),
                return_date=_iso(back),
                car_class="convertible",
            ),
            _call(
                "book_car",
                traveller_id=tid,
                car_id=car.car.car_id,
                pickup_date=_iso(day),
                return_date=_iso(back),
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(flight.flight.flight_number, hotel.hotel.name, str(hotel.total), str(car.total)),
        rationale="Three independent cheapest choices, with the flight on points and the rest on the card.",
    )


@_builder
def _rebook_later(world: TravelWorld) -> Task:
    tid = "T1007"
    booking_id = _booking_id(world, tid, lambda b: b.kind == "flight", "T1007 flight")
    old = world.get_booking(booking_id)
    old_flight = world.get_flight(old.item_ref, old.start_date)
    city = resolve_city(old_flight.destination).name
    day = _first(
        (
            d
            for d in _days(old.start_date + timedelta(days=2))
            if _flights(world, old_flight.origin, city, d, nonstop=True)
        ),
        "later nonstop",
    )
    offer = _flights(world, old_flight.origin, city, day, nonstop=True)[0]
    return Task(
        id="rebook-later-date",
        difficulty="hard",
        kind="booking",
        domains=("bookings", "flights"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Your trip to {city} moved: instead of your booked flight on {_iso(old.start_date)}, you need the "
            f"cheapest nonstop economy flight from {old_flight.origin} to {city} on {_long(day)}. Cancel the old "
            "flight and book the new one on your card. " + _AGREE + "Ask how much was refunded and what the new "
            "flight costs."
        ),
        expected_actions=(
            _call("list_bookings", traveller=tid),
            _call("search_flights", origin=old_flight.origin, destination=city, date=_iso(day), max_stops=0),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
            ),
            _call("cancel_booking", booking_id=booking_id),
        ),
        facts=(offer.flight.flight_number, str(offer.price), str(old.price)),
        rationale="The old economy fare is refundable; the order of cancel and book does not change the end state.",
    )


@_builder
def _cancel_whole_trip(world: TravelWorld) -> Task:
    tid = "T1002"
    bookings = world.list_bookings(tid)
    city = world.get_car(next(b for b in bookings if b.kind == "car").item_ref).city
    return Task(
        id="cancel-whole-trip",
        difficulty="hard",
        kind="booking",
        domains=("bookings",),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Your trip to {city} is cancelled. Ask the assistant to cancel everything booked for it: the flight, "
            "the hotel and the rental car. " + _AGREE + "Ask for the total refunded."
        ),
        expected_actions=(
            _call("list_bookings", traveller=tid),
            *(_call("cancel_booking", booking_id=b.booking_id) for b in bookings),
            _call("list_bookings", traveller=tid),
        ),
        facts=(str(sum(b.price for b in bookings)),),
        rationale="All three bookings are refundable at this date; the refund is their total.",
    )


@_builder
def _drier_city(world: TravelWorld) -> Task:
    tid = "T1010"

    def plan(day: date) -> tuple[str, FlightOffer] | None:
        weekend = day + timedelta(days=1)
        chances = {city: world.get_weather(city, weekend).precipitation_chance for city in ("London", "Paris")}
        if abs(chances["London"] - chances["Paris"]) < 15:
            return None
        drier = min(chances, key=lambda city: chances[city])
        offers = _flights(world, "Toronto", drier, day, nonstop=True)
        return (drier, offers[0]) if offers else None

    day = _first(
        (d for d in _days(date(2026, 12, 17)) if d.weekday() == 4 and plan(d)), "Friday with a clearly drier city"
    )
    found = plan(day)
    assert found is not None
    city, offer = found
    saturday = day + timedelta(days=1)
    return Task(
        id="drier-city-weekend",
        difficulty="hard",
        kind="booking",
        domains=("weather", "flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want a weekend in Europe and cannot decide between London and Paris. Go wherever has the lower "
            f"chance of rain on Saturday {_iso(saturday)}. Book the cheapest nonstop economy flight from Toronto "
            f"to that city on Friday {_iso(day)}, paid with your card. " + _AGREE + "Ask which city was drier and why."
        ),
        expected_actions=(
            _call("get_weather", city="London", date=_iso(saturday)),
            _call("get_weather", city="Paris", date=_iso(saturday)),
            _call("search_flights", origin="Toronto", destination=city, date=_iso(day), max_stops=0),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
            ),
        ),
        facts=(city, offer.flight.flight_number),
        rationale="The destination depends on comparing two forecasts before searching flights.",
    )


@_builder
def _budget_trip(world: TravelWorld) -> Task:
    tid = "T1003"
    credit = world.get_traveller(tid).payment_methods[0].balance

    def plan(day: date) -> tuple[FlightOffer, HotelOffer] | None:
        flights = _flights(world, "Tokyo", "Seoul", day, nonstop=True)
        hotels = _hotels(world, "Seoul", day, day + timedelta(days=2))
        if not (flights and hotels) or flights[0].price + hotels[0].total > credit:
            return None
        return flights[0], hotels[0]

    day = _first((d for d in _days(date(2026, 12, 20)) if plan(d)), "TYO-SEL trip within credit")
    found = plan(day)
    assert found is not None
    flight, hotel = found
    back = day + timedelta(days=2)
    return Task(
        id="budget-trip-low-credit",
        difficulty="hard",
        kind="booking",
        domains=("flights", "hotels", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You want a cheap two-night trip to Seoul: the cheapest nonstop economy flight from Tokyo on "
            f"{_long(day)} and the cheapest hotel from {_iso(day)} to {_iso(back)}. Your card has little credit "
            "left, so everything must fit on it; ask whether it does. " + _AGREE + "Ask for the total cost of the trip."
        ),
        expected_actions=(
            _call("get_traveller", traveller=tid),
            _call("search_flights", origin="Tokyo", destination="Seoul", date=_iso(day), max_stops=0),
            _call("search_hotels", city="Seoul", check_in=_iso(day), check_out=_iso(back)),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=flight.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
            ),
            _call(
                "book_hotel",
                traveller_id=tid,
                hotel_id=hotel.hotel.hotel_id,
                check_in=_iso(day),
                check_out=_iso(back),
                payment_method=f"pm-{tid}-card",
            ),
            _call("list_bookings", traveller=tid),
        ),
        facts=(flight.flight.flight_number, hotel.hotel.name, str(flight.price + hotel.total)),
        rationale=f"Flight and hotel total {money(flight.price + hotel.total)}, within {money(credit)} of credit.",
    )


@_builder
def _three_seats(world: TravelWorld) -> Task:
    tid = "T1009"

    def plan(day: date, city: str) -> FlightOffer | None:
        everyone = _flights(world, "Seattle", city, day)
        enough = _flights(world, "Seattle", city, day, passengers=3)
        if not everyone or not enough or everyone[0].flight == enough[0].flight:
            return None
        return enough[0]

    cities = ("Los Angeles", "San Francisco", "Las Vegas", "Denver", "Chicago", "New York", "Vancouver", "Phoenix")
    day, city, offer = _first(
        (
            (day, city, offer)
            for day in _days(date(2026, 12, 10))
            for city in cities
            if (offer := plan(day, city)) is not None
        ),
        "Seattle route and day where the cheapest flight lacks 3 seats",
    )
    return Task(
        id="three-seats-together",
        difficulty="hard",
        kind="booking",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You are taking your two nieces to {city}: book 3 economy seats together on one flight from "
            f"Seattle on {_long(day)}, the cheapest flight that has 3 seats left, all under your traveller id and "
            "paid with your card. " + _AGREE + "Ask for the total price."
        ),
        expected_actions=(
            _call("search_flights", origin="Seattle", destination=city, date=_iso(day), passengers=3),
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="economy",
                payment_method=f"pm-{tid}-card",
                passengers=3,
            ),
        ),
        facts=(offer.flight.flight_number, str(offer.total)),
        rationale="The cheapest flight that day has fewer than 3 seats left.",
    )


@_builder
def _move_hotel_dates(world: TravelWorld) -> Task:
    tid = "T1011"
    booking_id = _booking_id(world, tid, lambda b: b.kind == "hotel", "T1011 hotel")
    old = world.get_booking(booking_id)
    hotel = world.get_hotel(old.item_ref)
    new_in, new_out = old.start_date + timedelta(days=2), old.end_date + timedelta(days=2)
    new_total = hotel.nightly_price * (new_out - new_in).days
    return Task(
        id="move-hotel-dates",
        difficulty="hard",
        kind="booking",
        domains=("bookings", "hotels"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Your stay at {hotel.name} in {hotel.city} moved two days later: you now need {_iso(new_in)} to "
            f"{_iso(new_out)}, same hotel, same card. Ask the assistant to move it. "
            + _AGREE
            + "Ask what the new stay costs and what was refunded."
        ),
        expected_actions=(
            _call("list_bookings", traveller=tid),
            _call(
                "book_hotel",
                traveller_id=tid,
                hotel_id=hotel.hotel_id,
                check_in=_iso(new_in),
                check_out=_iso(new_out),
                payment_method=f"pm-{tid}-card",
            ),
            _call("cancel_booking", booking_id=booking_id),
        ),
        facts=tuple(dict.fromkeys((hotel.name, str(new_total), str(old.price)))),
        rationale="There is no modify operation: a new booking plus a cancellation within the free period.",
    )


@_builder
def _book_then_cancel_car(world: TravelWorld) -> Task:
    tid = "T1005"
    pickup, dropoff = date(2026, 12, 23), date(2026, 12, 26)
    offer = _cars(world, "Rome", pickup, dropoff, car_class="compact")[0]
    return Task(
        id="book-then-cancel-car",
        difficulty="hard",
        kind="booking",
        domains=("cars", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"Rent the cheapest compact car in Rome from {_long(pickup)} to {_long(dropoff)}, paid with your card. "
            + _AGREE
            + "Right after it is booked, change your mind: a friend will drive you, so ask to cancel the "
            "car and confirm you got the full amount back."
        ),
        expected_actions=(
            _call(
                "search_cars", location="Rome", pickup_date=_iso(pickup), return_date=_iso(dropoff), car_class="compact"
            ),
            _call(
                "book_car",
                traveller_id=tid,
                car_id=offer.car.car_id,
                pickup_date=_iso(pickup),
                return_date=_iso(dropoff),
                payment_method=f"pm-{tid}-card",
            ),
            _call("cancel_booking", booking_id="$1"),
        ),
        facts=(str(offer.total),),
        rationale="Cars can be cancelled free of charge before pickup; the end state keeps the cancelled booking.",
    )


@_builder
def _refuse_unaffordable_business(world: TravelWorld) -> Task:
    tid = "T1003"
    card = world.get_traveller(tid).payment_methods[0]
    day = _first(
        (
            d
            for d in _days(date(2026, 12, 18))
            if (offers := _flights(world, "Tokyo", "Singapore", d, "business", nonstop=True))
            and offers[0].price > card.balance
        ),
        "TYO-SIN business above the credit",
    )
    offer = _flights(world, "Tokyo", "Singapore", day, "business", nonstop=True)[0]
    return Task(
        id="refuse-unaffordable-business",
        difficulty="hard",
        kind="refusal",
        domains=("flights", "bookings"),
        traveller_id=tid,
        user_instruction=(
            _you(world, tid)
            + f"You insist on the cheapest nonstop business class flight from Tokyo to Singapore on {_long(day)}, "
            "paid with your card. You refuse any other cabin, date or flight. If it cannot be booked, ask why and "
            "what it costs, then end the conversation."
        ),
        expected_actions=(
            _call("get_traveller", traveller=tid),
            _call(
                "search_flights", origin="Tokyo", destination="Singapore", date=_iso(day), cabin="business", max_stops=0
            ),
        ),
        forbidden_actions=(
            _call(
                "book_flight",
                traveller_id=tid,
                flight_number=offer.flight.flight_number,
                date=_iso(day),
                cabin="business",
                payment_method=card.payment_method_id,
            ),
        ),
        facts=(str(offer.price),),
        rationale=f"The fare ({money(offer.price)}) exceeds the card's {money(card.balance)} of credit.",
    )
