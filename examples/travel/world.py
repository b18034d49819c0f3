"""TravelWorld: one bookings database over the shared catalogue, with the business rules.

Each world is a fresh SQLite database (in memory or in a file) holding the
travellers, their payment methods and their bookings; `TravelWorld.kept_in`
reopens a file as it was left, for a durable run that goes on after a kill. Seats, rooms and cars
left are the catalogue's numbers minus the world's confirmed bookings, so the
catalogue itself is shared and never copied. Methods are plain Python; the
agent-facing wrappers live in `tools`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from . import roster
from .catalog import CABINS, HOTEL_FREE_CANCELLATION_DAYS, SEAT_CABIN, Car, Catalog, Flight, Hotel, load_catalog
from .errors import (
    BookingWindowError,
    CancellationRefusedError,
    InsufficientFundsError,
    InvalidRequestError,
    NotAuthorisedError,
    NotFoundError,
    PaymentError,
    SoldOutError,
)
from .places import CITY_OF_AIRPORT, resolve_airports, resolve_city
from .timeline import DEFAULT_NOW, LAST_DAY, parse_day
from .weather import Weather, weather_for

POINTS_PER_DOLLAR = 100
MAX_STAY_NIGHTS = 30
MAX_RENTAL_DAYS = 30
MAX_PARTY = 9
# A flight can be cancelled for a refund until this long before departure.
FLIGHT_CANCELLATION_CUTOFF = timedelta(hours=24)

_SCHEMA = """
CREATE TABLE travellers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    home_airport TEXT NOT NULL,
    loyalty_tier TEXT NOT NULL CHECK (loyalty_tier IN ('none', 'silver', 'gold', 'platinum'))
);
CREATE TABLE loyalty_programs (
    traveller_id TEXT NOT NULL REFERENCES travellers(id),
    airline TEXT NOT NULL,
    member_number TEXT NOT NULL,
    PRIMARY KEY (traveller_id, airline)
);
-- delegate_id may book and cancel on behalf of traveller_id.
CREATE TABLE delegations (
    traveller_id TEXT NOT NULL REFERENCES travellers(id),
    delegate_id TEXT NOT NULL REFERENCES travellers(id),
    PRIMARY KEY (traveller_id, delegate_id)
);
-- balance: remaining credit (card) or value (voucher) in USD, or points.
CREATE TABLE payment_methods (
    id TEXT PRIMARY KEY,
    traveller_id TEXT NOT NULL REFERENCES travellers(id),
    kind TEXT NOT NULL CHECK (kind IN ('card', 'voucher', 'points')),
    label TEXT NOT NULL,
    last4 TEXT,
    balance INTEGER NOT NULL CHECK (balance >= 0)
);
CREATE TABLE bookings (
    id TEXT PRIMARY KEY,
    traveller_id TEXT NOT NULL REFERENCES travellers(id),
    booked_by TEXT NOT NULL REFERENCES travellers(id),
    kind TEXT NOT NULL CHECK (kind IN ('flight', 'hotel', 'car')),
    item_ref TEXT NOT NULL,
    cabin TEXT,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    price INTEGER NOT NULL,
    payment_method_id TEXT NOT NULL REFERENCES payment_methods(id),
    charged INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    refund INTEGER NOT NULL DEFAULT 0,
    -- The idempotency keys of the calls that made and cancelled it: the same call again changes nothing.
    idempotency_key TEXT UNIQUE,
    cancel_key TEXT UNIQUE
);
CREATE INDEX bookings_by_item ON bookings (kind, item_ref, status);
CREATE INDEX bookings_by_traveller ON bookings (traveller_id);
"""


@dataclass(frozen=True, slots=True)
class FlightOffer:
    flight: Flight
    cabin: str
    seats_left: int
    price: int  # per passenger
    passengers: int

    @property
    def total(self) -> int:
        return self.price * self.passengers


@dataclass(frozen=True, slots=True)
class HotelOffer:
    hotel: Hotel
    check_in: date
    check_out: date
    rooms: int
    rooms_left: int

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days

    @property
    def total(self) -> int:
        return self.hotel.nightly_price * self.nights * self.rooms


@dataclass(frozen=True, slots=True)
class CarOffer:
    car: Car
    pickup_date: date
    return_date: date
    units_left: int

    @property
    def days(self) -> int:
        return rental_days(self.pickup_date, self.return_date)

    @property
    def total(self) -> int:
        return self.car.daily_price * self.days


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    payment_method_id: str
    traveller_id: str
    kind: str  # card | voucher | points
    label: str
    last4: str | None
    balance: int  # USD of credit or value; points for kind == "points"

    def cost_of(self, price: int) -> int:
        """What a price in USD takes from this method's balance."""
        return price * POINTS_PER_DOLLAR if self.kind == "points" else price


@dataclass(frozen=True, slots=True)
class Traveller:
    traveller_id: str
    name: str
    email: str
    home_airport: str
    loyalty_tier: str
    loyalty_programs: dict[str, str]  # airline code -> member number
    payment_methods: tuple[PaymentMethod, ...]
    delegates: tuple[str, ...]  # who may book for this traveller
    books_for: tuple[str, ...]  # whom this traveller may book for


@dataclass(frozen=True, slots=True)
class Booking:
    booking_id: str
    traveller_id: str
    booked_by: str
    kind: str  # flight | hotel | car
    item_ref: str  # flight number, hotel id or car id
    cabin: str | None
    start_date: date
    end_date: date
    quantity: int  # passengers, rooms or cars
    price: int
    payment_method_id: str
    charged: int  # taken from the payment method, in its own unit
    status: str  # confirmed | cancelled
    refund: int


def rental_days(pickup: date, dropoff: date) -> int:
    # A same-day return is charged as one day.
    return max(1, (dropoff - pickup).days)


class TravelWorld:
    """A fresh bookings database seeded with travellers; all reads and writes of the travel world go through it.

    `seed` chooses the travellers, their balances and their existing bookings;
    `path` puts the database in a file (which must not exist yet) instead of
    memory; `now` is the world's clock, fixed for reproducible evals.
    """

    def __init__(self, seed: int = 0, path: str | Path | None = None, now: datetime = DEFAULT_NOW) -> None:
        if path is not None and Path(path).exists():
            raise FileExistsError(f"{path} already exists; TravelWorld creates a fresh database, give a new path.")
        self._connect(seed, path, now)
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {int(seed)}")
        # Existing trips were booked before the world's clock starts, under the
        # default clock, so the roster is the same whatever `now` a test picks.
        self.now = min(now, DEFAULT_NOW)
        with self._transaction() as db:
            roster.insert_travellers(db, seed)
        roster.book_existing_trips(self, seed)
        self.now = now

    @classmethod
    def kept_in(cls, path: str | Path, seed: int = 0, now: datetime = DEFAULT_NOW) -> TravelWorld:
        """The world whose bookings persist in the file `path`: seeded there the first time, as left afterwards.

        For a durable run (`retinue run travel --durable`): killed and resumed, it goes on with the bookings
        it had made, and a booking made again with the same idempotency key is not made twice.
        """
        path = Path(path)
        if not path.exists():
            # Seeded in full under another name first: a kill meanwhile leaves no half-made world behind.
            creating = path.with_name(path.name + ".creating")
            creating.unlink(missing_ok=True)
            cls(seed, creating, now).close()
            os.replace(creating, path)
        world = cls.__new__(cls)
        world._connect(seed, path, now)
        kept_seed = world._db.execute("PRAGMA user_version").fetchone()[0]
        if kept_seed != seed:
            world.close()
            raise ValueError(f"{path} holds the world of seed {kept_seed}, not {seed}; give another path.")
        last = world._db.execute("SELECT max(CAST(substr(id, 3) AS INTEGER)) FROM bookings").fetchone()[0]
        world._next_booking_number = 1001 if last is None else last + 1
        return world

    def _connect(self, seed: int, path: str | Path | None, now: datetime) -> None:
        self.seed = seed
        self.now = now
        self.catalog: Catalog = load_catalog()
        # Tools may call from worker threads; one lock serialises access to the connection.
        self._lock = threading.RLock()
        self._db: sqlite3.Connection = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        self._next_booking_number = 1001

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TravelWorld:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    # ----------------------------------------------------------------- searches

    def search_flights(
        self,
        origin: str,
        destination: str,
        day: date | str,
        cabin: str = "economy",
        passengers: int = 1,
        max_price: int | None = None,
        max_stops: int = 1,
    ) -> list[FlightOffer]:
        """Bookable flights between two cities or airports on a day, cheapest first, then shortest."""
        origins, destinations = resolve_airports(origin), resolve_airports(destination)
        if set(origins) & set(destinations) or CITY_OF_AIRPORT[origins[0]] is CITY_OF_AIRPORT[destinations[0]]:
            raise InvalidRequestError(f"Origin and destination are the same city ({CITY_OF_AIRPORT[origins[0]].name}).")
        day = self._bookable_day(day, "date")
        _check_cabin(cabin)
        _check_party(passengers, "passengers")
        offers = []
        for from_code in origins:
            for to_code in destinations:
                for flight in self.catalog.flights_on(from_code, to_code, day):
                    offer = self._flight_offer(flight, cabin, passengers)
                    if offer is None or flight.stops > max_stops:
                        continue
                    if max_price is not None and offer.price > max_price:
                        continue
                    offers.append(offer)
        offers.sort(key=lambda offer: (offer.price, offer.flight.duration_minutes, offer.flight.departure))
        return offers

    def flight_dates(self, origin: str, destination: str) -> list[date]:
        """Days in the window with any flight between two cities or airports (for 'no flights that day' hints)."""
        days: set[date] = set()
        for from_code in resolve_airports(origin):
            for to_code in resolve_airports(destination):
                days.update(self.catalog.dates_by_route.get((from_code, to_code), ()))
        return sorted(day for day in days if day >= self.now.date())

    def get_flight(self, flight_number: str, day: date | str) -> Flight:
        day = parse_day(day)
        number = flight_number.replace(" ", "").upper()
        flight = self.catalog.flight(number, day)
        if flight is None:
            operating = sorted(f.date for f in self.catalog.flights if f.flight_number == number)
            if not operating:
                raise NotFoundError(f"There is no flight {flight_number!r}. Search flights to find flight numbers.")
            listed = ", ".join(d.isoformat() for d in operating if d >= self.now.date())[:200]
            raise NotFoundError(f"Flight {number} does not operate on {day.isoformat()}. It flies on: {listed}.")
        return flight

    def seats_left(self, flight: Flight, cabin: str) -> int:
        seat_cabin = SEAT_CABIN[cabin]
        sold_cabins = [fare for fare, physical in SEAT_CABIN.items() if physical == seat_cabin]
        placeholders = ",".join("?" * len(sold_cabins))
        with self._lock:
            row = self._db.execute(
                f"SELECT COALESCE(SUM(quantity), 0) FROM bookings WHERE kind = 'flight' AND item_ref = ? "
                f"AND start_date = ? AND status = 'confirmed' AND cabin IN ({placeholders})",
                (flight.flight_number, flight.date.isoformat(), *sold_cabins),
            ).fetchone()
        return flight.seats.get(seat_cabin, 0) - int(row[0])

    def _flight_offer(self, flight: Flight, cabin: str, passengers: int) -> FlightOffer | None:
        if cabin not in flight.fares or flight.departure <= self.now:
            return None
        seats = self.seats_left(flight, cabin)
        if seats < passengers:
            return None
        return FlightOffer(flight, cabin, seats, flight.fares[cabin], passengers)

    def search_hotels(
        self,
        city: str,
        check_in: date | str,
        check_out: date | str,
        rooms: int = 1,
        max_price: int | None = None,
        min_stars: int | None = None,
        neighbourhood: str | None = None,
    ) -> list[HotelOffer]:
        """Hotels in a city with rooms free every night of the stay, cheapest total first.

        `max_price` is per night; `neighbourhood` matches any part of the name, case-insensitive.
        """
        place = resolve_city(city)
        first, last = self._stay(check_in, check_out, "check_in", "check_out", MAX_STAY_NIGHTS)
        _check_party(rooms, "rooms")
        wanted_area = neighbourhood.casefold().strip() if neighbourhood else None
        offers = []
        for hotel in self.catalog.hotels_by_city.get(place.name, ()):
            if max_price is not None and hotel.nightly_price > max_price:
                continue
            if min_stars is not None and hotel.stars < min_stars:
                continue
            if wanted_area and wanted_area not in hotel.neighbourhood.casefold():
                continue
            left = self.rooms_left(hotel, first, last)
            if left >= rooms:
                offers.append(HotelOffer(hotel, first, last, rooms, left))
        offers.sort(key=lambda offer: (offer.total, -offer.hotel.rating, offer.hotel.hotel_id))
        return offers

    def rooms_left(self, hotel: Hotel, check_in: date, check_out: date) -> int:
        """Rooms free on every night from check_in to the night before check_out."""
        with self._lock:
            rows = self._db.execute(
                "SELECT start_date, end_date, quantity FROM bookings WHERE kind = 'hotel' AND item_ref = ? "
                "AND status = 'confirmed' AND start_date < ? AND end_date > ?",
                (hotel.hotel_id, check_out.isoformat(), check_in.isoformat()),
            ).fetchall()
        busiest = 0
        night = check_in
        while night < check_out:
            taken = sum(
                row["quantity"]
                for row in rows
                if date.fromisoformat(row["start_date"]) <= night < date.fromisoformat(row["end_date"])
            )
            busiest = max(busiest, taken)
            night += timedelta(days=1)
        return hotel.rooms_available - busiest

    def search_cars(
        self,
        location: str,
        pickup_date: date | str,
        return_date: date | str,
        car_class: str | None = None,
        min_seats: int | None = None,
        max_price: int | None = None,
    ) -> list[CarOffer]:
        """Cars to pick up at a city's airport, free for the whole rental, cheapest total first.

        `max_price` is per day.
        """
        place = resolve_city(location)
        first, last = self._stay(pickup_date, return_date, "pickup_date", "return_date", MAX_RENTAL_DAYS, same_day=True)
        offers = []
        for car in self.catalog.cars_by_city.get(place.name, ()):
            if car_class is not None and car.car_class != car_class.strip().lower():
                continue
            if min_seats is not None and car.seats < min_seats:
                continue
            if max_price is not None and car.daily_price > max_price:
                continue
            left = self.cars_left(car, first, last)
            if left >= 1:
                offers.append(CarOffer(car, first, last, left))
        offers.sort(key=lambda offer: (offer.total, offer.car.car_id))
        return offers

    def cars_left(self, car: Car, pickup: date, dropoff: date) -> int:
        # Rentals overlap when each starts before the other ends; a same-day
        # rental occupies its day.
        end = max(dropoff, pickup + timedelta(days=1))
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(quantity), 0) FROM bookings WHERE kind = 'car' AND item_ref = ? "
                "AND status = 'confirmed' AND start_date < ? AND MAX(end_date, date(start_date, '+1 day')) > ?",
                (car.car_id, end.isoformat(), pickup.isoformat()),
            ).fetchone()
        return car.units_available - int(row[0])

    def get_weather(self, city: str, day: date | str) -> Weather:
        """The forecast for a city (name or airport code) on a day in the booking window."""
        return weather_for(resolve_city(city), self._bookable_day(day, "date"))

    # --------------------------------------------------------------- travellers

    def get_traveller(self, traveller: str) -> Traveller:
        """A traveller by id (T1001) or email, with payment methods, loyalty programs and delegations."""
        key = _traveller_key(traveller)
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM travellers WHERE upper(id) = upper(?) OR lower(email) = lower(?)", (key, key)
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"No traveller has the id or email {traveller!r}. Ask the user for their traveller id "
                    "or the email on their profile; do not guess one."
                )
            traveller_id = row["id"]
            programs = self._db.execute(
                "SELECT airline, member_number FROM loyalty_programs WHERE traveller_id = ? ORDER BY airline",
                (traveller_id,),
            ).fetchall()
            methods = self._db.execute(
                "SELECT * FROM payment_methods WHERE traveller_id = ? ORDER BY id", (traveller_id,)
            ).fetchall()
            delegates = self._db.execute(
                "SELECT delegate_id FROM delegations WHERE traveller_id = ? ORDER BY delegate_id", (traveller_id,)
            ).fetchall()
            books_for = self._db.execute(
                "SELECT traveller_id FROM delegations WHERE delegate_id = ? ORDER BY traveller_id", (traveller_id,)
            ).fetchall()
        return Traveller(
            traveller_id=traveller_id,
            name=row["name"],
            email=row["email"],
            home_airport=row["home_airport"],
            loyalty_tier=row["loyalty_tier"],
            loyalty_programs={program["airline"]: program["member_number"] for program in programs},
            payment_methods=tuple(_payment_method(method) for method in methods),
            delegates=tuple(delegate[0] for delegate in delegates),
            books_for=tuple(other[0] for other in books_for),
        )

    def traveller_ids(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT id FROM travellers ORDER BY id")]

    def get_payment_method(self, payment_method_id: str) -> PaymentMethod:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM payment_methods WHERE lower(id) = lower(?)", (payment_method_id.strip(),)
            ).fetchone()
        if row is None:
            raise NotFoundError(
                f"There is no payment method {payment_method_id!r}. Look up the traveller to see their payment "
                "method ids (like pm-T1001-card)."
            )
        return _payment_method(row)

    def list_bookings(self, traveller_id: str, include_cancelled: bool = True) -> list[Booking]:
        """A traveller's bookings, earliest trip first."""
        traveller = self.get_traveller(traveller_id)
        query = "SELECT * FROM bookings WHERE traveller_id = ?"
        if not include_cancelled:
            query += " AND status = 'confirmed'"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY start_date, id", (traveller.traveller_id,)).fetchall()
        return [_booking(row) for row in rows]

    def get_booking(self, booking_id: str) -> Booking:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM bookings WHERE upper(id) = upper(?)", (booking_id.strip(),)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"There is no booking {booking_id!r}. List the traveller's bookings to see their ids.")
        return _booking(row)

    # ----------------------------------------------------------------- bookings

    def book_flight(
        self,
        traveller_id: str,
        flight_number: str,
        day: date | str,
        cabin: str,
        payment_method_id: str,
        passengers: int = 1,
        booked_by: str | None = None,
        *,
        key: str = "",
    ) -> Booking:
        """Book seats on a flight for a traveller (the passenger), charged to a payment method.

        `key`, the call's idempotency key: a booking already made with it is returned, not made again.
        """
        with self._lock:
            return self._made_with(key) or self._book_flight(
                traveller_id, flight_number, day, cabin, payment_method_id, passengers, booked_by, key
            )

    def _book_flight(
        self,
        traveller_id: str,
        flight_number: str,
        day: date | str,
        cabin: str,
        payment_method_id: str,
        passengers: int,
        booked_by: str | None,
        key: str,
    ) -> Booking:
        traveller, booker = self._parties(traveller_id, booked_by)
        day = self._bookable_day(day, "date")
        _check_cabin(cabin)
        _check_party(passengers, "passengers")
        flight = self.get_flight(flight_number, day)
        if flight.departure <= self.now:
            raise BookingWindowError(
                f"Flight {flight.flight_number} on {day.isoformat()} departed at {flight.depart_time:%H:%M}; "
                "choose a later flight."
            )
        if cabin not in flight.fares:
            sold = ", ".join(flight.fares)
            raise InvalidRequestError(f"Flight {flight.flight_number} does not sell {cabin}; it sells: {sold}.")
        left = self.seats_left(flight, cabin)
        if left < passengers:
            raise SoldOutError(
                f"Only {left} {SEAT_CABIN[cabin].replace('_', ' ')} seat(s) left on {flight.flight_number} "
                f"on {day.isoformat()}, {passengers} requested. Try another cabin or flight."
            )
        price = flight.fares[cabin] * passengers
        return self._record(
            traveller,
            booker,
            "flight",
            flight.flight_number,
            cabin,
            day,
            flight.arrive_date,
            passengers,
            price,
            payment_method_id,
            key,
        )

    def book_hotel(
        self,
        traveller_id: str,
        hotel_id: str,
        check_in: date | str,
        check_out: date | str,
        payment_method_id: str,
        rooms: int = 1,
        booked_by: str | None = None,
        *,
        key: str = "",
    ) -> Booking:
        """Book hotel rooms for every night from check-in to the night before check-out (`key`: as for flights)."""
        with self._lock:
            return self._made_with(key) or self._book_hotel(
                traveller_id, hotel_id, check_in, check_out, payment_method_id, rooms, booked_by, key
            )

    def _book_hotel(
        self,
        traveller_id: str,
        hotel_id: str,
        check_in: date | str,
        check_out: date | str,
        payment_method_id: str,
        rooms: int,
        booked_by: str | None,
        key: str,
    ) -> Booking:
        traveller, booker = self._parties(traveller_id, booked_by)
        first, last = self._stay(check_in, check_out, "check_in", "check_out", MAX_STAY_NIGHTS)
        _check_party(rooms, "rooms")
        hotel = self.get_hotel(hotel_id)
        left = self.rooms_left(hotel, first, last)
        if left < rooms:
            raise SoldOutError(
                f"{hotel.name} has only {max(left, 0)} room(s) free for every night from {first.isoformat()} to "
                f"{last.isoformat()}, {rooms} requested. Try other dates or another hotel."
            )
        price = hotel.nightly_price * (last - first).days * rooms
        return self._record(
            traveller, booker, "hotel", hotel.hotel_id, None, first, last, rooms, price, payment_method_id, key
        )

    def book_car(
        self,
        traveller_id: str,
        car_id: str,
        pickup_date: date | str,
        return_date: date | str,
        payment_method_id: str,
        booked_by: str | None = None,
        *,
        key: str = "",
    ) -> Booking:
        """Rent a car from pickup to return date (a same-day return counts as one day; `key`: as for flights)."""
        with self._lock:
            return self._made_with(key) or self._book_car(
                traveller_id, car_id, pickup_date, return_date, payment_method_id, booked_by, key
            )

    def _book_car(
        self,
        traveller_id: str,
        car_id: str,
        pickup_date: date | str,
        return_date: date | str,
        payment_method_id: str,
        booked_by: str | None,
        key: str,
    ) -> Booking:
        traveller, booker = self._parties(traveller_id, booked_by)
        first, last = self._stay(pickup_date, return_date, "pickup_date", "return_date", MAX_RENTAL_DAYS, same_day=True)
        car = self.get_car(car_id)
        if self.cars_left(car, first, last) < 1:
            raise SoldOutError(
                f"No {car.car_class} cars are left at {car.company} {car.pickup_airport} for those dates. "
                "Try another class or company."
            )
        price = car.daily_price * rental_days(first, last)
        return self._record(traveller, booker, "car", car.car_id, None, first, last, 1, price, payment_method_id, key)

    def cancel_booking(self, booking_id: str, requested_by: str | None = None, *, key: str = "") -> Booking:
        """Cancel a confirmed booking and refund the original payment method, if the fare rules allow it.

        `key`, the call's idempotency key: a cancellation already made with it is returned, not refused.
        """
        with self._lock:
            if key:
                row = self._db.execute("SELECT * FROM bookings WHERE cancel_key = ?", (key,)).fetchone()
                if row is not None:
                    return _booking(row)
            return self._cancel_booking(booking_id, requested_by, key)

    def _cancel_booking(self, booking_id: str, requested_by: str | None, key: str) -> Booking:
        booking = self.get_booking(booking_id)
        requester = self.get_traveller(requested_by) if requested_by else self.get_traveller(booking.traveller_id)
        allowed = {booking.traveller_id, booking.booked_by, *self.get_traveller(booking.traveller_id).delegates}
        if requester.traveller_id not in allowed:
            raise NotAuthorisedError(
                f"{requester.name} ({requester.traveller_id}) may not cancel booking {booking.booking_id}: it belongs "
                f"to {booking.traveller_id}, who has not authorised them."
            )
        if booking.status == "cancelled":
            raise CancellationRefusedError(f"Booking {booking.booking_id} is already cancelled.")
        self._check_cancellation_policy(booking)
        with self._transaction() as db:
            db.execute(
                "UPDATE bookings SET status = 'cancelled', refund = price, cancel_key = ? WHERE id = ?",
                (key or None, booking.booking_id),
            )
            db.execute(
                "UPDATE payment_methods SET balance = balance + ? WHERE id = ?",
                (booking.charged, booking.payment_method_id),
            )
        return self.get_booking(booking.booking_id)

    def _check_cancellation_policy(self, booking: Booking) -> None:
        today = self.now.date()
        if booking.kind == "flight":
            flight = self.get_flight(booking.item_ref, booking.start_date)
            if booking.cabin == "basic_economy":
                raise CancellationRefusedError(
                    f"Booking {booking.booking_id} is a basic economy fare, which is non-refundable and cannot be "
                    "cancelled."
                )
            if flight.departure - self.now < FLIGHT_CANCELLATION_CUTOFF:
                raise CancellationRefusedError(
                    f"Flight {flight.flight_number} departs {flight.departure:%Y-%m-%d %H:%M}, less than 24 hours "
                    "from now; flights can only be cancelled up to 24 hours before departure."
                )
        elif booking.kind == "hotel":
            hotel = self.get_hotel(booking.item_ref)
            if hotel.cancellation_policy == "non_refundable":
                raise CancellationRefusedError(
                    f"Booking {booking.booking_id} at {hotel.name} is a non-refundable rate and cannot be cancelled."
                )
            free_days = HOTEL_FREE_CANCELLATION_DAYS[hotel.cancellation_policy]
            deadline = booking.start_date - timedelta(days=free_days)
            if today > deadline:
                raise CancellationRefusedError(
                    f"{hotel.name} allows free cancellation only until {deadline.isoformat()} ({free_days} day(s) "
                    "before check-in); that date has passed."
                )
        elif today >= booking.start_date:
            raise CancellationRefusedError(
                f"The car rental {booking.booking_id} has already started ({booking.start_date.isoformat()})."
            )

    def get_hotel(self, hotel_id: str) -> Hotel:
        hotel = self.catalog.hotels.get(hotel_id.strip().upper())
        if hotel is None:
            raise NotFoundError(f"There is no hotel {hotel_id!r}. Search hotels to find hotel ids (like H-SFO-01).")
        return hotel

    def get_car(self, car_id: str) -> Car:
        car = self.catalog.cars.get(car_id.strip().upper())
        if car is None:
            raise NotFoundError(f"There is no car {car_id!r}. Search cars to find car ids (like C-SFO-01).")
        return car

    def describe_item(self, booking: Booking) -> str:
        """One line saying what a booking is, for people and models."""
        if booking.kind == "flight":
            flight = self.get_flight(booking.item_ref, booking.start_date)
            cabin = (booking.cabin or "").replace("_", " ")
            via = f" via {flight.stop}" if flight.stop else ""
            return (
                f"flight {flight.flight_number} {flight.origin}->{flight.destination}{via} {booking.start_date} "
                f"{flight.depart_time:%H:%M}, {cabin}, {booking.quantity} passenger(s)"
            )
        if booking.kind == "hotel":
            hotel = self.get_hotel(booking.item_ref)
            return (
                f"{hotel.name} ({hotel.city}), {booking.start_date} to {booking.end_date}, {booking.quantity} room(s)"
            )
        car = self.get_car(booking.item_ref)
        return f"{car.company} {car.car_class} car at {car.pickup_airport}, {booking.start_date} to {booking.end_date}"

    # ------------------------------------------------------------------- rules

    def _parties(self, traveller_id: str, booked_by: str | None) -> tuple[Traveller, Traveller]:
        traveller = self.get_traveller(traveller_id)
        booker = self.get_traveller(booked_by) if booked_by else traveller
        if booker.traveller_id != traveller.traveller_id and booker.traveller_id not in traveller.delegates:
            raise NotAuthorisedError(
                f"{booker.name} ({booker.traveller_id}) is not authorised to book for {traveller.name} "
                f"({traveller.traveller_id}). {traveller.name} must book for themselves or add them as a delegate."
            )
        return traveller, booker

    def _bookable_day(self, value: date | str, field: str) -> date:
        day = parse_day(value, field)
        today = self.now.date()
        if day < today:
            raise BookingWindowError(f"{field} {day.isoformat()} is in the past; today is {today.isoformat()}.")
        if day > LAST_DAY:
            raise BookingWindowError(
                f"{field} {day.isoformat()} is beyond the 60-day booking window; bookings and forecasts are open "
                f"from {today.isoformat()} to {LAST_DAY.isoformat()}."
            )
        return day

    def _stay(
        self,
        start: date | str,
        end: date | str,
        start_field: str,
        end_field: str,
        max_days: int,
        same_day: bool = False,
    ) -> tuple[date, date]:
        first = self._bookable_day(start, start_field)
        last = parse_day(end, end_field)
        if last < first or (last == first and not same_day):
            raise InvalidRequestError(
                f"{end_field} ({last.isoformat()}) must be after {start_field} ({first.isoformat()})."
            )
        if last > LAST_DAY + timedelta(days=1):
            raise BookingWindowError(
                f"{end_field} {last.isoformat()} is beyond the 60-day booking window (last night bookable: "
                f"{LAST_DAY.isoformat()})."
            )
        if (last - first).days > max_days:
            raise InvalidRequestError(f"At most {max_days} days can be booked at once.")
        return first, last

    def _record(
        self,
        traveller: Traveller,
        booker: Traveller,
        kind: str,
        item_ref: str,
        cabin: str | None,
        start: date,
        end: date,
        quantity: int,
        price: int,
        payment_method_id: str,
        key: str = "",
    ) -> Booking:
        method = self.get_payment_method(payment_method_id)
        if method.traveller_id not in (traveller.traveller_id, booker.traveller_id):
            raise PaymentError(
                f"Payment method {method.payment_method_id} belongs to {method.traveller_id}, not to "
                f"{booker.traveller_id}; pay with one of {booker.name}'s own payment methods."
            )
        cost = method.cost_of(price)
        if cost > method.balance:
            unit = "points" if method.kind == "points" else "USD"
            raise InsufficientFundsError(
                f"{method.label} ({method.payment_method_id}) has {method.balance:,} {unit} available but this "
                f"booking costs {cost:,} {unit}. Use another payment method."
            )
        with self._transaction() as db:
            booking_id = f"BK{self._next_booking_number}"
            self._next_booking_number += 1
            db.execute(
                "UPDATE payment_methods SET balance = balance - ? WHERE id = ?", (cost, method.payment_method_id)
            )
            db.execute(
                "INSERT INTO bookings (id, traveller_id, booked_by, kind, item_ref, cabin, start_date, end_date, "
                "quantity, price, payment_method_id, charged, status, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?, 'confirmed', ?)",
                (
                    booking_id,
                    traveller.traveller_id,
                    booker.traveller_id,
                    kind,
                    item_ref,
                    cabin,
                    start.isoformat(),
                    end.isoformat(),
                    quantity,
                    price,
                    method.payment_method_id,
                    cost,
                    key or None,
                ),
            )
        return self.get_booking(booking_id)

    def _made_with(self, key: str) -> Booking | None:
        """The booking made with idempotency key `key`, if one was."""
        if not key:
            return None
        row = self._db.execute("SELECT * FROM bookings WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else _booking(row)

    # ---------------------------------------------------------------- snapshot

    def snapshot(self) -> dict[str, Any]:
        """The comparable end state: every booking and every balance, in a stable order, without ids or times.

        Two worlds that made the same bookings in any order have equal snapshots.
        """
        with self._lock:
            bookings = [
                {
                    "traveller": row["traveller_id"],
                    "booked_by": row["booked_by"],
                    "kind": row["kind"],
                    "item": row["item_ref"],
                    "cabin": row["cabin"],
                    "start": row["start_date"],
                    "end": row["end_date"],
                    "quantity": row["quantity"],
                    "price": row["price"],
                    "payment_method": row["payment_method_id"],
                    "status": row["status"],
                }
                for row in self._db.execute("SELECT * FROM bookings")
            ]
            balances = {
                row["id"]: row["balance"]
                for row in self._db.execute("SELECT id, balance FROM payment_methods ORDER BY id")
            }
        bookings.sort(key=lambda booking: tuple(str(value) for value in booking.values()))
        return {"bookings": bookings, "balances": balances}


def _check_cabin(cabin: str) -> None:
    if cabin not in CABINS:
        raise InvalidRequestError(f"Unknown cabin {cabin!r}; choose one of: {', '.join(CABINS)}.")


def _check_party(count: int, what: str) -> None:
    if not 1 <= count <= MAX_PARTY:
        raise InvalidRequestError(f"{what} must be between 1 and {MAX_PARTY}, not {count}.")


_TRAVELLER_REFERENCE = re.compile(r"\b(T\d{4})\b|([\w.+-]+@[\w-]+\.[\w.]+)", re.IGNORECASE)


def _traveller_key(text: str) -> str:
    """The traveller id or email in `text`: models often pass a whole phrase ("T1001, home airport MIA")."""
    found = {(match.group(1) or match.group(2)).lower() for match in _TRAVELLER_REFERENCE.finditer(text)}
    return found.pop() if len(found) == 1 else text.strip()


def _payment_method(row: sqlite3.Row) -> PaymentMethod:
    return PaymentMethod(
        payment_method_id=row["id"],
        traveller_id=row["traveller_id"],
        kind=row["kind"],
        label=row["label"],
        last4=row["last4"],
        balance=row["balance"],
    )


def _booking(row: sqlite3.Row) -> Booking:
    return Booking(
        booking_id=row["id"],
        traveller_id=row["traveller_id"],
        booked_by=row["booked_by"],
        kind=row["kind"],
        item_ref=row["item_ref"],
        cabin=row["cabin"],
        start_date=date.fromisoformat(row["start_date"]),
        end_date=date.fromisoformat(row["end_date"]),
        quantity=row["quantity"],
        price=row["price"],
        payment_method_id=row["payment_method_id"],
        charged=row["charged"],
        status=row["status"],
        refund=row["refund"],
    )


__all__ = [
    "Booking",
    "CarOffer",
    "FlightOffer",
    "HotelOffer",
    "PaymentMethod",
    "TravelWorld",
    "Traveller",
]
