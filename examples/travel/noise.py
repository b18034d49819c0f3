"""Deterministic pseudo-random numbers keyed by strings.

The data generator and the weather model draw from keyed hashes instead of a
stateful RNG, so a value depends only on what it describes (a route, a city and
a day) and not on the order anything else was generated in. Adding a city then
changes nothing about the others.
"""

from __future__ import annotations

import hashlib


def unit(*key: object) -> float:
    """A uniform number in [0, 1) fixed by `key`."""
    digest = hashlib.blake2b("|".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def between(low: float, high: float, *key: object) -> float:
    """A uniform number in [low, high) fixed by `key`."""
    return low + (high - low) * unit(*key)


def integer(low: int, high: int, *key: object) -> int:
    """A uniform integer in [low, high] fixed by `key`."""
    return low + int(unit(*key) * (high - low + 1))


def chance(probability: float, *key: object) -> bool:
    """True with `probability`, fixed by `key`."""
    return unit(*key) < probability
