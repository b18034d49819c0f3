"""Weather as a pure function of city and date.

Each city's typical January and July highs and wetness set a seasonal curve;
hashed noise, smoothed over neighbouring days so that weather comes in spells
rather than flipping daily, makes each day distinct. Variability grows with
latitude, as it does in real climates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from . import noise
from .places import City

# Day of year when highs peak in the north (late July) and bottom out (late January).
_SEASON_PEAK_DAY = 200


@dataclass(frozen=True, slots=True)
class Weather:
    city: str
    date: date
    condition: str
    high_c: int
    low_c: int
    precipitation_chance: int  # percent

    @property
    def is_wet(self) -> bool:
        return self.condition in WET_CONDITIONS


WET_CONDITIONS = frozenset({"showers", "rain", "thunderstorms", "snow"})


def _seasonal(day: date, january: float, july: float) -> float:
    """Interpolate between January and July values along a cosine year."""
    phase = 2 * math.pi * (day.timetuple().tm_yday - _SEASON_PEAK_DAY) / 365.25
    return (january + july) / 2 + (july - january) / 2 * math.cos(phase)


def _spell(city: City, day: date, channel: str) -> float:
    """Noise in [-1, 1] averaged over three days so neighbouring days resemble each other."""
    ordinal = day.toordinal()
    samples = [noise.unit(city.name, ordinal + offset, channel) for offset in (-1, 0, 0, 1)]
    return (sum(samples) / len(samples)) * 2 - 1


def weather_for(city: City, day: date) -> Weather:
    """The (fixed) weather in `city` on `day`."""
    temperature_swing = 2.0 + abs(city.latitude) / 12
    high = _seasonal(day, city.jan_high_c, city.jul_high_c) + temperature_swing * 1.6 * _spell(city, day, "temp")
    wetness = _seasonal(day, city.jan_wetness, city.jul_wetness)
    wet_signal = wetness + 0.45 * _spell(city, day, "wet") + 0.15 * (noise.unit(city.name, day, "shower") - 0.5)
    precipitation = max(0, min(100, round(wet_signal * 100)))
    # Clear nights cool more than cloudy ones.
    diurnal_range = 4 + 4 * (1 - precipitation / 100) + noise.between(0, 2, city.name, day, "range")
    high_c = round(high)
    low_c = round(high - diurnal_range)
    return Weather(
        city=city.name,
        date=day,
        condition=_condition(precipitation, high_c),
        high_c=high_c,
        low_c=low_c,
        precipitation_chance=precipitation,
    )


def _condition(precipitation: int, high_c: int) -> str:
    if precipitation >= 60:
        if high_c <= 1:
            return "snow"
        return "thunderstorms" if high_c >= 28 else "rain"
    if precipitation >= 45:
        return "snow" if high_c <= 0 else "showers"
    if precipitation >= 30:
        return "cloudy"
    if precipitation >= 15:
        return "partly cloudy"
    return "sunny"
