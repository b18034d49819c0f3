"""Agent-facing tools over a TravelWorld, grouped by specialist domain.

These are designed around what a model gets right rather than mirroring the
world's methods: cities or airport codes in any case, forgiving spellings of
cabins and payment methods, ranked results trimmed to a few lines with a count
of what was left out, and errors that say how to fix the call.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Literal, ParamSpec, TypeVar

from retinue.errors import ToolError
from retinue.tools import IdempotencyKey, Tool, tool

from . import render
from .catalog import CABINS
from .errors import InvalidRequestError, TravelError, UnknownPlaceError
from .places import City, describe_city, fold, resolve_airports, resolve_city
from .timeline import LAST_DAY, parse_day
from .world import CarOffer, FlightOffer, HotelOffer, TravelWorld

# Bookings and cancellations take the call's idempotency key (hidden from the model): a durable run resumed
# after a kill inside one, not knowing whether it took effect, makes it again with the same key, and the world
# returns what the first one did instead of booking twice. A script's host API calls them without one.
NO_KEY = IdempotencyKey("")

# Three results and the count of the rest: shown ten hotels, the 1.5B's hotels specialist spent its whole answer
# allowance copying them; filters and sort_by reach the others.
SHOWN_RESULTS = 3
MAX_FORECAST_DAYS = 14
DOMAINS = ("flights", "hotels", "cars", "weather", "bookings")

_CABIN_ALIASES = {
    "basic": "basic_economy",
    "basic_economy": "basic_economy",
    "economy": "economy",
    "coach": "economy",
    "main": "economy",
    "main_cabin": "economy",
    "standard": "economy",
    "premium": "premium_economy",
    "premium_economy": "premium_economy",
    "business": "business",
    "business_class": "business",
}
_CAR_CLASSES = ("economy", "compact", "midsize", "suv", "minivan", "convertible", "luxury")

P = ParamSpec("P")
R = TypeVar("R")


def _explained(function: Callable[P, R]) -> Callable[P, R]:
    """Turn the world's refusals into tool errors, whose message the model reads as the result."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except TravelError as error:
            raise ToolError(str(error)) from error

    return call


# What small models write into an optional filter they were told to leave out: Qwen2.5-Coder-1.5B searched
# hotels in the neighbourhood "unknown". Such a value means "not given", never a name to match.
_NOT_GIVEN = frozenset({"", "any", "all", "none", "null", "unknown", "n/a", "na", "not specified", "unspecified"})


def _given(text: str | None) -> str | None:
    """`text`, or None when it is empty or a placeholder for "no preference"."""
    if text is None or text.strip().casefold() in _NOT_GIVEN:
        return None
    return text


def normalise_cabin(text: str) -> str:
    key = fold(text).replace("-", " ").replace(" ", "_").removesuffix("_class")
    if key in _CABIN_ALIASES:
        return _CABIN_ALIASES[key]
    if key in ("first", "first_class"):
        raise InvalidRequestError("There is no first class on these airlines; business is the highest cabin.")
    raise InvalidRequestError(f"Unknown cabin {text!r}; choose one of: {', '.join(CABINS)}.")


def _clock(text: str | None, field: str) -> time | None:
    if text is None or not text.strip():
        return None
    match = re.fullmatch(r"(\d{1,2}):?(\d{2})", text.strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise InvalidRequestError(f"{field} must be a 24-hour local time like 09:30 or 17:00, not {text!r}.")
    return time(int(match.group(1)), int(match.group(2)))


def _more(total: int, shown: int, hint: str) -> str:
    if total <= shown:
        return ""
    return f"\n...and {total - shown} more matched. {hint}"


def _sort_flights(offers: list[FlightOffer], sort_by: str) -> list[FlightOffer]:
    keys: dict[str, Callable[[FlightOffer], tuple[object, ...]]] = {
        "price": lambda offer: (offer.price, offer.flight.duration_minutes),
        "duration": lambda offer: (offer.flight.duration_minutes, offer.price),
        "departure": lambda offer: (offer.flight.departure, offer.price),
        "arrival": lambda offer: (offer.flight.arrival, offer.price),
    }
    return sorted(offers, key=keys[sort_by])


def _nearby_flight_days(world: TravelWorld, origin: str, destination: str, day: date) -> str:
    days = world.flight_dates(origin, destination)
    if not days:
        return (
            f"No flights at all connect {describe_city(resolve_city(origin))} and "
            f"{describe_city(resolve_city(destination))} with at most one stop; try a nearby larger city."
        )
    nearest = sorted(days, key=lambda other: (abs((other - day).days), other))[:4]
    return f"Nearest days with flights on this route: {', '.join(d.isoformat() for d in sorted(nearest))}."


def _other_airports_hint(
    world: TravelWorld, origin: str, destination: str, day: date, cabin: str, passengers: int
) -> str:
    """When an airport code was given, say whether the rest of its city has flights that day."""
    origins, destinations = resolve_airports(origin), resolve_airports(destination)
    city_origins = resolve_city(origin).airport_codes
    city_destinations = resolve_city(destination).airport_codes
    if origins == city_origins and destinations == city_destinations:
        return ""
    wider = world.search_flights(resolve_city(origin).name, resolve_city(destination).name, day, cabin, passengers)
    wider = [
        offer for offer in wider if offer.flight.origin not in origins or offer.flight.destination not in destinations
    ]
    if not wider:
        return ""
    airports = sorted({f"{offer.flight.origin} -> {offer.flight.destination}" for offer in wider})
    return (
        f"\nOther airports of the same cities have {len(wider)} flight(s) that day ({', '.join(airports)}); "
        "search by city name to see them all."
    )


def flight_tools(world: TravelWorld) -> list[Tool]:
    @tool(effect="read")
    @_explained
    def search_flights(
        origin: str,
        destination: str,
        date: str,
        cabin: str = "economy",
        passengers: int = 1,
        max_price: int | None = None,
        max_stops: int = 1,
        depart_after: str | None = None,
        arrive_before: str | None = None,
        sort_by: Literal["price", "duration", "departure", "arrival"] = "price",
    ) -> str:
        """Find flights on one day between two cities or airports, best first.

        Shows the top 3 with how many more matched. Times are local to each airport.

        Args:
            origin: City name or IATA airport code (3 letters). A city name searches all its airports; use a code only
                when the user named that airport.
            destination: City name or 3-letter IATA airport code, as for origin.
            date: Departure date, YYYY-MM-DD.
            cabin: basic_economy (cheapest, non-refundable), economy, premium_economy or business.
            passengers: Number of seats needed.
            max_price: Highest price per passenger in USD. Leave out unless the user gave a budget; 0 means no limit.
            max_stops: 0 for nonstop only; 1 (the default) also allows one-stop flights. Leave out unless the user
                asked for nonstop.
            depart_after: Earliest local departure time, HH:MM. Leave out unless the user gave one.
            arrive_before: Latest local arrival time, HH:MM, on the departure date (later days are excluded). Leave out
                unless the user gave one.
            sort_by: price, duration, departure or arrival.
        """
        day = parse_day(date, "date")
        chosen_cabin = normalise_cabin(cabin)
        earliest = _clock(_given(depart_after), "depart_after")
        latest = _clock(_given(arrive_before), "arrive_before")
        price_cap = max_price if max_price is not None and max_price > 0 else None
        stops_cap = max(0, max_stops)

        def excluded_by(offer: FlightOffer) -> list[str]:
            reasons = []
            if price_cap is not None and offer.price > price_cap:
                reasons.append(f"max_price {price_cap}")
            if offer.flight.stops > stops_cap:
                reasons.append(f"max_stops {stops_cap}")
            if earliest is not None and offer.flight.depart_time < earliest:
                reasons.append(f"depart_after {earliest:%H:%M}")
            if latest is not None and (offer.flight.arrive_date != day or offer.flight.arrive_time > latest):
                reasons.append(f"arrive_before {latest:%H:%M}")
            return reasons

        everything = world.search_flights(origin, destination, day, chosen_cabin, passengers)
        offers = [offer for offer in everything if not excluded_by(offer)]
        route = f"{'/'.join(resolve_airports(origin))} -> {'/'.join(resolve_airports(destination))}"
        party = f"{passengers} passenger{'s' if passengers > 1 else ''}"
        if not offers:
            if everything:
                nearest = sorted(everything, key=lambda offer: (len(excluded_by(offer)), offer.price))[:3]
                lines = [
                    f"No flight {route} on {render.day_label(day)} matches those filters, but {len(everything)} "
                    f"flight(s) fly that day in {render.cabin_label(chosen_cabin)} for {party}. Nearest ones:"
                ]
                lines.extend(
                    f"- {render.flight_offer_line(offer)} (excluded by {', '.join(excluded_by(offer))})"
                    for offer in nearest
                )
                lines.append("Tell the user, or search again with the excluding filter relaxed.")
                return "\n".join(lines) + _other_airports_hint(
                    world, origin, destination, day, chosen_cabin, passengers
                )
            return (
                f"No bookable {render.cabin_label(chosen_cabin)} flight {route} on {render.day_label(day)} "
                f"for {party}. {_nearby_flight_days(world, origin, destination, day)}"
                + _other_airports_hint(world, origin, destination, day, chosen_cabin, passengers)
            )
        ranked = _sort_flights(offers, sort_by)
        order = {"price": "cheapest", "duration": "shortest", "departure": "earliest", "arrival": "earliest arrival"}
        lines = [
            f"{len(offers)} flight(s) {route} on {render.day_label(day)}, {render.cabin_label(chosen_cabin)}, "
            f"{party}, {order[sort_by]} first:"
        ]
        lines.extend(f"- {render.flight_offer_line(offer)}" for offer in ranked[:SHOWN_RESULTS])
        more = _more(len(ranked), SHOWN_RESULTS, "Narrow with max_price, max_stops=0, depart_after or arrive_before.")
        return "\n".join(lines) + more

    @tool(effect="read")
    @_explained
    def flight_details(flight_number: str, date: str) -> str:
        """Every cabin, seats left and fare rules of one flight on one day, beyond what search_flights shows.

        Call it only when the user asks about other cabins, refunds, changes or baggage: search_flights already
        shows times, stops, the cabin asked for and its price.

        Args:
            flight_number: A flight number exactly as shown by search_flights.
            date: Departure date, YYYY-MM-DD.
        """
        flight = world.get_flight(_flight_number(world, flight_number), parse_day(date, "date"))
        seats = {cabin: world.seats_left(flight, cabin) for cabin in flight.fares}
        return render.flight_details(flight, seats)

    return [search_flights, flight_details]


def _sort_hotels(offers: list[HotelOffer], sort_by: str) -> list[HotelOffer]:
    if sort_by == "rating":
        return sorted(offers, key=lambda offer: (-offer.hotel.rating, offer.total))
    if sort_by == "stars":
        return sorted(offers, key=lambda offer: (-offer.hotel.stars, -offer.hotel.rating, offer.total))
    return offers


def hotel_tools(world: TravelWorld) -> list[Tool]:
    @tool(effect="read")
    @_explained
    def search_hotels(
        city: str,
        check_in: str,
        check_out: str,
        rooms: int = 1,
        max_price_per_night: int | None = None,
        min_stars: int | None = None,
        neighbourhood: str | None = None,
        amenities: list[str] | None = None,
        sort_by: Literal["price", "rating", "stars"] = "price",
    ) -> str:
        """Find hotels in a city with rooms free for the whole stay, best first.

        Shows the top 3 with how many more matched, each with its id, neighbourhood, price, check-in time,
        amenities and cancellation policy.

        Args:
            city: City name or IATA airport code (3 letters).
            check_in: First night, YYYY-MM-DD.
            check_out: Departure day, YYYY-MM-DD (the last night is the day before).
            rooms: Number of rooms needed.
            max_price_per_night: Highest nightly price per room in USD; leave out or 0 for no limit.
            min_stars: Lowest star rating, 2 to 5; leave out or 0 for any.
            neighbourhood: Part of a neighbourhood name the user asked for; an unknown one lists the city's
                neighbourhoods.
            amenities: Required amenities, any of: wifi, breakfast, gym, pool, spa,
                restaurant, parking, pet_friendly, airport_shuttle.
            sort_by: price (total for the stay), rating or stars.
        """
        place = resolve_city(city)
        neighbourhood = _given(neighbourhood)
        if neighbourhood:
            neighbourhood = _neighbourhood(place, neighbourhood)
        price_cap = max_price_per_night if max_price_per_night is not None and max_price_per_night > 0 else None
        stars = min_stars if min_stars is not None and min_stars > 0 else None
        offers = world.search_hotels(city, check_in, check_out, rooms, price_cap, stars, neighbourhood or None)
        wanted = [_amenity(name) for name in amenities or []]
        offers = [offer for offer in offers if all(name in offer.hotel.amenities for name in wanted)]
        if not offers:
            return (
                f"No hotel in {place.name} has {rooms} room(s) free for every night from {check_in} to {check_out} "
                "with those filters. Relax max_price_per_night, min_stars, neighbourhood or amenities, or change dates."
            )
        ranked = _sort_hotels(offers, sort_by)
        first = ranked[0]
        lines = [
            f"{len(offers)} hotel(s) in {place.name}, {first.check_in.isoformat()} to {first.check_out.isoformat()} "
            f"({first.nights} night(s)), {rooms} room(s), sorted by {sort_by}:"
        ]
        lines.extend(f"- {render.hotel_offer_line(offer)}" for offer in ranked[:SHOWN_RESULTS])
        more = _more(
            len(ranked), SHOWN_RESULTS, "Narrow with max_price_per_night, min_stars, neighbourhood or amenities."
        )
        return "\n".join(lines) + more

    return [search_hotels]


_AMENITIES = ("wifi", "breakfast", "gym", "pool", "spa", "restaurant", "parking", "pet_friendly", "airport_shuttle")


def _amenity(text: str) -> str:
    key = fold(text).replace(" ", "_").replace("-", "_")
    aliases = {
        "pets": "pet_friendly",
        "shuttle": "airport_shuttle",
        "fitness": "gym",
        "swimming_pool": "pool",
        "internet": "wifi",
        "wi_fi": "wifi",
        "free_breakfast": "breakfast",
    }
    key = aliases.get(key, key)
    if key not in _AMENITIES:
        raise InvalidRequestError(f"Unknown amenity {text!r}; known amenities: {', '.join(_AMENITIES)}.")
    return key


def _neighbourhood(city: City, text: str) -> str | None:
    """The neighbourhood filter `text` asks for: part of a neighbourhood's name, or None for the city itself.

    The 1.5B's hotels specialist filled neighbourhood="San Francisco" for a stay in San Francisco, and repeated
    the search after each refusal.
    """
    wanted = fold(text)
    if any(wanted in fold(name) for name in city.neighbourhoods):
        return text
    if _names_city(city, text):
        return None
    close = difflib.get_close_matches(wanted, [fold(name) for name in city.neighbourhoods], n=2, cutoff=0.5)
    suggestion = ""
    if close:
        names = [name for name in city.neighbourhoods if fold(name) in close]
        suggestion = f" Did you mean {' or '.join(names)}?"
    raise InvalidRequestError(
        f"No neighbourhood of {city.name} matches {text!r}.{suggestion} Neighbourhoods: "
        f"{', '.join(city.neighbourhoods)}."
    )


def _names_city(city: City, text: str) -> bool:
    try:
        return resolve_city(text) == city
    except UnknownPlaceError:
        return False


def car_tools(world: TravelWorld) -> list[Tool]:
    @tool(effect="read")
    @_explained
    def search_cars(
        location: str,
        pickup_date: str,
        return_date: str,
        car_class: str | None = None,
        min_seats: int | None = None,
        max_price_per_day: int | None = None,
    ) -> str:
        """Find rental cars to pick up at a city's main airport, free for the whole rental, cheapest first.

        Shows the top 3 with how many more matched. A same-day return is charged as one day.

        Args:
            location: City name or IATA airport code (3 letters).
            pickup_date: YYYY-MM-DD.
            return_date: YYYY-MM-DD.
            car_class: economy, compact, midsize, suv, minivan, convertible or luxury.
            min_seats: Fewest seats needed (minivans seat 7); leave out or 0 for any.
            max_price_per_day: Highest daily price in USD; leave out or 0 for no limit.
        """
        chosen_class = None
        car_class = _given(car_class)
        if car_class:
            chosen_class = fold(car_class).replace(" ", "")
            if chosen_class not in _CAR_CLASSES:
                raise InvalidRequestError(f"Unknown car_class {car_class!r}; choose one of: {', '.join(_CAR_CLASSES)}.")
        place = resolve_city(location)
        offers: list[CarOffer] = world.search_cars(
            location,
            pickup_date,
            return_date,
            chosen_class,
            min_seats if min_seats is not None and min_seats > 0 else None,
            max_price_per_day if max_price_per_day is not None and max_price_per_day > 0 else None,
        )
        if not offers:
            return (
                f"No car at {place.primary_airport.code} ({place.name}) is free from {pickup_date} to {return_date} "
                "with those filters. Relax car_class, min_seats or max_price_per_day."
            )
        first = offers[0]
        lines = [
            f"{len(offers)} car(s) at {place.primary_airport.code} ({place.name}), {first.pickup_date.isoformat()} "
            f"to {first.return_date.isoformat()} ({first.days} day(s)), cheapest first:"
        ]
        lines.extend(f"- {render.car_offer_line(offer)}" for offer in offers[:SHOWN_RESULTS])
        more = _more(len(offers), SHOWN_RESULTS, "Narrow with car_class, min_seats or max_price_per_day.")
        return "\n".join(lines) + more

    return [search_cars]


def weather_tools(world: TravelWorld) -> list[Tool]:
    @tool(effect="read")
    @_explained
    def get_weather(city: str, date: str, end_date: str | None = None) -> str:
        """Weather forecast for a city on a day, or for each day of a range of up to 14 days.

        Args:
            city: City name or IATA airport code (3 letters).
            date: YYYY-MM-DD, within the next 60 days.
            end_date: Optional last day of a range, YYYY-MM-DD.
        """
        first = parse_day(date, "date")
        last = parse_day(end_date, "end_date") if end_date else first
        if last < first:
            raise InvalidRequestError(f"end_date ({last.isoformat()}) is before date ({first.isoformat()}).")
        if (last - first).days >= MAX_FORECAST_DAYS:
            raise InvalidRequestError(f"Ask for at most {MAX_FORECAST_DAYS} days at once.")
        if last > LAST_DAY:
            raise InvalidRequestError(f"Forecasts reach only {LAST_DAY.isoformat()}; shorten the range.")
        days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
        return "\n".join(render.weather_line(world.get_weather(city, day)) for day in days)

    return [get_weather]


# Ids as search results and booking lists show them. A model often passes a whole result line where the id
# alone belongs (`car_id="C-DEN-14 Budgetwise economy (Toyota Yaris or similar)"`, seen from the 1.5B) and
# then repeats the refused call; the id inside the line is what it means.
_FLIGHT_NUMBER = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2} ?\d{1,4}(?![0-9])")
_HOTEL_ID = re.compile(r"(?<![A-Za-z0-9-])H-[A-Za-z]{3}-\d{2}(?![0-9])")
_CAR_ID = re.compile(r"(?<![A-Za-z0-9-])C-[A-Za-z]{3}-\d{2}(?![0-9])")
_BOOKING_ID = re.compile(r"(?<![A-Za-z0-9])BK ?\d+(?![0-9])", re.IGNORECASE)


def _id_named(text: str, shape: re.Pattern[str], known: Callable[[str], bool], what: str) -> str:
    """The one known id of this shape that `text` names, or `text` itself.

    An argument that is an id already is left as it is, and so is one naming no known id: the world's lookup
    then says what is wrong. One naming several ids is refused, since guessing among them could book the wrong
    thing.
    """
    if known(_id_form(text)):
        return text
    named = list(dict.fromkeys(_id_form(match) for match in shape.findall(text)))
    named = [candidate for candidate in named if known(candidate)]
    if len(named) > 1:
        raise InvalidRequestError(f"That names {len(named)} {what}s ({', '.join(named)}); give one {what}.")
    return named[0] if named else text


def _id_form(text: str) -> str:
    return text.replace(" ", "").upper()


def _flight_number(world: TravelWorld, text: str) -> str:
    return _id_named(text, _FLIGHT_NUMBER, world.catalog.flight_numbers.__contains__, "flight number")


def _hotel_id(world: TravelWorld, text: str) -> str:
    return _id_named(text, _HOTEL_ID, world.catalog.hotels.__contains__, "hotel id")


def _car_id(world: TravelWorld, text: str) -> str:
    return _id_named(text, _CAR_ID, world.catalog.cars.__contains__, "car id")


def _booking_id(text: str) -> str:
    # Booking ids come and go with the world's state: any id of the right shape counts, and the lookup checks it.
    return _id_named(text, _BOOKING_ID, lambda candidate: _BOOKING_ID.fullmatch(candidate) is not None, "booking id")


def _payment_method_id(world: TravelWorld, traveller_id: str, booked_by: str | None, text: str) -> str:
    """Accept a payment method id, or a kind ("card", "voucher", "points").

    A kind means the booker's own method of that kind, or else the traveller's
    (a delegate paying with the traveller's points, say).
    """
    kind = fold(text).removeprefix("my ").strip()
    kind = {"credit card": "card", "credit_card": "card", "miles": "points", "rewards": "points"}.get(kind, kind)
    if kind not in ("card", "voucher", "points"):
        return text
    owners = [world.get_traveller(booked_by or traveller_id)]
    if booked_by:
        owners.append(world.get_traveller(traveller_id))
    for owner in owners:
        for method in owner.payment_methods:
            if method.kind == kind:
                return method.payment_method_id
    methods = ", ".join(method.payment_method_id for owner in owners for method in owner.payment_methods)
    raise InvalidRequestError(f"No {kind} is on file for this booking; usable payment methods: {methods}.")


def booking_tools(world: TravelWorld) -> list[Tool]:
    @tool(effect="read")
    @_explained
    def get_traveller(traveller: str) -> str:
        """A traveller's profile: name, home airport, loyalty, payment methods with balances, and who may book for whom.

        Args:
            traveller: The user's traveller id or the email address on their profile, as the user gave it.
        """
        return render.traveller_text(world.get_traveller(traveller))

    @tool(effect="read")
    @_explained
    def list_bookings(traveller: str, include_cancelled: bool = True) -> str:
        """A traveller's bookings with their ids, dates, prices and status.

        Args:
            traveller: The user's traveller id or the email address on their profile, as the user gave it.
            include_cancelled: Also list cancelled bookings.
        """
        profile = world.get_traveller(traveller)
        return render.bookings_text(world, profile, world.list_bookings(profile.traveller_id, include_cancelled))

    @tool(requires_approval=True, effect="write", idempotent=True)
    @_explained
    def book_flight(
        traveller_id: str,
        flight_number: str,
        date: str,
        cabin: str,
        payment_method: str,
        passengers: int = 1,
        booked_by: str | None = None,
        key: IdempotencyKey = NO_KEY,
    ) -> str:
        """Book a flight for a traveller and charge it. Confirm flight, cabin, price and payment with the user first.

        Args:
            traveller_id: The passenger's traveller id, as shown by get_traveller.
            flight_number: A flight number exactly as shown by search_flights.
            date: Departure date, YYYY-MM-DD.
            cabin: basic_economy (non-refundable), economy, premium_economy or business.
            payment_method: A payment method id as shown by get_traveller, or the kind "card", "voucher" or "points".
            passengers: Seats to book.
            booked_by: Traveller id of the person making the booking when it is not the passenger; they must be an
                authorised delegate of the passenger.
        """
        booking = world.book_flight(
            traveller_id,
            _flight_number(world, flight_number),
            parse_day(date, "date"),
            normalise_cabin(cabin),
            _payment_method_id(world, traveller_id, booked_by, payment_method),
            passengers,
            booked_by,
            key=key,
        )
        return render.confirmation_text(world, booking)

    @tool(requires_approval=True, effect="write", idempotent=True)
    @_explained
    def book_hotel(
        traveller_id: str,
        hotel_id: str,
        check_in: str,
        check_out: str,
        payment_method: str,
        rooms: int = 1,
        booked_by: str | None = None,
        key: IdempotencyKey = NO_KEY,
    ) -> str:
        """Book hotel rooms for a traveller and charge them. Confirm hotel, dates, price and payment first.

        Args:
            traveller_id: The guest's traveller id, as shown by get_traveller.
            hotel_id: A hotel id exactly as shown by search_hotels.
            check_in: First night, YYYY-MM-DD.
            check_out: Departure day, YYYY-MM-DD.
            payment_method: A payment method id as shown by get_traveller, or the kind "card", "voucher" or "points".
            rooms: Rooms to book.
            booked_by: Traveller id of the person making the booking when it is not the guest; they must be an
                authorised delegate of the guest.
        """
        booking = world.book_hotel(
            traveller_id,
            _hotel_id(world, hotel_id),
            check_in,
            check_out,
            _payment_method_id(world, traveller_id, booked_by, payment_method),
            rooms,
            booked_by,
            key=key,
        )
        return render.confirmation_text(world, booking)

    @tool(requires_approval=True, effect="write", idempotent=True)
    @_explained
    def book_car(
        traveller_id: str,
        car_id: str,
        pickup_date: str,
        return_date: str,
        payment_method: str,
        booked_by: str | None = None,
        key: IdempotencyKey = NO_KEY,
    ) -> str:
        """Rent a car for a traveller and charge it. Confirm car, dates, price and payment with the user first.

        Args:
            traveller_id: The driver's traveller id, as shown by get_traveller.
            car_id: A car id exactly as shown by search_cars.
            pickup_date: YYYY-MM-DD.
            return_date: YYYY-MM-DD.
            payment_method: A payment method id as shown by get_traveller, or the kind "card", "voucher" or "points".
            booked_by: Traveller id of the person making the booking when it is not the driver; they must be an
                authorised delegate of the driver.
        """
        booking = world.book_car(
            traveller_id,
            _car_id(world, car_id),
            pickup_date,
            return_date,
            _payment_method_id(world, traveller_id, booked_by, payment_method),
            booked_by,
            key=key,
        )
        return render.confirmation_text(world, booking)

    @tool(requires_approval=True, effect="write", idempotent=True)
    @_explained
    def cancel_booking(booking_id: str, requested_by: str | None = None, key: IdempotencyKey = NO_KEY) -> str:
        """Cancel a booking and refund its payment method, if its fare rules allow. Confirm with the user first.

        Args:
            booking_id: A booking id exactly as shown by list_bookings.
            requested_by: Traveller id of the person asking, when it is not the booking's traveller.
        """
        return render.cancellation_text(world, world.cancel_booking(_booking_id(booking_id), requested_by, key=key))

    return [get_traveller, list_bookings, book_flight, book_hotel, book_car, cancel_booking]


def make_tools(world: TravelWorld) -> dict[str, list[Tool]]:
    """The travel tools bound to one world, grouped by specialist domain (see `DOMAINS`)."""
    return {
        "flights": flight_tools(world),
        "hotels": hotel_tools(world),
        "cars": car_tools(world),
        "weather": weather_tools(world),
        "bookings": booking_tools(world),
    }


def all_tools(world: TravelWorld) -> list[Tool]:
    """Every travel tool bound to one world, for a single agent (or a master and its clones)."""
    return [item for group in make_tools(world).values() for item in group]


__all__ = ["DOMAINS", "all_tools", "make_tools", "normalise_cabin"]
