"""Whether what the assistant said holds a required fact, after normalising both texts.

A fact is a price, a flight number, a confirmation code. How it is written varies
("$23,553", "23553 dollars", "USD 23,553.00"), so both the fact and the
assistant's words are normalised the same way before looking for one in the
other. `normalise` is the whole rule; an `Episode` can replace it (or the whole
`contains` test) for an application with other conventions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# A thousands separator: a comma, an apostrophe (1'234) or a thin or no-break space, between a digit and a group
# of exactly three. An ordinary space is not one: "room 1 234" is two numbers.
_THOUSANDS = re.compile(r"(?<=\d)[,'\u2009\u202f\u00a0](?=\d{3}(?!\d))")
_ZERO_CENTS = re.compile(r"(?<=\d)\.0+(?!\d)")  # 23553.00 is 23553
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """`text` in the form facts are compared in.

    Unicode compatibility forms folded (NFKC), case folded, currency symbols removed, thousands separators
    removed, zero decimals dropped, and every run of whitespace made one space:
    `normalise("Total: $23,553.00")` is `"total: 23553"`.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    without_currency = "".join(char for char in folded if unicodedata.category(char) != "Sc")
    plain = _ZERO_CENTS.sub("", _THOUSANDS.sub("", without_currency))
    return _SPACES.sub(" ", plain).strip()


def contains_fact(said: str, fact: str, normalise: Callable[[str], str] = normalise) -> bool:
    """Whether `fact` appears in `said`, both normalised.

    A fact that starts or ends with a digit must not run on into more digits: "463" is not found in "1463",
    nor "$12" in "$120".
    """
    wanted = normalise(fact)
    if not wanted:
        raise ValueError(f"the required fact {fact!r} is empty once normalised; give the text the answer must hold")
    before = r"(?<!\d)" if wanted[0].isdigit() else ""
    after = r"(?!\d)" if wanted[-1].isdigit() else ""
    return re.search(before + re.escape(wanted) + after, normalise(said)) is not None
