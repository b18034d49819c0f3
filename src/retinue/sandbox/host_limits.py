"""How much one sandbox may ask of the host API, and what is left of it.

Every sandbox's host-API server runs on the host's event loop, next to every
other sandbox's and the agents' own work, so one sandbox must not be able to
buy all of it. It gets a budget of calls and of request bytes that refills
over time (a token bucket: a burst is allowed, then a steady rate), and a
connection that sends no request for a while is closed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

_MIB = 1024 * 1024

MAX_REQUEST_BYTES = _MIB
"""The longest request line the host reads; the module in the sandbox refuses longer calls itself."""


@dataclass(frozen=True)
class HostApiLimits:
    """What one sandbox may ask of the host API.

    Every request read counts one call and its length in bytes, whether it
    is then served or refused. ``idle_timeout_seconds`` is how long a
    connection may wait between requests (or take to send one) before the
    host closes it; the module in the sandbox drops its idle connections
    well before that, so a well-behaved process never notices.
    """

    # A tight loop of small calls (~0.3 ms each) keeps going for several seconds
    # before it is refused, and megabytes of data pass at once; at its steady
    # rate a sandbox costs the host's event loop a small share of one core.
    calls_per_second: float = 2_000
    call_burst: int = 10_000
    request_bytes_per_second: float = 8 * _MIB
    request_bytes_burst: int = 64 * _MIB
    idle_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        for name in ("calls_per_second", "request_bytes_per_second", "idle_timeout_seconds"):
            value = getattr(self, name)
            # `not value > 0` so that NaN is refused too.
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0 or math.isinf(value):
                raise ValueError(f"HostApiLimits.{name} must be a positive, finite number, got {value!r}")
        for name in ("call_burst", "request_bytes_burst"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HostApiLimits.{name} must be a positive int, got {value!r}")
        if self.request_bytes_burst < MAX_REQUEST_BYTES:
            # Otherwise a request the module allows could never be served.
            raise ValueError(
                f"HostApiLimits.request_bytes_burst must be at least one request ({MAX_REQUEST_BYTES:,} bytes), "
                f"got {self.request_bytes_burst!r}"
            )

    def describe(self) -> str:
        return (
            f"at most {self.calls_per_second:,g} calls and {_size(self.request_bytes_per_second)} of requests "
            f"a second, in bursts of up to {self.call_burst:,} calls and {_size(self.request_bytes_burst)}"
        )


DEFAULT_HOST_API_LIMITS = HostApiLimits()


class _TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` a second; a draw may leave it in debt."""

    __slots__ = ("_capacity", "_level", "_rate", "_updated")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self._capacity = capacity
        self._rate = rate
        self._level = capacity
        self._updated = now

    def _refill(self, now: float) -> None:
        self._level = min(self._capacity, self._level + (now - self._updated) * self._rate)
        self._updated = now

    def draw(self, amount: float, now: float) -> bool:
        """Take ``amount``; True if the bucket held it."""
        self._refill(now)
        covered = self._level >= amount
        self._level -= amount
        return covered

    def seconds_until_holding(self, amount: float, now: float) -> float:
        self._refill(now)
        return max(0.0, (min(amount, self._capacity) - self._level) / self._rate)


class HostApiBudget:
    """What is left of one sandbox's ``HostApiLimits``: requests draw from it, time refills it."""

    def __init__(self, limits: HostApiLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        now = clock()
        self._calls = _TokenBucket(limits.call_burst, limits.calls_per_second, now)
        self._bytes = _TokenBucket(limits.request_bytes_burst, limits.request_bytes_per_second, now)

    def draw(self, request_bytes: int) -> bool:
        """Charge one request of ``request_bytes``; True if the budget covered it, False if it is overdrawn.

        A refused request is charged all the same: the host read it, and a
        sandbox that keeps sending must not keep costing the host.
        """
        now = self._clock()
        # Both are charged, even when the first already refuses.
        calls_covered = self._calls.draw(1, now)
        bytes_covered = self._bytes.draw(request_bytes, now)
        return calls_covered and bytes_covered

    def seconds_until_covered(self, request_bytes: int) -> float:
        """How long until the budget could cover a request of ``request_bytes`` again."""
        now = self._clock()
        return max(self._calls.seconds_until_holding(1, now), self._bytes.seconds_until_holding(request_bytes, now))

    def refusal(self) -> str:
        return (
            f"this sandbox went over its host-API budget ({self.limits.describe()}), so this call was not run; "
            "it was held until the budget had room for it again and may be retried now. "
            "Fewer or smaller calls stay within the budget"
        )


def _size(count: float) -> str:
    return f"{count / _MIB:,g} MiB" if count >= _MIB else f"{count:,g} bytes"
