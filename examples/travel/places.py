"""The cities and airports of the travel world, and forgiving look-ups over them.

The table is hand-written real-world geography (coordinates, IATA codes,
neighbourhoods, typical December/July highs); everything else in the world is
derived from it deterministically.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from dataclasses import dataclass

from .errors import UnknownPlaceError


@dataclass(frozen=True, slots=True)
class Airport:
    code: str
    name: str
    city: str


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    region: str
    latitude: float
    longitude: float
    timezone: str
    # The world's dates all fall in December and January, when no city in the
    # table changes clocks, so one offset per city is exact for every date we
    # serve and keeps the data free of the host's tz database.
    utc_offset_minutes: int
    airports: tuple[Airport, ...]
    neighbourhoods: tuple[str, ...]
    # 1 = regional, 2 = major, 3 = global hub: drives route density and hotel count.
    importance: int
    # Relative price level of hotels and cars (New York = 1.6, Bangkok = 0.5).
    cost_index: float
    jan_high_c: float
    jul_high_c: float
    # Chance of a wet day in January and in July (0..1).
    jan_wetness: float
    jul_wetness: float
    aliases: tuple[str, ...] = ()

    @property
    def primary_airport(self) -> Airport:
        return self.airports[0]

    @property
    def airport_codes(self) -> tuple[str, ...]:
        return tuple(airport.code for airport in self.airports)


def _city(
    name: str,
    country: str,
    region: str,
    coordinates: tuple[float, float],
    timezone: str,
    utc_offset_hours: float,
    airports: list[tuple[str, str]],
    neighbourhoods: list[str],
    importance: int,
    cost_index: float,
    highs: tuple[float, float],
    wetness: tuple[float, float],
    aliases: tuple[str, ...] = (),
) -> City:
    return City(
        name=name,
        country=country,
        region=region,
        latitude=coordinates[0],
        longitude=coordinates[1],
        timezone=timezone,
        utc_offset_minutes=round(utc_offset_hours * 60),
        airports=tuple(Airport(code, airport_name, name) for code, airport_name in airports),
        neighbourhoods=tuple(neighbourhoods),
        importance=importance,
        cost_index=cost_index,
        jan_high_c=highs[0],
        jul_high_c=highs[1],
        jan_wetness=wetness[0],
        jul_wetness=wetness[1],
        aliases=aliases,
    )


# fmt: off
CITIES: tuple[City, ...] = (
    _city("San Francisco", "United States", "north_america", (37.62, -122.38), "America/Los_Angeles", -8,
          [("SFO", "San Francisco International")],
          ["Union Square", "SoMa", "Fisherman's Wharf", "Nob Hill", "Mission District", "SFO Airport"],
          3, 1.5, (14, 21), (0.35, 0.02), ("SF", "San Fran")),
    _city("Los Angeles", "United States", "north_america", (33.94, -118.41), "America/Los_Angeles", -8,
          [("LAX", "Los Angeles International")],
          ["Santa Monica", "Downtown LA", "Hollywood", "Beverly Hills", "LAX Airport"],
          3, 1.3, (20, 29), (0.15, 0.01), ("LA",)),
    _city("Seattle", "United States", "north_america", (47.45, -122.31), "America/Los_Angeles", -8,
          [("SEA", "Seattle-Tacoma International")],
          ["Downtown Seattle", "Capitol Hill", "Belltown", "South Lake Union"],
          2, 1.2, (8, 26), (0.6, 0.1)),
    _city("Las Vegas", "United States", "north_america", (36.08, -115.15), "America/Los_Angeles", -8,
          [("LAS", "Harry Reid International")],
          ["The Strip", "Downtown Las Vegas", "Paradise"],
          2, 0.9, (14, 40), (0.06, 0.05), ("Vegas",)),
    _city("Phoenix", "United States", "north_america", (33.43, -112.01), "America/Phoenix", -7,
          [("PHX", "Phoenix Sky Harbor International")],
          ["Downtown Phoenix", "Scottsdale", "Tempe"],
          1, 0.9, (19, 41), (0.1, 0.12)),
    _city("Denver", "United States", "north_america", (39.86, -104.67), "America/Denver", -7,
          [("DEN", "Denver International")],
          ["Downtown Denver", "LoDo", "Cherry Creek", "Denver Airport"],
          3, 1.0, (7, 32), (0.2, 0.3)),
    _city("Chicago", "United States", "north_america", (41.98, -87.90), "America/Chicago", -6,
          [("ORD", "O'Hare International"), ("MDW", "Midway International")],
          ["The Loop", "River North", "Magnificent Mile", "O'Hare"],
          3, 1.2, (1, 29), (0.4, 0.35)),
    _city("Dallas", "United States", "north_america", (32.90, -97.04), "America/Chicago", -6,
          [("DFW", "Dallas/Fort Worth International")],
          ["Uptown Dallas", "Downtown Dallas", "Deep Ellum"],
          2, 1.0, (14, 36), (0.25, 0.2)),
    _city("Houston", "United States", "north_america", (29.98, -95.34), "America/Chicago", -6,
          [("IAH", "George Bush Intercontinental")],
          ["Downtown Houston", "Galleria", "Midtown Houston"],
          2, 0.95, (18, 34), (0.3, 0.35)),
    _city("Atlanta", "United States", "north_america", (33.64, -84.43), "America/New_York", -5,
          [("ATL", "Hartsfield-Jackson Atlanta International")],
          ["Midtown Atlanta", "Downtown Atlanta", "Buckhead"],
          3, 1.0, (12, 32), (0.4, 0.4)),
    _city("Miami", "United States", "north_america", (25.80, -80.29), "America/New_York", -5,
          [("MIA", "Miami International")],
          ["South Beach", "Brickell", "Downtown Miami", "Coconut Grove"],
          3, 1.3, (25, 32), (0.2, 0.55)),
    _city("New York", "United States", "north_america", (40.64, -73.78), "America/New_York", -5,
          [("JFK", "John F. Kennedy International"), ("LGA", "LaGuardia"), ("EWR", "Newark Liberty International")],
          ["Midtown Manhattan", "Lower Manhattan", "Times Square", "Upper West Side", "Brooklyn"],
          3, 1.6, (5, 29), (0.35, 0.35), ("NYC", "New York City", "Manhattan")),
    _city("Boston", "United States", "north_america", (42.36, -71.01), "America/New_York", -5,
          [("BOS", "Logan International")],
          ["Back Bay", "Seaport", "Beacon Hill", "Downtown Boston"],
          2, 1.4, (3, 28), (0.4, 0.3)),
    _city("Washington", "United States", "north_america", (38.95, -77.46), "America/New_York", -5,
          [("IAD", "Washington Dulles International"), ("DCA", "Ronald Reagan Washington National")],
          ["Georgetown", "Capitol Hill", "Dupont Circle", "Downtown DC"],
          2, 1.3, (7, 31), (0.35, 0.35), ("Washington DC", "Washington D.C.", "DC")),
    _city("Honolulu", "United States", "north_america", (21.32, -157.92), "Pacific/Honolulu", -10,
          [("HNL", "Daniel K. Inouye International")],
          ["Waikiki", "Downtown Honolulu", "Ala Moana"],
          1, 1.4, (27, 31), (0.35, 0.2), ("Hawaii", "Oahu")),
    _city("Toronto", "Canada", "north_america", (43.68, -79.63), "America/Toronto", -5,
          [("YYZ", "Toronto Pearson International")],
          ["Downtown Toronto", "Yorkville", "Entertainment District"],
          2, 1.1, (-1, 27), (0.45, 0.3)),
    _city("Vancouver", "Canada", "north_america", (49.19, -123.18), "America/Vancouver", -8,
          [("YVR", "Vancouver International")],
          ["Downtown Vancouver", "Gastown", "Yaletown"],
          2, 1.1, (6, 22), (0.65, 0.1)),
    _city("Mexico City", "Mexico", "latin_america", (19.44, -99.07), "America/Mexico_City", -6,
          [("MEX", "Benito Juárez International")],
          ["Polanco", "Roma Norte", "Condesa", "Centro Histórico"],
          2, 0.6, (22, 24), (0.05, 0.6), ("CDMX", "Ciudad de Mexico")),
    _city("São Paulo", "Brazil", "latin_america", (-23.43, -46.47), "America/Sao_Paulo", -3,
          [("GRU", "São Paulo/Guarulhos International")],
          ["Jardins", "Vila Madalena", "Avenida Paulista", "Itaim Bibi"],
          2, 0.7, (28, 22), (0.6, 0.15), ("Sao Paulo",)),
    _city("London", "United Kingdom", "europe", (51.47, -0.45), "Europe/London", 0,
          [("LHR", "Heathrow"), ("LGW", "Gatwick")],
          ["Covent Garden", "Kensington", "Shoreditch", "Westminster", "Canary Wharf"],
          3, 1.5, (8, 23), (0.5, 0.35)),
    _city("Paris", "France", "europe", (49.01, 2.55), "Europe/Paris", 1,
          [("CDG", "Charles de Gaulle"), ("ORY", "Orly")],
          ["Le Marais", "Saint-Germain-des-Prés", "Montmartre", "Champs-Élysées", "Latin Quarter"],
          3, 1.4, (7, 25), (0.45, 0.3)),
    _city("Amsterdam", "Netherlands", "europe", (52.31, 4.76), "Europe/Amsterdam", 1,
          [("AMS", "Amsterdam Schiphol")],
          ["Jordaan", "Canal Ring", "De Pijp", "Centrum"],
          2, 1.3, (6, 22), (0.55, 0.35)),
    _city("Frankfurt", "Germany", "europe", (50.04, 8.56), "Europe/Berlin", 1,
          [("FRA", "Frankfurt am Main")],
          ["Innenstadt", "Sachsenhausen", "Westend", "Bahnhofsviertel"],
          3, 1.1, (5, 25), (0.45, 0.35)),
    _city("Madrid", "Spain", "europe", (40.47, -3.57), "Europe/Madrid", 1,
          [("MAD", "Adolfo Suárez Madrid-Barajas")],
          ["Sol", "Salamanca", "Malasaña", "Retiro"],
          2, 1.0, (11, 32), (0.3, 0.05)),
    _city("Rome", "Italy", "europe", (41.80, 12.25), "Europe/Rome", 1,
          [("FCO", "Leonardo da Vinci-Fiumicino")],
          ["Centro Storico", "Trastevere", "Monti", "Prati"],
          2, 1.1, (13, 31), (0.4, 0.08), ("Roma",)),
    _city("Dublin", "Ireland", "europe", (53.42, -6.27), "Europe/Dublin", 0,
          [("DUB", "Dublin Airport")],
          ["Temple Bar", "Ballsbridge", "Docklands", "St Stephen's Green"],
          2, 1.2, (8, 19), (0.6, 0.45)),
    _city("Reykjavik", "Iceland", "europe", (63.99, -22.62), "Atlantic/Reykjavik", 0,
          [("KEF", "Keflavík International")],
          ["Miðborg", "Laugavegur", "Old Harbour"],
          1, 1.4, (2, 14), (0.6, 0.45), ("Reykjavík",)),
    _city("Istanbul", "Türkiye", "middle_east", (41.26, 28.74), "Europe/Istanbul", 3,
          [("IST", "Istanbul Airport")],
          ["Sultanahmet", "Beyoğlu", "Beşiktaş"],
          2, 0.8, (10, 29), (0.5, 0.1)),
    _city("Dubai", "United Arab Emirates", "middle_east", (25.25, 55.36), "Asia/Dubai", 4,
          [("DXB", "Dubai International")],
          ["Downtown Dubai", "Dubai Marina", "Deira", "Jumeirah"],
          3, 1.2, (24, 41), (0.08, 0.01)),
    _city("Cape Town", "South Africa", "africa", (-33.97, 18.60), "Africa/Johannesburg", 2,
          [("CPT", "Cape Town International")],
          ["V&A Waterfront", "City Bowl", "Camps Bay", "Sea Point"],
          1, 0.7, (27, 18), (0.1, 0.5)),
    _city("Tokyo", "Japan", "asia_pacific", (35.77, 140.39), "Asia/Tokyo", 9,
          [("NRT", "Narita International"), ("HND", "Haneda")],
          ["Shinjuku", "Shibuya", "Ginza", "Asakusa", "Roppongi"],
          3, 1.3, (10, 30), (0.15, 0.45)),
    _city("Seoul", "South Korea", "asia_pacific", (37.46, 126.44), "Asia/Seoul", 9,
          [("ICN", "Incheon International")],
          ["Myeongdong", "Gangnam", "Hongdae", "Itaewon"],
          2, 1.0, (2, 29), (0.2, 0.6)),
    _city("Hong Kong", "Hong Kong", "asia_pacific", (22.31, 113.91), "Asia/Hong_Kong", 8,
          [("HKG", "Hong Kong International")],
          ["Central", "Tsim Sha Tsui", "Causeway Bay", "Wan Chai"],
          2, 1.3, (20, 31), (0.1, 0.6)),
    _city("Singapore", "Singapore", "asia_pacific", (1.36, 103.99), "Asia/Singapore", 8,
          [("SIN", "Changi")],
          ["Marina Bay", "Orchard Road", "Chinatown", "Sentosa"],
          3, 1.3, (30, 31), (0.6, 0.5)),
    _city("Bangkok", "Thailand", "asia_pacific", (13.69, 100.75), "Asia/Bangkok", 7,
          [("BKK", "Suvarnabhumi")],
          ["Sukhumvit", "Silom", "Riverside", "Siam"],
          2, 0.5, (32, 33), (0.05, 0.6)),
    _city("Sydney", "Australia", "asia_pacific", (-33.95, 151.18), "Australia/Sydney", 11,
          [("SYD", "Sydney Kingsford Smith")],
          ["Circular Quay", "Darling Harbour", "Surry Hills", "Bondi"],
          2, 1.2, (26, 17), (0.35, 0.35)),
)
# fmt: on

CITIES_BY_NAME: dict[str, City] = {city.name: city for city in CITIES}
AIRPORTS: dict[str, Airport] = {airport.code: airport for city in CITIES for airport in city.airports}
CITY_OF_AIRPORT: dict[str, City] = {airport.code: city for city in CITIES for airport in city.airports}


def fold(text: str) -> str:
    """Lower-case, accent-free, whitespace-collapsed form used to compare names."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.replace(".", " ").replace(",", " ").lower().split())


def _build_name_index() -> dict[str, City]:
    index: dict[str, City] = {}
    for city in CITIES:
        for name in (city.name, *city.aliases):
            index[fold(name)] = city
    return index


_CITY_NAMES: dict[str, City] = _build_name_index()


def describe_city(city: City) -> str:
    return f"{city.name} ({', '.join(city.airport_codes)})"


def suggest_cities(text: str, limit: int = 3) -> list[City]:
    """Cities whose name, alias or airport code is closest to `text`."""
    folded = fold(text)
    candidates = list(_CITY_NAMES) + [code.lower() for code in AIRPORTS]
    matches = difflib.get_close_matches(folded, candidates, n=limit * 2, cutoff=0.6)
    suggestions: list[City] = []
    for match in matches:
        city = _CITY_NAMES.get(match) or CITY_OF_AIRPORT[match.upper()]
        if city not in suggestions:
            suggestions.append(city)
    return suggestions[:limit]


def _unknown(text: str, kind: str) -> UnknownPlaceError:
    suggestions = suggest_cities(text)
    message = f"No {kind} matches {text!r}."
    if suggestions:
        message += f" Did you mean {' or '.join(describe_city(city) for city in suggestions)}?"
    else:
        message += " Use a city name such as 'New York' or an IATA airport code such as 'JFK'."
    return UnknownPlaceError(message)


# IATA's codes for a city's airports together, which models use where a city is asked for: the 1.5B's flights
# specialist searched SEA -> TYO for Tokyo.
METRO_CODES = {
    "CHI": "Chicago",
    "WAS": "Washington",
    "YTO": "Toronto",
    "SAO": "São Paulo",
    "LON": "London",
    "PAR": "Paris",
    "ROM": "Rome",
    "TYO": "Tokyo",
    "SEL": "Seoul",
}


def resolve_city(text: str) -> City:
    """The city named by a city name, alias, any of its airport codes or its metro code (case-insensitive)."""
    folded = fold(text)
    if folded.upper() in CITY_OF_AIRPORT:
        return CITY_OF_AIRPORT[folded.upper()]
    if folded.upper() in METRO_CODES:
        return _CITY_NAMES[fold(METRO_CODES[folded.upper()])]
    if folded in _CITY_NAMES:
        return _CITY_NAMES[folded]
    # Models often qualify a city ("Paris, France", "London UK"); accept a known
    # name followed by its country or a short country abbreviation.
    for name, city in _CITY_NAMES.items():
        qualifier = folded.removeprefix(name + " ")
        if qualifier != folded and (qualifier == fold(city.country) or len(qualifier) <= 3):
            return city
    raise _unknown(text, "city")


def resolve_airports(text: str) -> tuple[str, ...]:
    """Airport codes meant by `text`: one code if it is a code, every airport of the city if it is a city."""
    folded = fold(text)
    if folded.upper() in AIRPORTS:
        return (folded.upper(),)
    try:
        return resolve_city(text).airport_codes
    except UnknownPlaceError:
        raise _unknown(text, "airport or city") from None


def distance_km(first: City, second: City) -> float:
    """Great-circle distance between two cities' primary airports."""
    lat1, lon1, lat2, lon2 = map(math.radians, (first.latitude, first.longitude, second.latitude, second.longitude))
    haversine = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(haversine))
