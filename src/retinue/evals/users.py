"""The user side of an eval conversation: simulated by a model, or scripted for tests."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from ..agent import Agent
from ..events import EventSink
from ..messages import Message
from ..models.base import Model
from ..usage import Usage
from .tasks import EvalTask

STOP = "###STOP###"

USER_INSTRUCTIONS = """You are a customer talking to an assistant. Stay in character; you are not an assistant.
Your situation and goal (the assistant does not know it):
{instruction}

Write only your next message to the assistant, short and natural. Give details only when they are asked for or
needed. When your goal is done, or clearly cannot be done, reply with exactly {stop}"""

# Simulated users write the signal after a sentence ("Thanks, that's all. ###STOP###"), in any case, sometimes
# with spaces inside the hashes.
_STOP_SIGNAL = re.compile(r"#{3}\s*stop\s*#{3}", re.IGNORECASE)


class UserSimulationError(Exception):
    """The user could not take its turn (its model failed, hit a limit or wrote nothing): the episode fails."""


class User(Protocol):
    """The user side of an episode. A user played by a model may also have a `usage: Usage` attribute, what its
    own model calls cost so far: the harness reports it apart from the assistant's (`TrialResult.user_usage`)."""

    async def reply(self, assistant_message: str | None) -> str:
        """The user's next message; `None` asks for the opening.

        A message containing STOP ends the conversation; the words before it are the user's last. Raise (for
        example `UserSimulationError`) when the user cannot reply: the episode then fails, saying why.
        """
        ...


def split_at_stop(message: str) -> tuple[str, bool]:
    """The words of a user message before the stop signal, stripped, and whether the signal was there.

    What follows the signal is dropped: the conversation is over.
    """
    found = _STOP_SIGNAL.search(message)
    if found is None:
        return message.strip(), False
    return message[: found.start()].strip(), True


class SimulatedUser:
    """A user played by a model that knows the task's hidden instruction (USER_INSTRUCTIONS, visible here).

    When its model run does not give a message (an error, a limit, empty output), `reply` raises
    `UserSimulationError`: a user who said nothing has not said they are satisfied. Its runs' events go to
    `on_event` (a trace store, a cost meter) like the assistant's, and `usage` adds up what they cost.
    """

    def __init__(self, task: EvalTask, model: Model | str | None = None, *, on_event: EventSink | None = None) -> None:
        self.task = task
        self.agent: Agent[str] = Agent(
            name="simulated-user",
            instructions=USER_INSTRUCTIONS.format(instruction=task.instruction, stop=STOP),
            model=model,
        )
        self.on_event = on_event
        self.history: list[Message] = []
        self.usage = Usage()

    async def reply(self, assistant_message: str | None) -> str:
        if assistant_message is None and self.task.opening is not None:
            return self.task.opening
        prompt = assistant_message if assistant_message is not None else "(The assistant is waiting. Say hello.)"
        result = await self.agent.run(prompt, history=self.history, on_event=self.on_event)
        self.usage.add(result.total_usage)
        if not result.completed:
            raise UserSimulationError(f"the simulated user's run did not complete ({result.describe()})")
        message = (result.output or "").strip()
        if not message:
            raise UserSimulationError(f"the simulated user's model wrote an empty message ({result.describe()})")
        self.history = result.messages
        return message


class ScriptedUser:
    """A user who says the given lines in order, then stops."""

    def __init__(self, lines: Sequence[str]) -> None:
        if isinstance(lines, str):
            raise TypeError(f"ScriptedUser takes a list of lines, not one string: ScriptedUser([{lines!r}])")
        self.lines = list(lines)
        self.heard: list[str | None] = []

    async def reply(self, assistant_message: str | None) -> str:
        self.heard.append(assistant_message)
        return self.lines.pop(0) if self.lines else STOP
