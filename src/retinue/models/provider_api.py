"""What every model behind a provider's HTTP API sets up the same way: its endpoint, its key and its price.

A provider file declares its API once, as a `ProviderApi`; each model instance
then calls `ProviderApi.for_model` and keeps the `ModelApi` it returns. Keys
follow one rule for every provider: the provider's own variable (say
OPENAI_API_KEY) is only ever sent to the provider's own host. A server at any
other base URL (a gateway, a proxy, a compatible server) gets the key passed
in code or the provider's compatible-server variable, and may need none.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, TypedDict
from urllib.parse import urlsplit

from ..errors import AuthenticationError
from ..redact import register_secret
from ..usage import Usage
from .http import Endpoint
from .pricing import Price, price_for
from .resolve import OptionParser, count_option, seconds_option

DEFAULT_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_BACKOFF = 0.5

HTTP_MODEL_OPTIONS: Mapping[str, OptionParser] = MappingProxyType(
    {"timeout": seconds_option, "connect_timeout": seconds_option, "max_retries": count_option}
)
"""The options an HTTP provider's model strings take (`openai:gpt-4.1?timeout=30&max_retries=5`): the
`HttpModel` keyword arguments of the same names. A provider passes them as its `Provider.options`."""


@dataclass(frozen=True, slots=True)
class ProviderApi:
    """A provider's HTTP API, as its provider file declares it.

    `name` is how errors name the provider ("OpenAI"); model ids are
    `<prefix>:<model>`. `key_headers` turns a key into the headers that carry
    it, and `headers` are sent with every request (an API version, say).
    Errors name a server at another base URL `compatible_server_name` and its
    host ("OpenAI-compatible server 127.0.0.1:8080"), or `name` when that is None.
    """

    name: str
    prefix: str
    base_url: str
    key_env_var: str
    compatible_key_env_var: str
    key_headers: Callable[[str], Mapping[str, str]]
    headers: Mapping[str, str] = field(default_factory=dict)
    compatible_server_name: str | None = None

    def for_model(
        self,
        model: str,
        *,
        base_url: str,
        path: str,
        api_key: str | None,
        price: Price | None,
        headers: Mapping[str, str] | None,
        max_retries: int,
        retry_backoff: float,
        timeout: float,
        connect_timeout: float,
    ) -> ModelApi:
        """The endpoint (at `base_url` + `path`), key and price of `model`; nothing is sent yet.

        `price` overrides the price table, so a self-hosted model can be costed too.
        """
        base_url = base_url.rstrip("/")
        is_provider_host = urlsplit(base_url).hostname == urlsplit(self.base_url).hostname
        key_env_var = self.key_env_var if is_provider_host else self.compatible_key_env_var
        key = api_key if api_key is not None else os.environ.get(key_env_var)
        if key:
            # A key from code has no secret-named variable to be found by; it must be masked all the same.
            register_secret(key)
        request_headers = {"Content-Type": "application/json", **self.headers}
        if key:
            request_headers.update(self.key_headers(key))
        request_headers.update(headers or {})
        server = self.name
        if not is_provider_host and self.compatible_server_name is not None:
            server = f"{self.compatible_server_name} {urlsplit(base_url).netloc}"
        model_id = f"{self.prefix}:{model}"
        return ModelApi(
            api=self,
            model=model,
            model_id=model_id,
            base_url=base_url,
            is_provider_host=is_provider_host,
            # A gateway or compatible server may hold the key itself, or need none.
            missing_key=not key and is_provider_host,
            price=price if price is not None else price_for(model_id),
            endpoint=Endpoint(
                provider=server,
                url=base_url + path,
                headers=request_headers,
                key_env_var=key_env_var,
                api_key=key,
                max_retries=max_retries,
                retry_backoff=retry_backoff,
                timeout=timeout,
                connect_timeout=connect_timeout,
            ),
        )


@dataclass(frozen=True, slots=True)
class ModelApi:
    """One model's use of a provider's API: its endpoint, with the key inside, and its price.

    The key itself is kept only by the endpoint, which never shows it.
    """

    api: ProviderApi
    model: str
    model_id: str
    base_url: str
    is_provider_host: bool
    missing_key: bool
    price: Price | None
    endpoint: Endpoint

    @property
    def spec(self) -> str:
        """The model string that resolves to this model again, its server included when it is not the provider's."""
        return self.model_id if self.base_url == self.api.base_url else f"{self.model_id}@{self.base_url}"

    def describe(self, model_class: str) -> str:
        """The repr of a model of class `model_class` using this API."""
        if self.base_url == self.api.base_url:
            return f"{model_class}({self.model!r})"
        return f"{model_class}({self.model!r}, base_url={self.base_url!r})"

    def require_key(self, model_class: str) -> None:
        """Fail before any request when the provider's own host would refuse it for want of a key."""
        if self.missing_key:
            raise AuthenticationError(
                f"No {self.api.name} API key: set the {self.api.key_env_var} environment variable or pass "
                f"api_key=... to {model_class}.",
                provider=self.api.name,
            )

    def cost(self, usage: Usage) -> float | None:
        """Dollars for `usage` at this model's price, or None when the price is unknown."""
        return None if self.price is None else self.price.cost(usage)


class HttpModelOptions(TypedDict, total=False):
    """`HttpModel`'s keyword arguments, for a provider's model class that adds its own."""

    api_key: str | None
    base_url: str | None
    price: Price | None
    max_retries: int
    timeout: float
    connect_timeout: float
    headers: dict[str, str] | None
    retry_backoff: float


class HttpModel:
    """What every model over a provider's HTTP API sets up and shows the same way.

    A provider's model class names its `provider_api` and the `api_path` it posts to, and writes only its
    `request`. The constructor builds the endpoint, key and price (`base_url` defaults to the provider's).

    `timeout` is the seconds allowed for a whole answer, or for the first and between two parts of a
    streamed one; `connect_timeout` the seconds allowed to open a connection (at most `timeout`). Failures
    worth retrying (429, 5xx, timeouts, dropped connections) are retried `max_retries` times, waiting about
    `retry_backoff` seconds, doubling each time, unless the server says how long to wait. A model string
    sets the first three as options: `openai:gpt-4.1?timeout=30&connect_timeout=3&max_retries=5`.
    """

    provider_api: ClassVar[ProviderApi]
    api_path: ClassVar[str]

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        price: Price | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        headers: dict[str, str] | None = None,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
    ) -> None:
        self.model = model
        self._api = self.provider_api.for_model(
            model,
            base_url=base_url or self.provider_api.base_url,
            path=self.api_path,
            api_key=api_key,
            price=price,
            headers=headers,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
        self.base_url = self._api.base_url
        # What the model string needs to say so that it resolves to a model that waits and retries alike.
        chosen = (
            ("timeout", timeout, DEFAULT_TIMEOUT),
            ("connect_timeout", connect_timeout, DEFAULT_CONNECT_TIMEOUT),
            ("max_retries", max_retries, DEFAULT_MAX_RETRIES),
        )
        self._spec_options = "&".join(f"{name}={value:g}" for name, value, default in chosen if value != default)

    @property
    def price(self) -> Price | None:
        """What this model charges: the given price, else the price table's; None when unknown."""
        return self._api.price

    @property
    def model_id(self) -> str:
        return self._api.model_id

    @property
    def spec(self) -> str:
        """The model string that resolves to this model again, its server and its options included."""
        return f"{self._api.spec}?{self._spec_options}" if self._spec_options else self._api.spec

    def __repr__(self) -> str:
        return self._api.describe(type(self).__name__)

    async def aclose(self) -> None:
        """Close the running event loop's HTTP connections, which every HTTP model in that loop shares."""
        from .http import close_sessions

        await close_sessions()
