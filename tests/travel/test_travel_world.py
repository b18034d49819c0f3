"""TravelWorld: searches, business rules of booking and cancelling, and snapshots."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from retinue_travel.catalog import Flight
from retinue_travel.errors import (
    BookingWindowError,
    CancellationRefusedError,
    InsufficientFundsError,
    InvalidRequestError,
    NotAuthorisedError,
    NotFoundError,
    PaymentError,
    SoldOutError,
    UnknownPlaceError,
)
from retinue_travel.world import TravelWorld

# Roster positions with known shapes (see roster.PERSONAS and DELEGATIONS).
EXECUTIVE, LOW_CREDIT, BASIC_FARE_HOLDER, ASSISTANT, PARTNER_A, PARTNER_B, POINTS_RICH = (
    "T1001",
    "T1003",
    "T1004",
    "T1006",
    "T1007",
    "T1008",
    "T1009",
)
DAY = date(2026, 12, 16)


@pytest.fixture
def world() -> TravelWorld:
    return TravelWorld(seed=0)


def balance(world: TravelWorld, payment_method_id: str) -> int:
    return world.get_payment_method(payment_method_id).balance


def a_flight(world: TravelWorld, cabin: str = "economy", *, min_seats: int = 3, max_price: int = 1500) -> Flight:
    """A flight on DAY selling `cabin` with between `min_seats` and 9 (the most one booking takes) seats left."""
    return next(
        flight
        for flight in world.catalog.flights
        if flight.date == DAY
        and flight.fares.get(cabin, max_price + 1) <= max_price
        and min_seats <= world.seats_left(flight, cabin) <= 9
    )


def test_worlds_from_the_same_seed_are_identical_and_seeds_differ() -> None:
    first, second, other = TravelWorld(seed=0), TravelWorld(seed=0), TravelWorld(seed=1)
    assert first.snapshot() == second.snapshot()
    assert first.get_traveller("T1001").name == second.get_traveller("T1001").name
    assert [first.get_traveller(t).name for t in first.traveller_ids()] != [
        other.get_traveller(t).name for t in other.traveller_ids()
    ]
    assert len(first.traveller_ids()) == 12
    assert first.snapshot()["bookings"], "the roster starts with existing trips"


def test_search_flights_accepts_cities_and_codes_and_ranks_by_price(world: TravelWorld) -> None:
    by_city = world.search_flights("new york", "london", DAY)
    by_codes = world.search_flights("JFK", "LHR", DAY)
    assert {offer.flight.origin for offer in by_city} > {"JFK"}
    assert set(by_codes) <= set(by_city)
    prices = [offer.price for offer in by_city]
    assert prices == sorted(prices)
    assert all(offer.flight.stops == 0 for offer in world.search_flights("New York", "London", DAY, max_stops=0))
    assert all(offer.price <= 500 for offer in world.search_flights("New York", "London", DAY, max_price=500))


def test_search_rejects_unknown_places_and_same_city(world: TravelWorld) -> None:
    with pytest.raises(UnknownPlaceError, match="Did you mean New York"):
        world.search_flights("SFO", "Nwe York", DAY)
    with pytest.raises(InvalidRequestError, match="same city"):
        world.search_flights("JFK", "LGA", DAY)


def test_booking_a_flight_takes_seats_and_money(world: TravelWorld) -> None:
    flight = a_flight(world)
    seats_before = world.seats_left(flight, "economy")
    card = f"pm-{POINTS_RICH}-card"
    credit_before = balance(world, card)
    booking = world.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", card, passengers=2)
    assert booking.status == "confirmed" and booking.price == 2 * flight.fares["economy"]
    assert world.seats_left(flight, "economy") == seats_before - 2
    # Basic economy sells from the same cabin.
    assert world.seats_left(flight, "basic_economy") == seats_before - 2
    assert balance(world, card) == credit_before - booking.price
    assert booking in world.list_bookings(POINTS_RICH)


def test_points_pay_at_one_hundred_per_dollar(world: TravelWorld) -> None:
    flight = a_flight(world)
    points = f"pm-{POINTS_RICH}-points"
    before = balance(world, points)
    world.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", points)
    assert balance(world, points) == before - 100 * flight.fares["economy"]


def test_cannot_oversell_seats(world: TravelWorld) -> None:
    flight = a_flight(world, "business", min_seats=1, max_price=600)
    seats = world.seats_left(flight, "business")
    with pytest.raises(SoldOutError, match="left"):
        world.book_flight(POINTS_RICH, flight.flight_number, DAY, "business", f"pm-{POINTS_RICH}-card", seats + 1)


def test_concurrent_bookings_never_oversell(world: TravelWorld) -> None:
    flight = a_flight(world, "business", min_seats=2, max_price=600)
    seats = world.seats_left(flight, "business")
    outcomes: list[str] = []

    def book() -> None:
        try:
            world.book_flight(POINTS_RICH, flight.flight_number, DAY, "business", f"pm-{POINTS_RICH}-card")
            outcomes.append("booked")
        except SoldOutError:
            outcomes.append("sold out")

    threads = [threading.Thread(target=book) for _ in range(seats + 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("booked") == seats
    assert world.seats_left(flight, "business") == 0


def test_insufficient_funds_leave_the_world_unchanged(world: TravelWorld) -> None:
    before = world.snapshot()
    flight = next(offer.flight for offer in world.search_flights("JFK", "LHR", DAY, "business") if offer.price > 900)
    with pytest.raises(InsufficientFundsError, match="Use another payment method"):
        world.book_flight(LOW_CREDIT, flight.flight_number, DAY, "business", f"pm-{LOW_CREDIT}-card")
    assert world.snapshot() == before


def test_dates_must_be_in_the_booking_window(world: TravelWorld) -> None:
    with pytest.raises(BookingWindowError, match="in the past"):
        world.search_hotels("Paris", "2026-11-28", "2026-11-30")
    with pytest.raises(BookingWindowError, match="60-day"):
        world.search_flights("JFK", "LHR", "2027-02-02")
    with pytest.raises(InvalidRequestError, match="YYYY-MM-DD"):
        world.search_flights("JFK", "LHR", "16/12/2026")
    with pytest.raises(InvalidRequestError, match="after check_in"):
        world.search_hotels("Paris", DAY, DAY)
    late_world = TravelWorld(now=datetime(2026, 12, 16, 23, 0))
    flight = a_flight(world)
    with pytest.raises(BookingWindowError, match="departed"):
        late_world.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", f"pm-{POINTS_RICH}-card")


def test_payment_must_belong_to_the_traveller_or_booker(world: TravelWorld) -> None:
    flight = a_flight(world)
    with pytest.raises(PaymentError, match="belongs to T1003"):
        world.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", f"pm-{LOW_CREDIT}-card")
    with pytest.raises(NotFoundError, match="payment method"):
        world.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", "pm-nope")


def test_only_delegates_may_book_for_someone_else(world: TravelWorld) -> None:
    flight = a_flight(world)
    with pytest.raises(NotAuthorisedError, match="not authorised"):
        world.book_flight(
            EXECUTIVE, flight.flight_number, DAY, "economy", f"pm-{LOW_CREDIT}-card", booked_by=LOW_CREDIT
        )
    # The assistant may book for the executive, paying with either one's methods.
    booking = world.book_flight(
        EXECUTIVE, flight.flight_number, DAY, "economy", f"pm-{EXECUTIVE}-points", booked_by=ASSISTANT
    )
    assert (booking.traveller_id, booking.booked_by) == (EXECUTIVE, ASSISTANT)
    # Delegation is one-way: the executive is not the assistant's delegate.
    with pytest.raises(NotAuthorisedError):
        world.book_flight(ASSISTANT, flight.flight_number, DAY, "economy", f"pm-{EXECUTIVE}-card", booked_by=EXECUTIVE)


def test_hotel_rooms_are_counted_per_night(world: TravelWorld) -> None:
    check_in, check_out = DAY, DAY + timedelta(days=3)
    hotel = next(
        offer.hotel
        for offer in world.search_hotels("Paris", check_in, check_out)
        if 2 <= offer.hotel.rooms_available <= 10
    )
    rooms, card = hotel.rooms_available, f"pm-{POINTS_RICH}-card"
    middle_night = DAY + timedelta(days=1)
    world.book_hotel(POINTS_RICH, hotel.hotel_id, middle_night, middle_night + timedelta(days=1), card)
    assert world.rooms_left(hotel, check_in, check_out) == rooms - 1
    assert world.rooms_left(hotel, check_in, middle_night) == rooms  # the check-out day's night is free
    world.book_hotel(POINTS_RICH, hotel.hotel_id, check_in, check_out, card, rooms=rooms - 1)
    with pytest.raises(SoldOutError, match="room"):
        world.book_hotel(POINTS_RICH, hotel.hotel_id, middle_night, middle_night + timedelta(days=1), card)
    assert hotel not in [offer.hotel for offer in world.search_hotels("Paris", check_in, check_out)]
    booking = world.book_hotel(POINTS_RICH, hotel.hotel_id, check_out, check_out + timedelta(days=2), card)
    assert booking.price == 2 * hotel.nightly_price


def test_cars_are_counted_across_overlapping_rentals(world: TravelWorld) -> None:
    offer = next(o for o in world.search_cars("Denver", DAY, DAY + timedelta(days=2)) if o.units_left == 2)
    car, card = offer.car, f"pm-{POINTS_RICH}-card"
    world.book_car(POINTS_RICH, car.car_id, DAY, DAY + timedelta(days=2), card)
    world.book_car(POINTS_RICH, car.car_id, DAY + timedelta(days=1), DAY + timedelta(days=3), card)
    with pytest.raises(SoldOutError):
        world.book_car(POINTS_RICH, car.car_id, DAY + timedelta(days=1), DAY + timedelta(days=1), card)
    same_day = world.book_car(POINTS_RICH, car.car_id, DAY + timedelta(days=3), DAY + timedelta(days=3), card)
    assert same_day.price == car.daily_price  # a same-day return is one day


def test_cancelling_refunds_the_original_payment_method(world: TravelWorld) -> None:
    flight = a_flight(world, "premium_economy")
    points = f"pm-{POINTS_RICH}-points"
    before = balance(world, points)
    booking = world.book_flight(POINTS_RICH, flight.flight_number, DAY, "premium_economy", points)
    cancelled = world.cancel_booking(booking.booking_id)
    assert (cancelled.status, cancelled.refund) == ("cancelled", booking.price)
    assert balance(world, points) == before
    with pytest.raises(CancellationRefusedError, match="already cancelled"):
        world.cancel_booking(booking.booking_id)


def test_basic_economy_cannot_be_cancelled(world: TravelWorld) -> None:
    basic = next(b for b in world.list_bookings(BASIC_FARE_HOLDER) if b.cabin == "basic_economy")
    with pytest.raises(CancellationRefusedError, match="non-refundable"):
        world.cancel_booking(basic.booking_id)


def test_flights_cannot_be_cancelled_within_24_hours(world: TravelWorld) -> None:
    flight = a_flight(world)
    booking = world.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", f"pm-{POINTS_RICH}-card")
    close_world = TravelWorld(now=flight.departure - timedelta(hours=23))
    rebooked = close_world.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", f"pm-{POINTS_RICH}-card")
    with pytest.raises(CancellationRefusedError, match="24 hours"):
        close_world.cancel_booking(rebooked.booking_id)
    assert world.cancel_booking(booking.booking_id).status == "cancelled"


def test_hotel_cancellation_policies(world: TravelWorld) -> None:
    non_refundable = next(b for b in world.list_bookings("T1005") if b.kind == "hotel")
    with pytest.raises(CancellationRefusedError, match="non-refundable"):
        world.cancel_booking(non_refundable.booking_id)
    moderate = next(b for b in world.list_bookings("T1011") if b.kind == "hotel")
    too_late = TravelWorld(now=datetime.combine(moderate.start_date - timedelta(days=2), datetime.min.time()))
    with pytest.raises(CancellationRefusedError, match="3 day"):
        too_late.cancel_booking(moderate.booking_id)
    assert world.cancel_booking(moderate.booking_id).status == "cancelled"


def test_only_the_traveller_booker_or_delegate_may_cancel(world: TravelWorld) -> None:
    booking = next(b for b in world.list_bookings(EXECUTIVE) if b.kind == "hotel")
    with pytest.raises(NotAuthorisedError):
        world.cancel_booking(booking.booking_id, requested_by=LOW_CREDIT)
    assert world.cancel_booking(booking.booking_id, requested_by=ASSISTANT).status == "cancelled"


def test_snapshot_ignores_ids_and_order(world: TravelWorld) -> None:
    other = TravelWorld(seed=0)
    flight = a_flight(world)
    hotel = world.search_hotels("London", DAY, DAY + timedelta(days=2))[0].hotel
    card = f"pm-{POINTS_RICH}-card"
    world.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", card)
    world.book_hotel(POINTS_RICH, hotel.hotel_id, DAY, DAY + timedelta(days=2), card)
    other.book_hotel(POINTS_RICH, hotel.hotel_id, DAY, DAY + timedelta(days=2), card)
    other.book_flight(POINTS_RICH, flight.flight_number, DAY, "economy", card)
    assert world.snapshot() == other.snapshot()
    snapshot = world.snapshot()
    assert all("BK" not in str(value) for booking in snapshot["bookings"] for value in booking.values())
    assert snapshot["balances"][card] == balance(world, card)


def test_world_can_live_in_a_file_but_never_overwrites_one(tmp_path: Path) -> None:
    path = tmp_path / "world.sqlite"
    with TravelWorld(path=path) as world:
        assert world.snapshot() == TravelWorld().snapshot()
    assert path.stat().st_size > 0
    with pytest.raises(FileExistsError):
        TravelWorld(path=path)


def test_lookups_explain_how_to_find_ids(world: TravelWorld) -> None:
    with pytest.raises(NotFoundError, match="traveller id"):
        world.get_traveller("nobody@example.com")
    sometimes = next(f for f in world.catalog.flights if f.stop and f.date > DAY)
    flies_on = {f.date for f in world.catalog.flights if f.flight_number == sometimes.flight_number}
    idle_day = next(day for day in (DAY + timedelta(days=n) for n in range(30)) if day not in flies_on)
    with pytest.raises(NotFoundError, match="does not operate"):
        world.get_flight(sometimes.flight_number, idle_day)
    assert world.get_traveller(world.get_traveller("T1002").email.upper()).traveller_id == "T1002"


def test_a_traveller_is_found_in_a_phrase_that_names_exactly_one() -> None:
    world = TravelWorld()
    assert world.get_traveller("T1001, home airport MIA, 2026-12-12").traveller_id == "T1001"
    assert world.get_traveller("it's rafael.novak@example.com").traveller_id == "T1001"
    with pytest.raises(NotFoundError, match="Ask the user for their traveller id"):
        world.get_traveller("T1001 or T1002")
