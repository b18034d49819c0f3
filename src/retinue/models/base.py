"""The one protocol every model implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..messages import ModelRequest, ModelResponse

TextSink = Callable[[str], None]


@runtime_checkable
class Model(Protocol):
    """A language model that answers a `ModelRequest`.

    `model_id` is `provider:model` (for example `anthropic:claude-sonnet-4-5`);
    it keys the price table and names the model in traces.

    When `on_text` is given the provider streams and calls it with each piece of
    answer text as it arrives; the returned response is complete either way.
    Providers raise `retinue.errors.ModelError` subclasses for failures that
    retrying did not fix.
    """

    @property
    def model_id(self) -> str: ...

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse: ...
