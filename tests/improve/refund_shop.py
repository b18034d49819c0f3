"""A small app to improve: a shop assistant that refunds orders, and a scripted model that obeys its text.

The scripted assistant does what its instructions say, literally, the way a small model does:
- told to give `amount_cents` "in cents", it converts the order's price correctly;
- given a table of "order X: N cents" lines, it uses the table for the orders listed there;
- otherwise it sends the price in dollars, which the refund tool takes as cents: a refund 100 times too small.

The seed instructions (BROKEN_INSTRUCTIONS) say "in dollars", so every task fails on its end state. With
MISLEADING_LOOKUP as the lookup tool's description, the assistant sends order numbers without their letter, and
every lookup fails with an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from retinue import Agent, tool
from retinue.evals import Episode, EvalTask
from retinue.messages import ModelRequest, ToolResultsMessage, UserMessage
from retinue.models.base import Model
from retinue.testing.scripted import Reply, call

PRICES = {"A1": 12.50, "A2": 7.25, "A3": 19.99, "A4": 4.10, "B1": 3.10, "B2": 55.00}

BROKEN_INSTRUCTIONS = (
    "You handle refunds for the shop. Look up the order, then refund its price: give amount_cents as the price in "
    "dollars."
)
FIXED_INSTRUCTIONS = (
    "You handle refunds for the shop. Look up the order, then refund its price: give amount_cents in cents, the "
    "price times 100 ($12.50 is 1250)."
)
LOOKUP_DESCRIPTION = "Look up an order: its price in dollars."
MISLEADING_LOOKUP = "Look up an order by its number, without the letter (for order A1, send 1)."


@dataclass
class Shop:
    refunds: list[dict[str, Any]] = field(default_factory=list)

    def assistant(
        self, model: Model | str | None, instructions: str = BROKEN_INSTRUCTIONS, lookup: str = LOOKUP_DESCRIPTION
    ) -> Agent[str]:
        @tool(effect="read", description=lookup)
        def lookup_order(order_id: str) -> str:
            """Look up an order.

            Args:
                order_id: The order's id.
            """
            if order_id not in PRICES:
                raise ValueError(f"no order {order_id!r}")
            return f"Order {order_id}: ${PRICES[order_id]:.2f}"

        @tool
        def refund(order_id: str, amount_cents: int) -> str:
            """Refund an order.

            Args:
                order_id: The order's id.
                amount_cents: How much to refund.
            """
            self.refunds.append({"order": order_id, "amount_cents": amount_cents})
            return f"Refunded {amount_cents} on order {order_id}."

        return Agent(name="shop", instructions=instructions, model=model, tools=[lookup_order, refund])


class RefundShop:
    """The app: one architecture, a refund task per order."""

    name = "shop"
    description = "Refunds orders."
    architectures: Sequence[str] = ("single",)
    example_prompt = "Please refund order A1."

    def __init__(self, instructions: str = BROKEN_INSTRUCTIONS, lookup: str = LOOKUP_DESCRIPTION) -> None:
        self.instructions = instructions
        self.lookup = lookup

    def eval_tasks(self) -> Sequence[EvalTask]:
        return [
            EvalTask(
                id=f"refund-{order}",
                instruction=f"You bought order {order} and want your money back.",
                opening=f"Please refund order {order}.",
                expected_state=[{"order": order, "amount_cents": round(PRICES[order] * 100)}],
                difficulty="easy",
            )
            for order in PRICES
        ]

    def episode(self, architecture: str, model: Model | str | None, task: EvalTask) -> Episode:
        shop = Shop()
        return Episode(shop.assistant(model, self.instructions, self.lookup), final_state=lambda: shop.refunds)


def obedient_assistant(request: ModelRequest) -> Reply:
    """The scripted assistant: look up the order as the tool's description says, refund it as the instructions say."""
    last = request.messages[-1]
    if isinstance(last, UserMessage):
        order = re.search(r"order (\w+)", last.content)
        order_id = order.group(1) if order else "?"
        [lookup] = [schema for schema in request.tools if schema.name == "lookup_order"]
        if "without the letter" in lookup.description:
            order_id = order_id.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return call("lookup_order", order_id=order_id)
    assert isinstance(last, ToolResultsMessage)
    result = last.results[0]
    if result.is_error:
        return "I could not find that order."
    if result.name == "lookup_order":
        found = re.match(r"Order (\w+): \$([\d.]+)", result.content)
        assert found is not None, result.content
        order, price = found.group(1), float(found.group(2))
        return call("refund", order_id=order, amount_cents=_amount(request.instructions, order, price))
    return "Your refund is on its way."


def _amount(instructions: str, order: str, price: float) -> int:
    if "in cents" in instructions:
        return round(price * 100)
    table = dict(re.findall(r"order (\w+): (\d+) cents", instructions))
    if order in table:
        return int(table[order])
    return int(price)


def reflection_prompt(request: ModelRequest) -> str:
    message = request.messages[-1]
    assert isinstance(message, UserMessage)
    return message.content


def current_text(prompt: str) -> str:
    """The text being rewritten: the first ``` block of GEPA's prompt."""
    found = re.search(r"```\n(.*?)\n```", prompt, re.DOTALL)
    assert found is not None
    return found.group(1)


def fixing_reflector(request: ModelRequest) -> Reply:
    """A reflection model that repairs a text, but only when what it reads shows what went wrong."""
    prompt = reflection_prompt(request)
    if "instructions of the agent `shop`" in prompt and "amount_cents: expected" in prompt:
        return f"The refunds are 100 times too small: the amounts were sent in dollars.\n```\n{FIXED_INSTRUCTIONS}\n```"
    if "the tool `lookup_order`" in prompt and "no order '1'" in prompt and "[FAILED]" in prompt:
        return f"The lookups sent the number without its letter.\n```\n{LOOKUP_DESCRIPTION}\n```"
    return f"```\n{current_text(prompt)}\n```"


def memorising_reflector(request: ModelRequest) -> Reply:
    """A reflection model that fits the train tasks only: it writes down each expected refund it is shown."""
    prompt = reflection_prompt(request)
    text = current_text(prompt)
    table = dict(re.findall(r"order (\w+): (\d+) cents", text))
    for order, cents in re.findall(r'row \{"order": "(\w+)"\} differs: amount_cents: expected (\d+)', prompt):
        table.setdefault(order, cents)
    lines = "\n".join(f"order {order}: {cents} cents" for order, cents in sorted(table.items()))
    return f"```\n{BROKEN_INSTRUCTIONS}\nRefund exactly:\n{lines}\n```"
