"""How many tokens a model can read and write in one call, from `context_windows.json`.

Like prices, windows are data: a new model is a one-line change to the table.
A model object that knows its own window (a local model loaded with a given
`n_ctx`) says so through a `context_window` attribute, which wins over the
table because it is what that instance will actually accept.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from .base import Model
from .pricing import without_snapshot_suffix


@cache
def _window_table() -> tuple[dict[str, int], tuple[tuple[str, int], ...]]:
    raw = json.loads((Path(__file__).parent / "context_windows.json").read_text())
    exact: dict[str, int] = {}
    prefixes: list[tuple[str, int]] = []
    for key, tokens in raw.items():
        if key.startswith("_"):
            continue
        if key.endswith("*"):
            prefixes.append((key[:-1], int(tokens)))
        else:
            exact[key] = int(tokens)
    # Longest prefix first, so "gpt-5-chat*" is tried before "gpt-5*".
    prefixes.sort(key=lambda entry: len(entry[0]), reverse=True)
    return exact, tuple(prefixes)


def context_window_for(model_id: str) -> int | None:
    """The context window of `provider:model` in tokens, or None when the table does not know it.

    Dated snapshots (`claude-sonnet-4-5-20250929`, `gpt-4o-2024-08-06`) and
    family members (`gpt-4.1-mini`) resolve to their listed entry.
    """
    exact, prefixes = _window_table()
    for candidate in (model_id, without_snapshot_suffix(model_id)):
        if candidate in exact:
            return exact[candidate]
    for prefix, tokens in prefixes:
        if model_id.startswith(prefix):
            return tokens
    return None


def context_window_of(model: Model) -> int | None:
    """The window of this model instance: its own `context_window` attribute if it has one, else the table's."""
    own = getattr(model, "context_window", None)
    if isinstance(own, int) and not isinstance(own, bool) and own > 0:
        return own
    return context_window_for(model.model_id)
