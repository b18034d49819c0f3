"""What the trace store raises for its callers to fix or to show a person.

They are part of the tree drawn in `retinue.errors`; they live beside the store, as the sandbox's live beside
the sandbox, so that `retinue.errors` names only what every run can raise.
"""

from __future__ import annotations

from ..errors import RetinueError


class StoreError(RetinueError):
    """The trace store cannot do what was asked; the message says why and what to do, in one line."""


class UnusableStoreError(StoreError):
    """The store's file cannot be used: a directory, unreadable, damaged, or another program's database.

    Raised before anything is written to it, so a file that is not a trace
    store is left exactly as it was.
    """


class InterruptedRunError(StoreError):
    """The process that asked for an approval has ended, so nobody is left to act on an answer."""
