"""The user side of an eval conversation: simulated by a model, or scripted for tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..agent import Agent
from ..messages import Message
from ..models.base import Model
from .tasks import EvalTask

STOP = "###STOP###"

USER_INSTRUCTIONS = """You are a customer talking to an assistant. Stay in character; you are not an assistant.
Your situation and goal (the assistant does not know it):
{instruction}

Write only your next message to the assistant, short and natural. Give details only when they are asked for or
needed. When your goal is done, or clearly cannot be done, reply with exactly {stop}"""


class User(Protocol):
    async def reply(self, assistant_message: str | None) -> str:
        """The user's next message; `None` asks for the opening. Return STOP to end the conversation."""
        ...


class SimulatedUser:
    """A user played by a model that knows the task's hidden instruction (USER_INSTRUCTIONS, visible here)."""

    def __init__(self, task: EvalTask, model: Model | str | None = None) -> None:
        self.task = task
        self.agent: Agent[str] = Agent(
            name="simulated-user",
            instructions=USER_INSTRUCTIONS.format(instruction=task.instruction, stop=STOP),
            model=model,
        )
        self.history: list[Message] = []

    async def reply(self, assistant_message: str | None) -> str:
        if assistant_message is None and self.task.opening is not None:
            return self.task.opening
        prompt = assistant_message if assistant_message is not None else "(The assistant is waiting. Say hello.)"
        result = await self.agent.run(prompt, history=self.history)
        self.history = result.messages
        return (result.output or STOP).strip()


class ScriptedUser:
    """A user who says the given lines in order, then stops."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        self.heard: list[str | None] = []

    async def reply(self, assistant_message: str | None) -> str:
        self.heard.append(assistant_message)
        return self.lines.pop(0) if self.lines else STOP
