"""A whole provider in one file, as the template for a new one: Acme's completion API (made up for the tests).

The API: `POST {base_url}/v1/complete` with `{"model", "system", "prompt"}` and
the key as a bearer token; the answer is `{"id", "text", "usage": {"input_tokens",
"output_tokens"}}`. It has no tools and no streaming, which keeps the
template short; `retinue/models/openai.py` is the same shape with both.

A provider needs three things, all here: its API declared once (`ProviderApi`:
where it is, which key goes to it), a model class that uses it, and a
registration that makes "acme:<model>" resolve to that class. Importing this
module is all it takes to make the prefix known.
"""

from __future__ import annotations

from typing import Any

from retinue.errors import ResponseFormatError
from retinue.messages import AssistantMessage, ModelRequest, ModelResponse, UserMessage
from retinue.models.base import TextSink
from retinue.models.http import post_json
from retinue.models.provider_api import HttpModel, ProviderApi
from retinue.models.resolve import Provider, register_provider
from retinue.usage import Usage

ACME_BASE_URL = "https://api.acme.example"

ACME_API = ProviderApi(
    name="Acme",
    prefix="acme",
    base_url=ACME_BASE_URL,
    key_env_var="ACME_API_KEY",
    compatible_key_env_var="ACME_COMPATIBLE_API_KEY",
    key_headers=lambda key: {"Authorization": f"Bearer {key}"},
    compatible_server_name="Acme-compatible server",
)

register_provider(
    Provider(
        prefix=ACME_API.prefix,
        build=lambda name, base_url: AcmeModel(name, base_url=base_url or ACME_BASE_URL),
        forms=("'acme:<model>' (e.g. 'acme:rocket-1')",),
        bare_names=("rocket-",),
        key_env_var=ACME_API.key_env_var,
        default_spec="acme:rocket-1",
        takes_base_url=True,
    )
)


class AcmeModel(HttpModel):
    """A model behind Acme's completion API; keys, price and retries work as for `OpenAIModel`."""

    provider_api = ACME_API
    api_path = "/v1/complete"

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        self._api.require_key(type(self).__name__)
        prompt = "\n\n".join(message.content for message in request.messages if isinstance(message, UserMessage))
        data: Any = await post_json(
            self._api.endpoint, {"model": self.model, "system": request.instructions, "prompt": prompt}
        )
        try:
            text = data["text"]
            usage = Usage(
                input_tokens=data["usage"]["input_tokens"], output_tokens=data["usage"]["output_tokens"], requests=1
            )
        except (KeyError, TypeError) as exc:
            raise ResponseFormatError(f"Acme answered without {exc}", provider="Acme") from None
        usage.cost_usd = self._api.cost(usage)
        if on_text is not None and text:
            on_text(text)  # the API does not stream: the whole answer is one piece
        return ModelResponse(
            message=AssistantMessage(text=text), usage=usage, model=self._api.model_id, response_id=data.get("id")
        )
