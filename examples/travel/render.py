"""Compact text renderings of travel-world objects, as a model (or a person) reads them.

One line per item, most useful fields first, ids the model must quote back
up front. Tools return these strings instead of JSON: they cost a fraction of
the tokens and models quote from them accurately.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from .airlines import AIRLINES_BY_CODE
from .catalog import HOTEL_FREE_CANCELLATION_DAYS, Flight, Hotel
from .weather import Weather
from .world import Booking, CarOffer, FlightOffer, HotelOffer, Traveller, TravelWorld


def money(amount: int) -> str:
    return f"${amount:,}"


def duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m"


def day_label(day: date) -> str:
    return f"{day:%a} {day.isoformat()}"


def cabin_label(cabin: str) -> str:
    return cabin.replace("_", " ")


def _arrival(flight: Flight) -> str:
    days_later = (flight.arrive_date - flight.date).days
    suffix = f" (+{days_later} day)" if days_later == 1 else (f" (+{days_later} days)" if days_later else "")
    return f"{flight.arrive_time:%H:%M}{suffix}"


def _routing(flight: Flight) -> str:
    return "nonstop" if flight.stop is None else f"1 stop ({flight.stop})"


def flight_offer_line(offer: FlightOffer) -> str:
    flight = offer.flight
    airline = AIRLINES_BY_CODE[flight.airline].name
    price = f"{money(offer.price)}" + (f" each, {money(offer.total)} total" if offer.passengers > 1 else "")
    return (
        f"{flight.flight_number} {airline}: {flight.origin} {flight.depart_time:%H:%M} -> {flight.destination} "
        f"{_arrival(flight)}, {_routing(flight)}, {duration(flight.duration_minutes)}, {price} "
        f"[{offer.seats_left} seats left]"
    )


def flight_details(flight: Flight, seats_left: dict[str, int]) -> str:
    airline = AIRLINES_BY_CODE[flight.airline].name
    lines = [
        f"{flight.flight_number} ({airline}) on {day_label(flight.date)}: "
        f"{flight.origin} {flight.depart_time:%H:%M} -> {flight.destination} "
        f"{flight.arrive_date.isoformat()} {flight.arrive_time:%H:%M} (local times), "
        f"{_routing(flight)}, {duration(flight.duration_minutes)}, {flight.distance_km:,} km.",
        "Fares per passenger:",
    ]
    for cabin, price in flight.fares.items():
        lines.append(f"- {cabin}: {money(price)} [{max(seats_left[cabin], 0)} seats left]")
    lines.append(FARE_RULES)
    return "\n".join(lines)


FARE_RULES = (
    "Fare rules: basic_economy is non-refundable; other cabins can be cancelled for a full refund until 24 hours "
    "before departure."
)


def _cancellation(hotel: Hotel) -> str:
    if hotel.cancellation_policy == "non_refundable":
        return "non-refundable"
    days = HOTEL_FREE_CANCELLATION_DAYS[hotel.cancellation_policy]
    return f"free cancellation until {days} day{'s' if days > 1 else ''} before check-in"


def hotel_offer_line(offer: HotelOffer) -> str:
    hotel = offer.hotel
    rooms = f", {offer.rooms} rooms" if offer.rooms > 1 else ""
    area = "" if hotel.neighbourhood in hotel.name else f" ({hotel.neighbourhood})"
    return (
        f"{hotel.hotel_id} {hotel.name}{area}, {hotel.stars}-star, rated {hotel.rating}/10: "
        f"{money(hotel.nightly_price)}/night, {money(offer.total)} for {offer.nights} night(s){rooms}; "
        f"check-in {hotel.check_in_time:%H:%M}; {', '.join(hotel.amenities)}; {_cancellation(hotel)} "
        f"[{offer.rooms_left} rooms left]"
    )


def car_offer_line(offer: CarOffer) -> str:
    car = offer.car
    return (
        f"{car.car_id} {car.company} {car.car_class} ({car.model}), {car.seats} seats, {car.transmission}, "
        f"{car.mileage} mileage: {money(car.daily_price)}/day, {money(offer.total)} for {offer.days} day(s) "
        f"[{offer.units_left} left]"
    )


def weather_line(weather: Weather) -> str:
    return (
        f"{weather.city} {day_label(weather.date)}: {weather.condition}, high {weather.high_c}°C / low "
        f"{weather.low_c}°C, {weather.precipitation_chance}% chance of precipitation"
    )


def traveller_text(traveller: Traveller) -> str:
    lines = [
        f"{traveller.name} ({traveller.traveller_id}), {traveller.email}, home airport {traveller.home_airport}, "
        f"loyalty tier {traveller.loyalty_tier}.",
    ]
    if traveller.loyalty_programs:
        programs = ", ".join(
            f"{AIRLINES_BY_CODE[airline].name} {number}" for airline, number in traveller.loyalty_programs.items()
        )
        lines.append(f"Loyalty programs: {programs}.")
    lines.append("Payment methods:")
    for method in traveller.payment_methods:
        if method.kind == "points":
            balance = f"{method.balance:,} points (100 points = $1)"
        elif method.kind == "card":
            balance = f"{money(method.balance)} credit available"
        else:
            balance = f"{money(method.balance)} remaining"
        lines.append(f"- {method.payment_method_id}: {method.label}, {balance}")
    if traveller.delegates:
        lines.append(f"May be booked for by: {', '.join(traveller.delegates)}.")
    if traveller.books_for:
        lines.append(f"Authorised to book for: {', '.join(traveller.books_for)}.")
    return "\n".join(lines)


def booking_line(world: TravelWorld, booking: Booking) -> str:
    booker = f", booked by {booking.booked_by}" if booking.booked_by != booking.traveller_id else ""
    refund = f", refunded {money(booking.refund)}" if booking.status == "cancelled" else ""
    return (
        f"{booking.booking_id} [{booking.status}] {world.describe_item(booking)}: {money(booking.price)} paid with "
        f"{booking.payment_method_id}{booker}{refund}"
    )


def bookings_text(world: TravelWorld, traveller: Traveller, bookings: Sequence[Booking]) -> str:
    if not bookings:
        return f"{traveller.name} ({traveller.traveller_id}) has no bookings."
    lines = [f"{len(bookings)} booking(s) for {traveller.name} ({traveller.traveller_id}):"]
    lines.extend(f"- {booking_line(world, booking)}" for booking in bookings)
    confirmed = sum(booking.price for booking in bookings if booking.status == "confirmed")
    refunded = sum(booking.refund for booking in bookings if booking.status == "cancelled")
    lines.append(f"Confirmed total: {money(confirmed)}. Refunded on cancelled bookings: {money(refunded)}.")
    return "\n".join(lines)


def confirmation_text(world: TravelWorld, booking: Booking) -> str:
    method = world.get_payment_method(booking.payment_method_id)
    unit = "points" if method.kind == "points" else "USD"
    points = f" ({booking.charged:,} points)" if method.kind == "points" else ""
    return (
        f"Booked {booking.booking_id}: {world.describe_item(booking)} for {booking.traveller_id}, "
        f"{money(booking.price)}{points} charged to {method.label} ({method.payment_method_id}; "
        f"{method.balance:,} {unit} left)."
    )


def cancellation_text(world: TravelWorld, booking: Booking) -> str:
    method = world.get_payment_method(booking.payment_method_id)
    points = f" ({booking.charged:,} points)" if method.kind == "points" else ""
    return (
        f"Cancelled {booking.booking_id}: {world.describe_item(booking)}. Refunded {money(booking.refund)}{points} "
        f"to {method.label} ({method.payment_method_id})."
    )
