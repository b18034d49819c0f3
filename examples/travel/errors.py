"""Every refusal the travel world can give, in one place.

Messages are written for whoever made the request (a person or a model): they
say what is wrong and what to do instead.
"""

from __future__ import annotations


class TravelError(Exception):
    """Base class: the travel world refused a request."""


class NotFoundError(TravelError, LookupError):
    """A city, airport, flight, hotel, car, traveller, payment method or booking does not exist."""


class UnknownPlaceError(NotFoundError):
    """Text names no city or airport in the world; the message suggests close matches."""


class InvalidRequestError(TravelError, ValueError):
    """An argument is malformed or contradictory (a bad date, an unknown cabin, check-out before check-in)."""


class BookingWindowError(TravelError):
    """The dates are in the past or beyond the 60-day booking window."""


class SoldOutError(TravelError):
    """Not enough seats, rooms or cars are left."""


class PaymentError(TravelError):
    """The payment method cannot be used for this booking."""


class InsufficientFundsError(PaymentError):
    """The payment method's balance or remaining credit is below the price."""


class NotAuthorisedError(TravelError):
    """The requester may not act for this traveller."""


class CancellationRefusedError(TravelError):
    """The booking's fare rules or timing do not allow a cancellation."""
