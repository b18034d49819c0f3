"""The airlines of the travel world (fictional carriers on real routes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Airline:
    code: str
    name: str
    # Low-cost carriers sell only economy (and basic economy) cabins.
    low_cost: bool
    regions: tuple[str, ...]
    hubs: tuple[str, ...]


AIRLINES: tuple[Airline, ...] = (
    Airline("NS", "Northstar Airlines", False, ("north_america",), ("ORD", "DEN", "SFO", "JFK", "ATL")),
    Airline("CQ", "Cascadia Air", False, ("north_america",), ("YVR", "YYZ")),
    Airline("SL", "Solaris Airlines", False, ("latin_america",), ("MEX", "GRU")),
    Airline("MA", "Meridian Airways", False, ("europe",), ("LHR", "CDG", "FRA", "AMS")),
    Airline("FG", "Falcon Gulf", False, ("middle_east", "africa"), ("DXB", "IST")),
    Airline("AP", "Aurora Pacific", False, ("asia_pacific",), ("NRT", "HND", "HKG", "SIN", "ICN")),
    Airline("BJ", "Bluejay Air", True, ("north_america", "latin_america"), ()),
    Airline("EB", "Eurobreeze", True, ("europe",), ()),
)

AIRLINES_BY_CODE: dict[str, Airline] = {airline.code: airline for airline in AIRLINES}
