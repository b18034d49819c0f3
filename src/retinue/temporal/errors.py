"""What `retinue.temporal` raises for its callers to fix.

Part of the tree drawn in `retinue.errors`; they live beside the Temporal integration, as the store's and the
sandbox's live beside theirs.

    TemporalRunError                a Temporal run cannot go on as set up
    ├── MissingBlobError            the blob store lacks what a run refers to
    └── ReportedError               the error a run ended with, as its worker reported it
"""

from __future__ import annotations

from ..errors import RetinueError


class TemporalRunError(RetinueError):
    """A Temporal run cannot go on as it is set up; the message says what to change."""


class MissingBlobError(TemporalRunError):
    """The blob store has no blob under a key a run refers to: workers and clients do not share one store."""


class ReportedError(TemporalRunError):
    """The error a run on Temporal ended with (`RunResult.error`), as its worker reported it: a type name and a message.

    The exception itself stayed in the worker; `type_name` says what it was.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


class ModelOutsideActivities(BaseException):
    """A model was about to be called inside the workflow itself, not in an activity.

    A BaseException, so that it passes the listener guard and the loop's tool-error handling and ends the run;
    the workflow then fails with its message. Never reaches the caller as such.
    """
