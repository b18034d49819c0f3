"""The committed catalogue: reproducible, realistic in shape, and small enough to commit."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

from retinue_travel.airlines import AIRLINES_BY_CODE
from retinue_travel.catalog import load_catalog
from retinue_travel.generate import DATA_DIR, generate
from retinue_travel.places import AIRPORTS, CITIES, CITIES_BY_NAME, CITY_OF_AIRPORT, City
from retinue_travel.timeline import FIRST_DAY, LAST_DAY, window_dates
from retinue_travel.weather import weather_for


def test_regenerating_yields_byte_identical_files(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert {path.name for path in written} == {"airports.csv", "airlines.csv", "flights.csv", "hotels.csv", "cars.csv"}
    for path in written:
        assert path.read_bytes() == (DATA_DIR / path.name).read_bytes(), f"{path.name} differs from the committed file"


def test_data_is_small_enough_to_commit() -> None:
    total = sum(path.stat().st_size for path in DATA_DIR.glob("*.csv"))
    assert total < 5_000_000
    assert (DATA_DIR / "flights.csv").stat().st_size < 4_500_000


def test_world_has_real_cities_and_airports() -> None:
    assert len(CITIES) >= 30
    for code in ("SFO", "JFK", "LGA", "EWR", "LAX", "ORD", "SEA", "BOS", "MIA", "DEN", "ATL", "LHR", "CDG", "NRT"):
        assert code in AIRPORTS
    assert CITY_OF_AIRPORT["EWR"] is CITIES_BY_NAME["New York"]
    assert CITIES_BY_NAME["Sydney"].utc_offset_minutes == 11 * 60  # summer time in December
    assert CITIES_BY_NAME["Phoenix"].utc_offset_minutes == -7 * 60


def test_flights_cover_the_window_with_direct_and_one_stop_service() -> None:
    catalog = load_catalog()
    days = {flight.date for flight in catalog.flights}
    assert min(days) == FIRST_DAY and max(days) == LAST_DAY and len(days) == 60
    one_stop = [flight for flight in catalog.flights if flight.stop]
    assert one_stop and all(flight.stop in AIRPORTS for flight in one_stop)
    assert all(flight.stop not in (flight.origin, flight.destination) for flight in one_stop)
    assert len({flight.airline for flight in catalog.flights}) >= 6
    # Main routes fly every day; minor ones only on some days.
    assert len(catalog.dates_by_route[("JFK", "LHR")]) == 60
    assert len(catalog.dates_by_route[("SEA", "FCO")]) < 30


def test_arrival_times_follow_duration_and_time_zones() -> None:
    for flight in load_catalog().flights[::97]:
        origin, destination = CITY_OF_AIRPORT[flight.origin], CITY_OF_AIRPORT[flight.destination]
        departure_utc = flight.departure - timedelta(minutes=origin.utc_offset_minutes)
        arrival_utc = flight.arrival - timedelta(minutes=destination.utc_offset_minutes)
        assert arrival_utc - departure_utc == timedelta(minutes=flight.duration_minutes)


def test_fares_are_ordered_by_cabin_and_low_cost_carriers_sell_economy_only() -> None:
    for flight in load_catalog().flights[::53]:
        fares = flight.fares
        assert fares["basic_economy"] < fares["economy"]
        if AIRLINES_BY_CODE[flight.airline].low_cost:
            assert set(fares) == {"basic_economy", "economy"}
            assert set(flight.seats) == {"economy"}
        else:
            assert fares["economy"] < fares["premium_economy"] < fares["business"]


def test_prices_vary_plausibly_with_distance_weekday_and_days_ahead() -> None:
    flights = [flight for flight in load_catalog().flights if flight.stop is None]
    short = [f.fares["economy"] for f in flights if f.distance_km < 1000]
    long = [f.fares["economy"] for f in flights if f.distance_km > 8000]
    assert statistics.median(long) > 3 * statistics.median(short)

    # Compare each flight with itself on Sundays and Tuesdays, away from the holidays and the last-minute week.
    fares: dict[tuple[str, int], list[int]] = defaultdict(list)
    for flight in flights:
        if flight.date >= date(2027, 1, 4) and flight.date.weekday() in (1, 6):
            fares[(flight.flight_number, flight.date.weekday())].append(flight.fares["economy"])
    sunday_over_tuesday = [
        statistics.mean(fares[(number, 6)]) / statistics.mean(fares[(number, 1)])
        for number, weekday in fares
        if weekday == 6 and (number, 1) in fares
    ]
    assert statistics.median(sunday_over_tuesday) > 1.15

    def median_fare(start: date, end: date) -> float:
        return statistics.median(f.fares["economy"] / f.distance_km for f in flights if start <= f.date <= end)

    # The first week (booked at the last minute) costs more per km than mid-January.
    assert median_fare(date(2026, 12, 1), date(2026, 12, 7)) > 1.15 * median_fare(date(2027, 1, 11), date(2027, 1, 24))


def test_hotels_and_cars_exist_in_every_city() -> None:
    catalog = load_catalog()
    for city in CITIES:
        in_city = catalog.hotels_by_city[city.name]
        assert len(in_city) >= 6
        assert {hotel.neighbourhood for hotel in in_city} <= set(city.neighbourhoods)
        assert len(catalog.cars_by_city[city.name]) >= 4
    hotels = list(catalog.hotels.values())
    assert {hotel.stars for hotel in hotels} == {2, 3, 4, 5}
    assert len({hotel.name for hotel in hotels}) == len(hotels)
    five_star = statistics.median(h.nightly_price for h in hotels if h.stars == 5)
    two_star = statistics.median(h.nightly_price for h in hotels if h.stars == 2)
    assert five_star > 3 * two_star
    assert {car.car_class for car in catalog.cars.values()} >= {"economy", "compact", "suv", "minivan"}


def test_csv_files_have_headers_a_script_can_use() -> None:
    with (DATA_DIR / "flights.csv").open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert datetime.strptime(f"{row['date']} {row['depart_time']}", "%Y-%m-%d %H:%M")
    assert row["price_economy"].isdigit()


def test_weather_is_deterministic_seasonal_and_local() -> None:
    singapore, chicago, seattle, phoenix = (
        CITIES_BY_NAME[name] for name in ("Singapore", "Chicago", "Seattle", "Phoenix")
    )
    day = date(2026, 12, 15)
    assert weather_for(singapore, day) == weather_for(singapore, day)

    def mean_high(city_name: str) -> float:
        return statistics.mean(weather_for(CITIES_BY_NAME[city_name], d).high_c for d in window_dates())

    assert mean_high("Singapore") > mean_high("Chicago") + 15
    assert mean_high("Sydney") > mean_high("London") + 10  # southern summer

    def wet_days(city: City) -> int:
        return sum(weather_for(city, d).is_wet for d in window_dates())

    assert wet_days(seattle) > wet_days(phoenix) + 20
    all_weather = [weather_for(city, d) for city in CITIES for d in window_dates()]
    assert {w.condition for w in all_weather} >= {"sunny", "rain", "snow", "cloudy"}
    assert all(0 <= w.precipitation_chance <= 100 and w.low_c < w.high_c for w in all_weather)
    assert any(weather_for(chicago, d).condition == "snow" for d in window_dates())
