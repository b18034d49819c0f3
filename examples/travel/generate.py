"""Generate the travel world's catalogue: airports, airlines, flights, hotels and cars as CSV files.

Run `python -m retinue_travel.generate [OUTPUT_DIR]`; without a directory it
rewrites the committed files in `data/`. Every value comes from keyed hashes
(see `noise`), so the output is byte-identical on every run and machine.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from . import noise
from .airlines import AIRLINES, AIRLINES_BY_CODE, Airline
from .places import CITIES, CITY_OF_AIRPORT, City, distance_km
from .timeline import FIRST_DAY, window_dates

DATA_DIR = Path(__file__).parent / "data"

# Regions that share short-haul networks and low-cost carriers.
_ZONES = {
    "north_america": "americas",
    "latin_america": "americas",
    "europe": "emea",
    "middle_east": "emea",
    "africa": "emea",
    "asia_pacific": "apac",
}

# Secondary airports are served only on the routes busy enough for them in reality.
# fmt: off
_SECONDARY_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("LGA", "ORD", "NS"), ("LGA", "BOS", "BJ"), ("LGA", "ATL", "NS"), ("LGA", "MIA", "BJ"),
    ("LGA", "DCA", "BJ"), ("LGA", "DEN", "NS"), ("LGA", "DFW", "BJ"), ("LGA", "YYZ", "CQ"),
    ("EWR", "SFO", "NS"), ("EWR", "LAX", "NS"), ("EWR", "ORD", "NS"), ("EWR", "LHR", "MA"), ("EWR", "MIA", "BJ"),
    ("MDW", "ATL", "BJ"), ("MDW", "DEN", "BJ"), ("MDW", "LAS", "BJ"), ("MDW", "PHX", "BJ"), ("MDW", "BOS", "BJ"),
    ("DCA", "BOS", "BJ"), ("DCA", "ORD", "NS"), ("DCA", "ATL", "NS"), ("DCA", "MIA", "BJ"),
    ("LGW", "JFK", "EB"), ("LGW", "BOS", "EB"), ("LGW", "MAD", "EB"), ("LGW", "FCO", "EB"), ("LGW", "DUB", "EB"),
    ("LGW", "KEF", "EB"), ("LGW", "ORY", "EB"),
    ("ORY", "MAD", "EB"), ("ORY", "FCO", "EB"), ("ORY", "AMS", "EB"), ("ORY", "DUB", "EB"),
    ("HND", "ICN", "AP"), ("HND", "HKG", "AP"), ("HND", "SIN", "AP"), ("HND", "SFO", "AP"), ("HND", "LAX", "AP"),
)
# fmt: on

_CABINS = ("economy", "premium_economy", "business")


@dataclass(frozen=True, slots=True)
class Route:
    """A scheduled service: one flight number flown on some weekdays."""

    flight_number: str
    airline: Airline
    origin: str
    destination: str
    stop: str | None
    weekdays: frozenset[int]
    departure_minute: int  # minutes after local midnight
    duration_minutes: int
    distance_km: float


def _zone(city: City) -> str:
    return _ZONES[city.region]


def _nearest_hubs(city: City, count: int = 2) -> set[str]:
    hubs = [hub for hub in CITIES if hub.importance == 3 and hub is not city and _zone(hub) == _zone(city)]
    hubs.sort(key=lambda hub: distance_km(city, hub))
    return {hub.name for hub in hubs[:count]}


# Remote cities (Sydney, Cape Town, São Paulo, Honolulu) are linked to their
# nearest hubs whatever the distance, as real networks do.
_GATEWAYS: dict[str, set[str]] = {city.name: _nearest_hubs(city) for city in CITIES}


def _has_direct_service(first: City, second: City) -> bool:
    if second.name in _GATEWAYS[first.name] or first.name in _GATEWAYS[second.name]:
        return True
    distance = distance_km(first, second)
    importance = first.importance + second.importance
    if _zone(first) == _zone(second):
        return (
            distance < 1200
            or (importance == 4 and distance < 4500)
            or (importance == 5 and distance < 5000)
            or (importance == 6 and distance < 9000)
        )
    return (importance == 6 and distance < 12000) or (importance == 5 and distance < 9000)


def _carriers(first: City, second: City) -> list[Airline]:
    """Airlines that would plausibly fly between two cities, most likely first."""
    codes = {first.primary_airport.code, second.primary_airport.code}
    distance = distance_km(first, second)
    hub_carriers = [airline for airline in AIRLINES if not airline.low_cost and codes & set(airline.hubs)]
    # Rotate by the unordered pair so that both directions of a route get the same airline.
    pair_key = "~".join(sorted((first.name, second.name)))
    rotation = noise.integer(0, max(len(hub_carriers) - 1, 0), pair_key, "carrier")
    carriers = hub_carriers[rotation:] + hub_carriers[:rotation]
    carriers.extend(
        airline
        for airline in AIRLINES
        if airline.low_cost and distance < 4500 and {first.region, second.region} <= set(airline.regions)
    )
    for city in (first, second):
        if not carriers or (_zone(first) != _zone(second) and len(carriers) < 2):
            carriers.extend(
                airline
                for airline in AIRLINES
                if not airline.low_cost and airline not in carriers and city.region in airline.regions
            )
    return carriers


def _flight_minutes(distance: float) -> int:
    """Block time: cruise at ~830 km/h plus taxi, climb and descent."""
    return round((distance / 830 * 60 + 35) / 5) * 5


def _weekdays(key: str, count: int) -> frozenset[int]:
    return frozenset(sorted(range(7), key=lambda weekday: noise.unit(key, "weekday", weekday))[:count])


def _departure_minute(key: str, slot: int, slots: int, long_haul: bool) -> int:
    if long_haul:
        start, end = 9 * 60, 23 * 60
    else:
        start, end = 6 * 60, 21 * 60 + 30
    width = (end - start) / slots
    minute = start + width * slot + noise.between(0, width * 0.8, key, "departure", slot)
    return int(minute // 5 * 5)


class _FlightNumbers:
    """Hands out each airline's flight numbers in the order routes are created."""

    def __init__(self) -> None:
        self._next = {airline.code: 100 for airline in AIRLINES}
        self._next_connecting = {airline.code: 3000 for airline in AIRLINES}

    def take(self, airline: Airline, connecting: bool) -> str:
        counters = self._next_connecting if connecting else self._next
        number = counters[airline.code]
        counters[airline.code] += 1 if connecting else 2
        return f"{airline.code}{number}"


def build_routes() -> list[Route]:
    numbers = _FlightNumbers()
    routes: list[Route] = []
    direct_pairs: set[tuple[str, str]] = set()
    for first in CITIES:
        for second in CITIES:
            if first is second or not _has_direct_service(first, second):
                continue
            direct_pairs.add((first.name, second.name))
            routes.extend(_direct_routes(first, second, numbers))
    for origin_code, destination_code, airline_code in _SECONDARY_ROUTES:
        for origin, destination in ((origin_code, destination_code), (destination_code, origin_code)):
            routes.extend(_secondary_routes(origin, destination, AIRLINES_BY_CODE[airline_code], numbers))
    for first in CITIES:
        for second in CITIES:
            if first is not second:
                routes.extend(_connecting_routes(first, second, direct_pairs, numbers))
    return routes


def _direct_routes(first: City, second: City, numbers: _FlightNumbers) -> Iterator[Route]:
    distance = distance_km(first, second)
    importance = first.importance + second.importance
    key = f"{first.name}>{second.name}"
    long_haul = distance > 6000
    # Hub-to-hub and short hops from big cities run daily, busiest twice a day;
    # thinner routes run a few days a week.
    if importance == 6:
        slots = 2 if distance < 5000 else 1
        days_per_week = 7 if distance < 9000 else 4
    elif importance == 5 and distance < 2000:
        slots = 2 if distance < 1200 else 1
        days_per_week = 7
    else:
        slots = 1
        days_per_week = 4 if importance == 5 and not long_haul else 3
    carriers = _carriers(first, second)
    for slot in range(slots):
        airline = carriers[slot % len(carriers)]
        yield Route(
            flight_number=numbers.take(airline, connecting=False),
            airline=airline,
            origin=first.primary_airport.code,
            destination=second.primary_airport.code,
            stop=None,
            weekdays=_weekdays(f"{key}#{slot}", days_per_week),
            departure_minute=_departure_minute(key, slot, slots, long_haul),
            duration_minutes=_flight_minutes(distance),
            distance_km=distance,
        )


def _secondary_routes(origin: str, destination: str, airline: Airline, numbers: _FlightNumbers) -> Iterator[Route]:
    distance = distance_km(CITY_OF_AIRPORT[origin], CITY_OF_AIRPORT[destination])
    key = f"{origin}>{destination}"
    yield Route(
        flight_number=numbers.take(airline, connecting=False),
        airline=airline,
        origin=origin,
        destination=destination,
        stop=None,
        weekdays=_weekdays(key, 6),
        departure_minute=_departure_minute(key, 0, 1, distance > 6000),
        duration_minutes=_flight_minutes(distance),
        distance_km=distance,
    )


def _connecting_routes(
    origin: City, destination: City, direct_pairs: set[tuple[str, str]], numbers: _FlightNumbers
) -> Iterator[Route]:
    """One-stop services through the hubs with the smallest detour."""
    direct_distance = distance_km(origin, destination)
    has_direct = (origin.name, destination.name) in direct_pairs
    if has_direct and direct_distance < 2500:
        return
    hubs: list[tuple[float, City]] = []
    for hub in CITIES:
        if hub is origin or hub is destination:
            continue
        if (origin.name, hub.name) in direct_pairs and (hub.name, destination.name) in direct_pairs:
            detour = (distance_km(origin, hub) + distance_km(hub, destination)) / direct_distance
            if detour < 1.4 or (direct_distance < 1500 and detour < 2.5):
                hubs.append((detour, hub))
    hubs.sort(key=lambda candidate: (candidate[0], candidate[1].name))
    days_per_week = 1 if has_direct else 2
    for _, hub in hubs[:1]:
        key = f"{origin.name}>{hub.name}>{destination.name}"
        first_leg = distance_km(origin, hub)
        second_leg = distance_km(hub, destination)
        layover = noise.integer(14, 38, key, "layover") * 5
        airline = _carriers(origin, hub)[0]
        yield Route(
            flight_number=numbers.take(airline, connecting=True),
            airline=airline,
            origin=origin.primary_airport.code,
            destination=destination.primary_airport.code,
            stop=hub.primary_airport.code,
            weekdays=_weekdays(key, days_per_week),
            departure_minute=_departure_minute(key, 0, 1, first_leg > 6000),
            duration_minutes=_flight_minutes(first_leg) + layover + _flight_minutes(second_leg),
            distance_km=first_leg + second_leg,
        )


def _economy_base_fare(distance: float) -> float:
    # Short hops carry a high fixed cost per seat; long-haul fares grow slower per km.
    if distance < 1500:
        return 60 + 0.11 * distance
    return 225 + 0.07 * (distance - 1500)


_WEEKDAY_DEMAND = (1.05, 0.9, 0.9, 1.0, 1.15, 0.95, 1.18)  # Monday .. Sunday


def _season_demand(day: date) -> float:
    if day in (date(2026, 12, 24), date(2026, 12, 25), date(2027, 1, 1)):
        return 0.85  # few people fly on the holiday itself
    if date(2026, 12, 18) <= day <= date(2026, 12, 23) or date(2026, 12, 26) <= day <= date(2027, 1, 3):
        return 1.25
    return 1.0


def _advance_purchase(day: date) -> float:
    days_ahead = (day - FIRST_DAY).days
    if days_ahead < 7:
        return 1.3
    if days_ahead < 14:
        return 1.15
    if days_ahead < 21:
        return 1.05
    return 1.0


def _fares(route: Route, day: date) -> dict[str, int | None]:
    key = f"{route.flight_number}@{day.isoformat()}"
    hour = route.departure_minute // 60
    unsociable = 0.9 if hour < 7 or hour >= 21 else 1.0
    economy = (
        _economy_base_fare(route.distance_km)
        * _WEEKDAY_DEMAND[day.weekday()]
        * _season_demand(day)
        * _advance_purchase(day)
        * unsociable
        * (0.78 if route.airline.low_cost else 1.0)
        * (0.82 if route.stop else 1.0)
        * noise.between(0.92, 1.08, key, "fare")
    )
    fares: dict[str, int | None] = {
        "basic_economy": round(economy * 0.8),
        "economy": round(economy),
        "premium_economy": None,
        "business": None,
    }
    if not route.airline.low_cost:
        fares["premium_economy"] = round(economy * noise.between(1.6, 1.9, key, "premium"))
        business_multiple = 4.2 if route.distance_km > 3000 else 3.2
        fares["business"] = round(economy * business_multiple * noise.between(0.9, 1.1, key, "business"))
    return fares


def _seats(route: Route, day: date) -> dict[str, int | None]:
    key = f"{route.flight_number}@{day.isoformat()}"
    busy = _season_demand(day) > 1.0
    economy = noise.integer(0, 45 if busy else 90, key, "seats")
    if noise.chance(0.05, key, "sold-out"):
        economy = 0
    seats: dict[str, int | None] = {"economy": economy, "premium_economy": None, "business": None}
    if not route.airline.low_cost:
        seats["premium_economy"] = noise.integer(0, 16, key, "premium-seats")
        seats["business"] = noise.integer(0, 10, key, "business-seats")
    return seats


_FLIGHT_COLUMNS = (
    "flight_number",
    "airline",
    "origin",
    "destination",
    "stop",
    "date",
    "depart_time",
    "arrive_date",
    "arrive_time",
    "duration_min",
    "distance_km",
    "price_basic_economy",
    "price_economy",
    "price_premium_economy",
    "price_business",
    "seats_economy",
    "seats_premium_economy",
    "seats_business",
)


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)


def flight_rows(routes: Sequence[Route]) -> Iterator[list[str]]:
    for day in window_dates():
        day_rows: list[list[str]] = []
        for route in routes:
            if day.weekday() not in route.weekdays:
                continue
            departure = datetime.combine(day, datetime.min.time()) + timedelta(minutes=route.departure_minute)
            offset_change = (
                CITY_OF_AIRPORT[route.destination].utc_offset_minutes - CITY_OF_AIRPORT[route.origin].utc_offset_minutes
            )
            arrival = departure + timedelta(minutes=route.duration_minutes + offset_change)
            fares = _fares(route, day)
            seats = _seats(route, day)
            day_rows.append(
                [
                    route.flight_number,
                    route.airline.code,
                    route.origin,
                    route.destination,
                    route.stop or "",
                    day.isoformat(),
                    departure.strftime("%H:%M"),
                    arrival.date().isoformat(),
                    arrival.strftime("%H:%M"),
                    str(route.duration_minutes),
                    str(round(route.distance_km)),
                    *(_blank(fares[cabin]) for cabin in ("basic_economy", *_CABINS)),
                    *(_blank(seats[cabin]) for cabin in _CABINS),
                ]
            )
        day_rows.sort(key=lambda row: (row[2], row[3], row[6], row[0]))
        yield from day_rows


_HOTEL_BRANDS: dict[int, tuple[str, ...]] = {
    2: ("Bluebell Hostel", "Kestrel Inn", "Wayfarer Lodge", "Sparrow Rooms"),
    3: ("Parkline Hotel", "Cedar House", "Copperleaf Inn", "Nimbus Suites", "Juniper Hotel"),
    4: ("Harbourlight Hotel", "Alder & Stone", "The Lantern", "Meridia Hotel", "Oriel House"),
    5: ("The Grand Aurelia", "Palazzo Serene", "Ivory Crown", "The Belvedere Royal"),
}
_STAR_WEIGHTS = ((2, 0.15), (3, 0.35), (4, 0.35), (5, 0.15))
_BASE_NIGHTLY = {2: 85, 3: 130, 4: 210, 5: 380}
_HOTEL_COLUMNS = (
    "hotel_id",
    "name",
    "city",
    "neighbourhood",
    "stars",
    "rating",
    "nightly_price",
    "rooms_available",
    "amenities",
    "check_in_time",
    "check_out_time",
    "cancellation_policy",
)


def _weighted_stars(key: str) -> int:
    draw = noise.unit(key, "stars")
    for stars, weight in _STAR_WEIGHTS:
        if draw < weight:
            return stars
        draw -= weight
    return 5


def _amenities(city: City, neighbourhood: str, stars: int, key: str) -> list[str]:
    warm = max(city.jan_high_c, city.jul_high_c) >= 27
    offered = ["wifi"]
    candidates = (
        ("breakfast", 0.35 + 0.1 * stars),
        ("gym", 0.2 * stars),
        ("pool", (0.2 + 0.12 * stars) if warm else 0.05 * stars),
        ("spa", 0.0 if stars < 4 else 0.25 * (stars - 2)),
        ("restaurant", 0.2 * stars),
        ("parking", 0.45),
        ("pet_friendly", 0.25),
        ("airport_shuttle", 0.9 if "Airport" in neighbourhood or neighbourhood == "O'Hare" else 0.1),
    )
    offered.extend(name for name, probability in candidates if noise.chance(probability, key, name))
    return offered


def hotel_rows() -> Iterator[list[str]]:
    for city in CITIES:
        count = {3: 10, 2: 8, 1: 6}[city.importance]
        used_names: set[str] = set()
        for index in range(count):
            key = f"hotel:{city.name}:{index}"
            neighbourhood = city.neighbourhoods[index % len(city.neighbourhoods)]
            stars = _weighted_stars(key)
            brands = _HOTEL_BRANDS[stars]
            first_brand = noise.integer(0, len(brands) - 1, key, "brand")
            name = ""
            for attempt in range(len(brands)):
                name = f"{brands[(first_brand + attempt) % len(brands)]} {neighbourhood}"
                if name not in used_names:
                    break
            used_names.add(name)
            rating = min(9.8, max(5.5, 5.9 + 0.6 * stars + noise.between(-0.8, 0.9, key, "rating")))
            price = _BASE_NIGHTLY[stars] * city.cost_index * noise.between(0.85, 1.2, key, "price")
            rooms = (
                noise.integer(1, 2, key, "rooms")
                if noise.chance(0.1, key, "scarce")
                else noise.integer(4, 30, key, "rooms")
            )
            policy_draw = noise.unit(key, "policy")
            if stars <= 3 and policy_draw < 0.35:
                policy = "non_refundable"
            elif policy_draw < 0.65:
                policy = "flexible"
            else:
                policy = "moderate"
            yield [
                f"H-{city.primary_airport.code}-{index + 1:02d}",
                name,
                city.name,
                neighbourhood,
                str(stars),
                f"{rating:.1f}",
                str(round(price)),
                str(rooms),
                ";".join(_amenities(city, neighbourhood, stars, key)),
                ("14:00", "15:00", "15:00", "16:00")[noise.integer(0, 3, key, "check-in")],
                ("10:00", "11:00", "11:00", "12:00")[noise.integer(0, 3, key, "check-out")],
                policy,
            ]


_CAR_COMPANIES = (("Roadrunner Rentals", 1.0), ("Metro Car Hire", 0.95), ("Summit Auto", 1.12), ("Budgetwise", 0.85))
_CAR_CLASSES = (
    ("economy", "Toyota Yaris or similar", 5, 38),
    ("compact", "Volkswagen Golf or similar", 5, 45),
    ("midsize", "Toyota Camry or similar", 5, 58),
    ("suv", "Toyota RAV4 or similar", 5, 75),
    ("minivan", "Chrysler Pacifica or similar", 7, 92),
    ("convertible", "Ford Mustang Convertible or similar", 4, 98),
    ("luxury", "BMW 5 Series or similar", 5, 135),
)
_CAR_COLUMNS = (
    "car_id",
    "company",
    "city",
    "pickup_airport",
    "car_class",
    "model",
    "seats",
    "transmission",
    "daily_price",
    "units_available",
    "mileage",
)


def car_rows() -> Iterator[list[str]]:
    for city in CITIES:
        companies = _CAR_COMPANIES[: city.importance + 1]
        index = 0
        for company, company_price in companies:
            for car_class, model, seats, base_price in _CAR_CLASSES:
                key = f"car:{city.name}:{company}:{car_class}"
                if car_class not in ("economy", "compact") and not noise.chance(0.6, key, "offered"):
                    continue
                index += 1
                manual = city.region != "north_america" and car_class in ("economy", "compact")
                price = base_price * city.cost_index**0.5 * company_price * noise.between(0.9, 1.12, key, "price")
                units = 0 if noise.chance(0.08, key, "sold-out") else noise.integer(1, 12, key, "units")
                yield [
                    f"C-{city.primary_airport.code}-{index:02d}",
                    company,
                    city.name,
                    city.primary_airport.code,
                    car_class,
                    model,
                    str(seats),
                    "manual" if manual else "automatic",
                    str(round(price)),
                    str(units),
                    "unlimited" if noise.chance(0.7, key, "mileage") else "250 km/day",
                ]


_AIRPORT_COLUMNS = ("code", "name", "city", "country", "timezone", "utc_offset", "latitude", "longitude")


def airport_rows() -> Iterator[list[str]]:
    for city in CITIES:
        hours, minutes = divmod(abs(city.utc_offset_minutes), 60)
        sign = "-" if city.utc_offset_minutes < 0 else "+"
        for airport in city.airports:
            yield [
                airport.code,
                airport.name,
                city.name,
                city.country,
                city.timezone,
                f"{sign}{hours:02d}:{minutes:02d}",
                f"{city.latitude:.2f}",
                f"{city.longitude:.2f}",
            ]


def airline_rows() -> Iterator[list[str]]:
    for airline in AIRLINES:
        yield [airline.code, airline.name, "yes" if airline.low_cost else "no", ";".join(airline.hubs)]


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def generate(directory: Path = DATA_DIR) -> list[Path]:
    """Write every catalogue file into `directory` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "airports.csv": (_AIRPORT_COLUMNS, airport_rows()),
        "airlines.csv": (("code", "name", "low_cost", "hubs"), airline_rows()),
        "flights.csv": (_FLIGHT_COLUMNS, flight_rows(build_routes())),
        "hotels.csv": (_HOTEL_COLUMNS, hotel_rows()),
        "cars.csv": (_CAR_COLUMNS, car_rows()),
    }
    written = []
    for name, (header, rows) in files.items():
        path = directory / name
        _write_csv(path, header, rows)
        written.append(path)
    return written


def main(argv: Sequence[str] = ()) -> None:
    directory = Path(argv[0]) if argv else DATA_DIR
    for path in generate(directory):
        print(f"{path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
