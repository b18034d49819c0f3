"""A tool can end the conversation: raise `EndEpisode` from it (a hand-off to a human, a closed case).

    @tool
    def transfer_to_human(summary: str) -> str:
        '''Hand the customer to a human agent, with a summary of the case.'''
        handoffs.append(summary)
        raise EndEpisode(f"handed to a human: {summary}")

Raised, it stops the whole agent tree at once, the way Ctrl-C inside a tool does:
no model call is made after it, at any depth (a specialist or a clone calling the
tool stops its caller too), and the run ends "cancelled". What the tool did
before raising stays done. In an eval, `run_episode` then asks the user for
nothing more and grades the episode as it stands; outside an eval the run simply
ends there.

One exception to "at once": a script's host function (the scripting architecture)
hands every exception back to the script, so there the assistant's run goes on to
its answer, and the episode ends after it.
"""

from __future__ import annotations

from contextvars import ContextVar

from ..errors import RunInterrupted


class EndEpisode(RunInterrupted):
    """Raise inside a tool to end the conversation after what the tool did; `reason` is shown with the result."""

    def __init__(self, reason: str = "a tool ended the conversation") -> None:
        super().__init__(reason)
        self.reason = reason
        endings = _episode_endings.get()
        if endings is not None:
            # The loop keeps only the text of a tool's failure; the episode learns of the ending here. Tool calls
            # run in tasks and threads that copy the episode's context, so they append to its one list.
            endings.append(self)


_episode_endings: ContextVar[list[EndEpisode] | None] = ContextVar("retinue_episode_endings", default=None)
