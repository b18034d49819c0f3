"""The agent the worker tests run in `retinue worker` processes: `--agent worker_agents:booker`.

Its workdir is `$JOURNAL_TEST_WORKDIR` (a worker passes no deps). A run's prompt is "book ITEM": the model
asks for `book(ITEM)`, then answers "booked ITEM". Every model request served is a line "PROMPT TURN" of
WORKDIR/served.log and every booking a line "book ITEM KEY" of WORKDIR/effects.log, written with O_APPEND
before the call returns, so that a kill -9 loses none. Booking again with the same key adds no line; a
booking takes `$JOURNAL_TEST_BOOK_SECONDS` (long, for a worker meant to be killed inside one).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from durable_scenarios import append_line, read_lines

from retinue import Agent, IdempotencyKey, tool
from retinue.messages import AssistantMessage, ModelRequest, ModelResponse, ToolCall, UserMessage
from retinue.models.base import TextSink
from retinue.testing.scripted import Reply, ScriptedModel


def _prompt(request: ModelRequest) -> str:
    return next(str(message.content) for message in request.messages if isinstance(message, UserMessage))


def _turn(request: ModelRequest) -> int:
    return sum(isinstance(message, AssistantMessage) for message in request.messages)


def _reply(request: ModelRequest) -> Reply:
    item = _prompt(request).removeprefix("book ")
    return ToolCall("c0", "book", {"item": item}) if _turn(request) == 0 else f"booked {item}"


class ServedLog(ScriptedModel):
    def __init__(self, served: Path) -> None:
        super().__init__(_reply, name="booker-model", latency=0.02)
        self.served = served

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        response = await super().request(request, on_text)
        append_line(self.served, f"{_prompt(request)} {_turn(request)}")
        return response


def booker() -> Agent[Any]:
    workdir = Path(os.environ["JOURNAL_TEST_WORKDIR"])
    book_seconds = float(os.environ.get("JOURNAL_TEST_BOOK_SECONDS", "0.05"))

    @tool(effect="write", idempotent=True)
    async def book(item: str, key: IdempotencyKey) -> str:
        """Book an item; booking it again with the same key changes nothing.

        Args:
            item: What to book.
        """
        effects = workdir / "effects.log"
        if not any(line.endswith(f" {key}") for line in read_lines(effects)):
            append_line(effects, f"book {item} {key}")
        await asyncio.sleep(book_seconds)
        return f"booked {item}"

    return Agent("booker", model=ServedLog(workdir / "served.log"), tools=[book])
