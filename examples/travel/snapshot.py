"""Comparing world snapshots: what an agent changed, and how an end state differs from the expected one."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any


def _booking_key(booking: dict[str, Any]) -> str:
    # Bookings are plain JSON values; their canonical JSON is a hashable identity.
    return json.dumps(booking, sort_keys=True)


def _booking(key: str) -> dict[str, Any]:
    booking: dict[str, Any] = json.loads(key)
    return booking


def describe_booking(booking: dict[str, Any]) -> str:
    cabin = f" {booking['cabin']}" if booking.get("cabin") else ""
    return (
        f"{booking['status']} {booking['kind']} {booking['item']}{cabin} for {booking['traveller']} "
        f"(booked by {booking['booked_by']}) {booking['start']}..{booking['end']} x{booking['quantity']} "
        f"${booking['price']} via {booking['payment_method']}"
    )


def snapshot_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Bookings that appeared or disappeared and balances that moved between two snapshots of one world.

    A cancellation shows as a confirmed booking removed and the same booking,
    cancelled, added.
    """
    old = Counter(_booking_key(booking) for booking in before["bookings"])
    new = Counter(_booking_key(booking) for booking in after["bookings"])
    return {
        "added": [_booking(key) for key in (new - old).elements()],
        "removed": [_booking(key) for key in (old - new).elements()],
        "balances": {
            method: {"before": before["balances"].get(method), "after": balance}
            for method, balance in after["balances"].items()
            if before["balances"].get(method) != balance
        },
    }


def diff_snapshots(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Human-readable differences between an expected and an actual end state; empty when they match."""
    expected_bookings = Counter(_booking_key(booking) for booking in expected["bookings"])
    actual_bookings = Counter(_booking_key(booking) for booking in actual["bookings"])
    lines = [f"missing: {describe_booking(_booking(key))}" for key in (expected_bookings - actual_bookings).elements()]
    lines += [
        f"unexpected: {describe_booking(_booking(key))}" for key in (actual_bookings - expected_bookings).elements()
    ]
    for method in sorted(set(expected["balances"]) | set(actual["balances"])):
        want, got = expected["balances"].get(method), actual["balances"].get(method)
        if want != got:
            lines.append(f"balance of {method}: expected {want}, got {got}")
    return lines
