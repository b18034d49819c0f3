"""The travellers of a world: who they are, how they pay, who may book for whom, and the trips they already have.

The roster has a fixed shape, so eval tasks can rely on "the traveller with
little credit left" or "the assistant allowed to book for an executive", while
the seed picks names, home airports, balances and existing trips.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from .errors import TravelError
from .places import CITY_OF_AIRPORT, fold
from .timeline import FIRST_DAY

if TYPE_CHECKING:
    from .world import TravelWorld


@dataclass(frozen=True, slots=True)
class Persona:
    """The shape of one traveller; the seed fills in the rest."""

    tier: str
    card_credit: tuple[int, int]  # range of remaining card credit, USD
    voucher: int | None  # travel voucher value, USD
    points: int | None  # rewards points (100 points = 1 USD)
    loyalty_programs: int
    # Trips booked before the conversation starts, as "flight:<cabin>", "hotel:<policy>" or "car".
    existing: tuple[str, ...] = ()


PERSONAS: tuple[Persona, ...] = (
    Persona("platinum", (8000, 15000), None, 250_000, 2, ("flight:business", "hotel:flexible")),
    Persona("gold", (5000, 9000), 400, None, 1, ("flight:economy", "hotel:flexible", "car")),
    Persona("silver", (600, 900), None, None, 1),
    Persona("none", (3000, 6000), 150, None, 0, ("flight:basic_economy",)),
    Persona("gold", (4000, 8000), None, 60_000, 1, ("hotel:non_refundable",)),
    Persona("none", (2500, 5000), None, None, 0),
    Persona("silver", (3000, 7000), 250, None, 1, ("flight:economy",)),
    Persona("none", (1500, 3000), None, None, 0),
    Persona("platinum", (10000, 20000), None, 400_000, 3, ("flight:premium_economy", "car")),
    Persona("none", (2000, 4000), 75, None, 0),
    Persona("gold", (5000, 9000), None, 120_000, 2, ("hotel:moderate",)),
    Persona("silver", (3000, 6000), None, None, 1, ("car",)),
)

# (traveller, delegate) by persona position: the delegate may book and cancel
# for the traveller. 6 is the executive assistant of 1; 7 and 8 are partners.
DELEGATIONS: tuple[tuple[int, int], ...] = ((1, 6), (8, 7), (7, 8))

_FIRST_NAMES = (
    "Maya",
    "Daniel",
    "Priya",
    "Lucas",
    "Aisha",
    "Kenji",
    "Sofia",
    "Omar",
    "Elena",
    "Marcus",
    "Ingrid",
    "Tomás",
    "Hannah",
    "Wei",
    "Chiara",
    "Samuel",
    "Amara",
    "Nikolai",
    "Leila",
    "Jonas",
    "Mei",
    "Rafael",
    "Zoe",
    "Arjun",
)
_LAST_NAMES = (
    "Okafor",
    "Lindqvist",
    "Raman",
    "Moreau",
    "Haddad",
    "Tanaka",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Fernandes",
    "Brennan",
    "Castillo",
    "Whitfield",
    "Chen",
    "Abara",
    "Petrov",
    "Sato",
    "Gallagher",
    "Novak",
    "Mehta",
)
_HOME_AIRPORTS = ("SFO", "JFK", "LAX", "ORD", "SEA", "BOS", "ATL", "DEN", "MIA", "LHR", "CDG", "FRA", "YYZ", "NRT")
_CARD_BRANDS = ("Visa", "Mastercard", "Amex")


def traveller_id(position: int) -> str:
    """The id of the traveller at a persona position (1-based): T1001, T1002, ..."""
    return f"T{1000 + position}"


def insert_travellers(db: sqlite3.Connection, seed: int) -> None:
    rng = random.Random(f"roster:{seed}")
    # Distinct first and last names, so no two travellers can be confused by either.
    names = zip(rng.sample(_FIRST_NAMES, len(PERSONAS)), rng.sample(_LAST_NAMES, len(PERSONAS)), strict=True)
    for position, (persona, (first, last)) in enumerate(zip(PERSONAS, names, strict=True), start=1):
        tid = traveller_id(position)
        email = f"{fold(first)}.{fold(last)}@example.com"
        db.execute(
            "INSERT INTO travellers (id, name, email, home_airport, loyalty_tier) VALUES (?, ?, ?, ?, ?)",
            (tid, f"{first} {last}", email, rng.choice(_HOME_AIRPORTS), persona.tier),
        )
        for airline in sorted(rng.sample(("NS", "MA", "AP", "FG", "CQ"), persona.loyalty_programs)):
            db.execute(
                "INSERT INTO loyalty_programs (traveller_id, airline, member_number) VALUES (?, ?, ?)",
                (tid, airline, f"{airline}{rng.randrange(10**7, 10**8)}"),
            )
        last4 = f"{rng.randrange(10**4):04d}"
        brand = rng.choice(_CARD_BRANDS)
        credit = rng.randrange(persona.card_credit[0], persona.card_credit[1] + 1, 50)
        _insert_payment(db, f"pm-{tid}-card", tid, "card", f"{brand} ending {last4}", last4, credit)
        if persona.voucher is not None:
            _insert_payment(db, f"pm-{tid}-voucher", tid, "voucher", "Travel voucher", None, persona.voucher)
        if persona.points is not None:
            _insert_payment(db, f"pm-{tid}-points", tid, "points", "Retinue Rewards points", None, persona.points)
    for traveller, delegate in DELEGATIONS:
        db.execute(
            "INSERT INTO delegations (traveller_id, delegate_id) VALUES (?, ?)",
            (traveller_id(traveller), traveller_id(delegate)),
        )


def _insert_payment(
    db: sqlite3.Connection, pid: str, tid: str, kind: str, label: str, last4: str | None, balance: int
) -> None:
    db.execute(
        "INSERT INTO payment_methods (id, traveller_id, kind, label, last4, balance) VALUES (?, ?, ?, ?, ?, ?)",
        (pid, tid, kind, label, last4, balance),
    )


def book_existing_trips(world: TravelWorld, seed: int) -> None:
    """Book each persona's existing trips through the world's own rules, so they are valid bookings."""
    rng = random.Random(f"trips:{seed}")
    for position, persona in enumerate(PERSONAS, start=1):
        if persona.existing:
            _book_trip(world, traveller_id(position), persona.existing, rng)


def _book_trip(world: TravelWorld, tid: str, kinds: tuple[str, ...], rng: random.Random) -> None:
    traveller = world.get_traveller(tid)
    card = f"pm-{tid}-card"
    home = traveller.home_airport
    destinations = sorted(
        {
            destination
            for (origin, destination) in world.catalog.dates_by_route
            if origin == home and CITY_OF_AIRPORT[destination] is not CITY_OF_AIRPORT[home]
        }
    )
    # Try destinations and dates until every part of the trip can be booked.
    for _ in range(200):
        destination = rng.choice(destinations)
        city = CITY_OF_AIRPORT[destination].name
        day = FIRST_DAY + timedelta(days=rng.randrange(12, 45))
        if _try_trip(world, tid, card, home, destination, city, day, kinds, rng):
            return
    raise RuntimeError(f"could not place the existing trip of {tid}; the catalogue changed shape")


def _try_trip(
    world: TravelWorld,
    tid: str,
    card: str,
    home: str,
    destination: str,
    city: str,
    day: date,
    kinds: tuple[str, ...],
    rng: random.Random,
) -> bool:
    arrival = day
    plan: list[tuple[str, str]] = []
    for kind in kinds:
        category, _, variant = kind.partition(":")
        if category == "flight":
            offers = [
                offer for offer in world.search_flights(home, destination, day, cabin=variant) if not offer.flight.stop
            ]
            if not offers:
                return False
            plan.append(("flight", offers[0].flight.flight_number))
            arrival = offers[0].flight.arrive_date
        elif category == "hotel":
            hotels = [
                offer
                for offer in world.search_hotels(city, arrival, arrival + timedelta(days=3))
                if offer.hotel.cancellation_policy == variant
            ]
            if not hotels:
                return False
            plan.append(("hotel", rng.choice(hotels).hotel.hotel_id))
        else:
            cars = world.search_cars(city, arrival, arrival + timedelta(days=3), car_class="compact")
            if not cars:
                return False
            plan.append(("car", cars[0].car.car_id))
    try:
        for (category, item), kind in zip(plan, kinds, strict=True):
            if category == "flight":
                world.book_flight(tid, item, day, kind.partition(":")[2], card)
            elif category == "hotel":
                world.book_hotel(tid, item, arrival, arrival + timedelta(days=3), card)
            else:
                world.book_car(tid, item, arrival, arrival + timedelta(days=3), card)
    except TravelError as error:
        raise RuntimeError(f"an existing trip for {tid} broke a booking rule: {error}") from error
    return True
