"""The read-only catalogue (flights, hotels, cars) parsed from the committed CSV files.

Parsing happens once per process (`load_catalog` is cached): every
`TravelWorld` shares the same immutable records and keeps only bookings in its
own database, so creating a world per eval task costs milliseconds.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from importlib import resources

# Cabins (fare classes) a traveller can buy, cheapest first. Basic economy sells seats
# from the economy cabin but cannot be cancelled.
CABINS = ("basic_economy", "economy", "premium_economy", "business")
SEAT_CABIN = {
    "basic_economy": "economy",
    "economy": "economy",
    "premium_economy": "premium_economy",
    "business": "business",
}


@dataclass(frozen=True, slots=True)
class Flight:
    flight_number: str
    airline: str
    origin: str
    destination: str
    stop: str | None
    date: dt.date
    depart_time: time
    arrive_date: dt.date
    arrive_time: time
    duration_minutes: int
    distance_km: int
    fares: Mapping[str, int]  # cabin -> price per passenger, only the cabins on sale
    seats: Mapping[str, int]  # cabin -> seats left before any booking in a world

    def __hash__(self) -> int:
        # A flight number flies at most once a day; the fare mappings are not hashable.
        return hash((self.flight_number, self.date))

    @property
    def departure(self) -> datetime:
        return datetime.combine(self.date, self.depart_time)

    @property
    def arrival(self) -> datetime:
        return datetime.combine(self.arrive_date, self.arrive_time)

    @property
    def stops(self) -> int:
        return 0 if self.stop is None else 1


@dataclass(frozen=True, slots=True)
class Hotel:
    hotel_id: str
    name: str
    city: str
    neighbourhood: str
    stars: int
    rating: float
    nightly_price: int
    rooms_available: int  # rooms free each night before any booking in a world
    amenities: tuple[str, ...]
    check_in_time: time
    check_out_time: time
    cancellation_policy: str  # flexible | moderate | non_refundable


@dataclass(frozen=True, slots=True)
class Car:
    car_id: str
    company: str
    city: str
    pickup_airport: str
    car_class: str
    model: str
    seats: int
    transmission: str
    daily_price: int
    units_available: int  # cars free each day before any booking in a world
    mileage: str


# Days before check-in until which a hotel booking can be cancelled for free.
HOTEL_FREE_CANCELLATION_DAYS = {"flexible": 1, "moderate": 3}


@dataclass(frozen=True, slots=True)
class Catalog:
    flights: tuple[Flight, ...]
    hotels: Mapping[str, Hotel]
    cars: Mapping[str, Car]
    flights_by_route_day: Mapping[tuple[str, str, date], tuple[Flight, ...]]
    flights_by_number_day: Mapping[tuple[str, date], Flight]
    flight_numbers: frozenset[str]
    dates_by_route: Mapping[tuple[str, str], tuple[date, ...]]
    hotels_by_city: Mapping[str, tuple[Hotel, ...]]
    cars_by_city: Mapping[str, tuple[Car, ...]]

    def flights_on(self, origin: str, destination: str, day: date) -> tuple[Flight, ...]:
        return self.flights_by_route_day.get((origin, destination, day), ())

    def flight(self, flight_number: str, day: date) -> Flight | None:
        return self.flights_by_number_day.get((flight_number, day))


def data_text(name: str) -> str:
    """The text of one committed data file (works from a source tree and from an installed wheel)."""
    package = __package__ or "retinue_travel"
    return resources.files(package).joinpath("data").joinpath(name).read_text(encoding="utf-8")


def _rows(name: str) -> Iterator[dict[str, str]]:
    yield from csv.DictReader(io.StringIO(data_text(name)))


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _parse_flight(row: dict[str, str]) -> Flight:
    fares = {cabin: int(row[f"price_{cabin}"]) for cabin in CABINS if row[f"price_{cabin}"]}
    seats = {cabin: int(row[f"seats_{cabin}"]) for cabin in set(SEAT_CABIN.values()) if row[f"seats_{cabin}"]}
    return Flight(
        flight_number=row["flight_number"],
        airline=row["airline"],
        origin=row["origin"],
        destination=row["destination"],
        stop=row["stop"] or None,
        date=date.fromisoformat(row["date"]),
        depart_time=_clock(row["depart_time"]),
        arrive_date=date.fromisoformat(row["arrive_date"]),
        arrive_time=_clock(row["arrive_time"]),
        duration_minutes=int(row["duration_min"]),
        distance_km=int(row["distance_km"]),
        fares=fares,
        seats=seats,
    )


def _parse_hotel(row: dict[str, str]) -> Hotel:
    return Hotel(
        hotel_id=row["hotel_id"],
        name=row["name"],
        city=row["city"],
        neighbourhood=row["neighbourhood"],
        stars=int(row["stars"]),
        rating=float(row["rating"]),
        nightly_price=int(row["nightly_price"]),
        rooms_available=int(row["rooms_available"]),
        amenities=tuple(row["amenities"].split(";")),
        check_in_time=_clock(row["check_in_time"]),
        check_out_time=_clock(row["check_out_time"]),
        cancellation_policy=row["cancellation_policy"],
    )


def _parse_car(row: dict[str, str]) -> Car:
    return Car(
        car_id=row["car_id"],
        company=row["company"],
        city=row["city"],
        pickup_airport=row["pickup_airport"],
        car_class=row["car_class"],
        model=row["model"],
        seats=int(row["seats"]),
        transmission=row["transmission"],
        daily_price=int(row["daily_price"]),
        units_available=int(row["units_available"]),
        mileage=row["mileage"],
    )


@functools.cache
def load_catalog() -> Catalog:
    """Parse the data files once per process."""
    flights = tuple(_parse_flight(row) for row in _rows("flights.csv"))
    by_route_day: defaultdict[tuple[str, str, date], list[Flight]] = defaultdict(list)
    route_dates: defaultdict[tuple[str, str], set[date]] = defaultdict(set)
    for flight in flights:
        by_route_day[(flight.origin, flight.destination, flight.date)].append(flight)
        route_dates[(flight.origin, flight.destination)].add(flight.date)
    hotels = {hotel.hotel_id: hotel for hotel in map(_parse_hotel, _rows("hotels.csv"))}
    cars = {car.car_id: car for car in map(_parse_car, _rows("cars.csv"))}
    hotels_by_city: defaultdict[str, list[Hotel]] = defaultdict(list)
    for hotel in hotels.values():
        hotels_by_city[hotel.city].append(hotel)
    cars_by_city: defaultdict[str, list[Car]] = defaultdict(list)
    for car in cars.values():
        cars_by_city[car.city].append(car)
    return Catalog(
        flights=flights,
        hotels=hotels,
        cars=cars,
        flights_by_route_day={key: tuple(value) for key, value in by_route_day.items()},
        flights_by_number_day={(flight.flight_number, flight.date): flight for flight in flights},
        flight_numbers=frozenset(flight.flight_number for flight in flights),
        dates_by_route={key: tuple(sorted(value)) for key, value in route_dates.items()},
        hotels_by_city={key: tuple(value) for key, value in hotels_by_city.items()},
        cars_by_city={key: tuple(value) for key, value in cars_by_city.items()},
    )
