"""The one protocol every model implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from ..messages import ModelRequest, ModelResponse

TextSink = Callable[[str], None]


@runtime_checkable
class Model(Protocol):
    """A language model that answers a `ModelRequest`.

    `model_id` is `provider:model` (for example `anthropic:claude-sonnet-4-5`);
    it keys the price table. Traces name the model by `model_spec()`, which adds
    the server of a model at a custom base URL.

    When `on_text` is given the provider streams and calls it with each piece of
    answer text as it arrives; the returned response is complete either way.
    Providers raise `retinue.errors.ModelError` subclasses for failures that
    retrying did not fix.

    A model that keeps something open between requests (the HTTP models keep
    pooled connections) may also have `async def aclose(self) -> None`, which
    releases what it holds in the running event loop. The model stays usable:
    a later request, in this loop or another, opens what it needs again. It is
    not a member of the protocol, so that a model without one is still a
    `Model`; callers close any model with `await close_model(model)`.
    """

    @property
    def model_id(self) -> str: ...

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse: ...


def model_spec(model: Model) -> str:
    """The model string that names `model` in traces and resolves back to it for replays.

    That is `model_id`, unless the model talks to a server of the user's
    choosing: then its `spec` (`openai:qwen2.5@http://127.0.0.1:8080/v1`) keeps
    the server, so a replay goes back to it rather than to the public provider.
    """
    spec = getattr(model, "spec", None)
    return spec if isinstance(spec, str) and spec else model.model_id


async def close_model(model: Model) -> None:
    """Release what `model` holds open in the running event loop, if it has an `aclose`; any model may be passed."""
    aclose: Callable[[], Awaitable[None]] | None = getattr(model, "aclose", None)
    if aclose is not None:
        await aclose()
