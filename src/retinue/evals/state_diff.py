"""How an end state differs from the expected one, as lines a person (or a reflecting model) can read.

States are JSON-like values: dicts of tables and settings, lists of rows. Dicts
are compared key by key; lists as bags of rows (order is reported only when it
is the only difference). A missing row and an unexpected one that share most of
their fields are shown as one row whose fields differ, which is what a wrong
cabin or a wrong date looks like.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

MAX_LINES = 20
MAX_VALUE_CHARS = 300  # a travel booking row, whole


def diff_states(expected: Any, actual: Any, *, max_lines: int = MAX_LINES) -> list[str]:
    """The differences between `expected` and `actual`, one per line; empty when they are equal.

    At most `max_lines` lines; the last then says how many more differences there were.
    """
    lines: list[str] = []
    _diff(expected, actual, "", lines)
    if len(lines) > max_lines:
        hidden = len(lines) - (max_lines - 1)
        lines = [*lines[: max_lines - 1], f"... and {hidden} more differences"]
    return lines


def show(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """`value` as compact JSON, cut to `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, default=repr, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _diff(expected: Any, actual: Any, path: str, lines: list[str]) -> None:
    if expected == actual:
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        _diff_dicts(expected, actual, path, lines)
    elif isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        _diff_rows(list(expected), list(actual), path, lines)
    else:
        lines.append(f"{path or 'state'}: expected {show(expected)}, got {show(actual)}")


def _diff_dicts(expected: dict[Any, Any], actual: dict[Any, Any], path: str, lines: list[str]) -> None:
    for key in [*expected, *(key for key in actual if key not in expected)]:
        where = f"{path}.{key}" if path else str(key)
        if key not in actual:
            lines.append(f"{where}: missing (expected {show(expected[key])})")
        elif key not in expected:
            lines.append(f"{where}: unexpected (got {show(actual[key])})")
        else:
            _diff(expected[key], actual[key], where, lines)


def _diff_rows(expected: list[Any], actual: list[Any], path: str, lines: list[str]) -> None:
    where = path or "state"
    expected_keys = Counter(_canonical(row) for row in expected)
    actual_keys = Counter(_canonical(row) for row in actual)
    missing = _take(expected, expected_keys - actual_keys)
    unexpected = _take(actual, actual_keys - expected_keys)
    if not missing and not unexpected:
        lines.append(f"{where}: the same {_rows(len(expected))}, in a different order")
        return
    if len(expected) != len(actual):
        lines.append(f"{where}: expected {_rows(len(expected))}, found {len(actual)}")
    for row in missing:
        partner = _closest(row, unexpected)
        if partner is None:
            lines.append(f"{where}: missing row {show(row)}")
            continue
        unexpected.remove(partner)
        same = {key: value for key, value in row.items() if partner.get(key) == value}
        changes = "; ".join(
            f"{key}: expected {show(row.get(key), 60)}, got {show(partner.get(key), 60)}"
            for key in [*row, *(key for key in partner if key not in row)]
            if row.get(key) != partner.get(key) or (key in row) != (key in partner)
        )
        lines.append(f"{where}: row {show(same, 120)} differs: {changes}")
    lines.extend(f"{where}: unexpected row {show(row)}" for row in unexpected)


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count} rows"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _take(rows: list[Any], wanted: Counter[str]) -> list[Any]:
    """The rows counted in `wanted`, in their order (each as often as counted)."""
    left = Counter(wanted)
    taken = []
    for row in rows:
        key = _canonical(row)
        if left[key] > 0:
            left[key] -= 1
            taken.append(row)
    return taken


def _closest(row: Any, candidates: list[Any]) -> dict[Any, Any] | None:
    """The candidate row sharing the most fields with `row`, if it shares at least half of them."""
    if not isinstance(row, dict) or not row:
        return None
    best, best_shared = None, 0
    for candidate in candidates:
        if not isinstance(candidate, dict):
            continue
        shared = sum(1 for key, value in row.items() if key in candidate and candidate[key] == value)
        if shared > best_shared:
            best, best_shared = candidate, shared
    return best if best_shared * 2 >= len(row) else None
