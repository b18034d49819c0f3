"""The calendar of the travel world: a fixed 'now', the 60-day booking window, and date parsing."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from .errors import InvalidRequestError

FIRST_DAY = date(2026, 12, 1)
WINDOW_DAYS = 60
LAST_DAY = FIRST_DAY + timedelta(days=WINDOW_DAYS - 1)
# Every world starts at the same moment so that "tomorrow", fares and
# cancellation deadlines mean the same thing in every run of an eval.
DEFAULT_NOW = datetime(2026, 12, 1, 8, 0)

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def window_dates() -> list[date]:
    return [FIRST_DAY + timedelta(days=offset) for offset in range(WINDOW_DAYS)]


def parse_day(value: date | str, field: str = "date") -> date:
    """A date from a `date` or a YYYY-MM-DD string; other spellings get an error naming the likely date."""
    if isinstance(value, date):
        return value
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidRequestError(f"{field} {value!r} is not a real calendar date.") from None
    guesses = _guesses(text)
    hint = f" Did you mean {' or '.join(guess.isoformat() for guess in guesses)}?" if guesses else ""
    raise InvalidRequestError(
        f"{field} must be written YYYY-MM-DD (for example {FIRST_DAY.isoformat()}), not {value!r}.{hint}"
    )


def _guesses(text: str) -> list[date]:
    """Dates the text could mean, in the booking window's years, for the error message."""
    guesses: list[date] = []
    numbers = [int(part) for part in re.findall(r"\d+", text)]
    month_names = [index + 1 for index, name in enumerate(_MONTHS) if name in text.lower()]
    candidates: list[tuple[int, int, int | None]] = []  # (month, day, year)
    year = next((number for number in numbers if number > 31), None)
    small = [number for number in numbers if number <= 31]
    if month_names and small:
        candidates.append((month_names[0], small[0], year))
    elif len(small) >= 2:
        candidates.append((small[0], small[1], year))  # US order
        candidates.append((small[1], small[0], year))  # day first
    for month, day, explicit_year in candidates:
        years = [explicit_year] if explicit_year else [FIRST_DAY.year, LAST_DAY.year]
        for candidate_year in years:
            try:
                guess = date(candidate_year if candidate_year >= 100 else 2000 + candidate_year, month, day)
            except ValueError:
                continue
            if (explicit_year or FIRST_DAY <= guess <= LAST_DAY) and guess not in guesses:
                guesses.append(guess)
    return guesses
