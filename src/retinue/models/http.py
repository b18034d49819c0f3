"""The HTTP transport every provider shares: pooled sessions, retries, SSE.

Providers build their request bodies as plain dicts and hand them here. One
`aiohttp.ClientSession` per event loop keeps connections alive across every
agent in the process, so a request costs one `json.dumps`, one round trip on a
warm connection and one `json.loads`, which is what keeps a model call far
below a millisecond of client CPU.

The API key lives only inside an `Endpoint` (its `headers`, and the same headers
as sent); `Endpoint` has no field repr, and every message built from a
provider's answer (error bodies, in-stream errors, broken events) is scrubbed
of the key, and of every other secret `retinue.redact` knows, before it
reaches an exception or a log line.

aiohttp, and the standard library's HTTP helpers, are imported by the first
endpoint, session or retry that needs them, not by this module: every
provider module imports this one, and reading a provider's registration (to
list the valid model strings or choose the default model) must not pay for
them; aiohttp alone takes longer to import than the rest of retinue.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ModelError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseFormatError,
)
from ..redact import MASK, redact

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("retinue.models")

MAX_RETRY_AFTER_SECONDS = 60.0
"""A provider asking for a longer wait than this is told no: we fail at once
with its requested wait in the message, rather than stall an agent for minutes."""

MAX_BACKOFF_SECONDS = 8.0
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_BAD_REQUEST_STATUSES = frozenset({400, 404, 413, 422})
_MAX_DETAIL_CHARS = 600

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def shared_session() -> aiohttp.ClientSession:
    """The client session of the running event loop, created on first use.

    A session is bound to the loop it was created in, so each loop (the main
    one, or the short-lived loops of sync wrappers) gets its own.
    """
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        import aiohttp

        _forget_closed_loops()
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        # Not trust_env: aiohttp would then look up proxy and netrc settings in a thread on every
        # request, which doubles the client's CPU per call. Each Endpoint reads the proxy once instead.
        session = aiohttp.ClientSession(connector=connector, trust_env=False)
        _sessions[loop] = session
    return session


async def close_sessions() -> None:
    """Close the current event loop's session; call before the loop ends."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None and not session.closed:
        await session.close()


def _forget_closed_loops() -> None:
    # A loop closed without close_sessions() leaves its session behind;
    # it can no longer be closed properly, but it must not keep the loop alive.
    for loop in [loop for loop in _sessions if loop.is_closed()]:
        del _sessions[loop]


class Endpoint:
    """Where and how one model sends its requests.

    `provider` names the service in error messages ("OpenAI", "Anthropic");
    `key_env_var` is the variable a user sets to fix a rejected key.
    `timeout` bounds a whole answer, or the wait for each part of a streamed
    one; `connect_timeout` bounds opening a connection, and never exceeds
    `timeout`. A failure worth retrying is retried `max_retries` times.
    """

    __slots__ = (
        "_secret",
        "headers",
        "key_env_var",
        "max_retries",
        "provider",
        "proxy",
        "request_timeout",
        "retry_backoff",
        "sent_headers",
        "stream_idle_seconds",
        "stream_timeout",
        "target",
        "url",
    )

    def __init__(
        self,
        *,
        provider: str,
        url: str,
        headers: Mapping[str, str],
        key_env_var: str,
        api_key: str | None,
        max_retries: int,
        retry_backoff: float,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        _require_seconds("timeout", timeout)
        _require_seconds("connect_timeout", connect_timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number, 0 or more, not {max_retries!r}.")
        if not isinstance(retry_backoff, int | float) or not math.isfinite(retry_backoff) or retry_backoff < 0:
            raise ConfigurationError(f"retry_backoff must be a number of seconds, 0 or more, not {retry_backoff!r}.")
        import aiohttp
        import yarl
        from multidict import CIMultiDict

        self.provider = provider
        self.url = url
        self.headers = dict(headers)
        # What aiohttp would otherwise parse and convert again for every request: the URL, the headers.
        self.target = yarl.URL(url)
        self.sent_headers = CIMultiDict(self.headers)
        self.key_env_var = key_env_var
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        connect = min(timeout, connect_timeout)
        self.request_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect)
        # A stream may legitimately run for many minutes; what must not happen is a long wait for the first
        # event or between two. A read timeout cannot see that: keep-alives reset it, so post_stream keeps
        # its own clock, which only part of the answer moves.
        self.stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect)
        self.stream_idle_seconds = timeout
        self._secret = api_key
        self.proxy = proxy_for(url)

    def __repr__(self) -> str:
        return f"Endpoint(provider={self.provider!r}, url={self.url!r})"

    def at(self, url: str) -> Endpoint:
        """The same provider, key and retry policy, at another URL of its API."""
        import yarl

        other = copy.copy(self)
        other.url = url
        other.target = yarl.URL(url)
        other.proxy = proxy_for(url)
        return other

    def scrub(self, text: str) -> str:
        """`text` with the API key, should a server echo it, and any other known secret masked."""
        # The key itself first: it may be shorter than the redactor's minimum secret length.
        if self._secret and self._secret in text:
            text = text.replace(self._secret, MASK)
        return redact(text)


def _require_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a number of seconds above 0, not {value!r}.")


def proxy_for(url: str) -> str | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY (and NO_PROXY) name for `url`, as the official SDKs honour them."""
    import urllib.request

    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if urllib.request.proxy_bypass(host.split(":", 1)[0]):
        return None
    return urllib.request.getproxies().get(scheme)


_BODY_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps would build one a call


def encode_body(body: Mapping[str, Any]) -> bytes:
    return _BODY_ENCODER.encode(body).encode()


async def post_json(endpoint: Endpoint, body: Mapping[str, Any]) -> Any:
    """POST `body` and return the decoded JSON answer, retrying transient failures."""
    import aiohttp

    payload = encode_body(body)
    attempt = 0
    while True:
        try:
            async with shared_session().post(
                endpoint.target,
                data=payload,
                headers=endpoint.sent_headers,
                timeout=endpoint.request_timeout,
                proxy=endpoint.proxy,
            ) as response:
                raw = await response.read()
                if response.status < 300:
                    return decode_json(endpoint, raw)
                failure = classify_http_failure(endpoint, response.status, response.headers, raw)
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = _connection_failure(endpoint, exc)
        attempt = await _wait_before_retry(endpoint, failure, attempt)


class StreamError(Exception):
    """Raised by a stream consumer when the provider reports an error in-stream.

    `retryable` errors (overload, server error) are retried like a dropped
    connection, as long as no text has reached the caller yet.
    """

    def __init__(self, error: ModelError, *, retryable: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable


class StreamConsumer(Protocol):
    """Turns one attempt's server-sent events into a response.

    `text_delivered` becomes true once any text went to the caller's `on_text`:
    from then on a retry would repeat text, so a cut stream is an error.
    """

    @property
    def text_delivered(self) -> bool: ...

    def feed(self, event: str, data: str) -> bool:
        """Take one event: True when it was part of the answer, False for a keep-alive (such as a ping)."""
        ...

    def is_complete(self) -> bool: ...


ConsumerT = TypeVar("ConsumerT", bound=StreamConsumer)


async def post_stream(endpoint: Endpoint, body: Mapping[str, Any], new_consumer: Callable[[], ConsumerT]) -> ConsumerT:
    """POST `body` and feed the event stream to a fresh consumer per attempt.

    An attempt fails as timed out when `endpoint.stream_idle_seconds` pass without an event that is part of
    the answer, from the request on: keep-alive comments and pings do not count.
    """
    import aiohttp

    payload = encode_body(body)
    idle_seconds = endpoint.stream_idle_seconds
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        consumer = new_consumer()
        waiting = asyncio.timeout(idle_seconds)
        try:
            async with (
                waiting,
                shared_session().post(
                    endpoint.target,
                    data=payload,
                    headers=endpoint.sent_headers,
                    timeout=endpoint.stream_timeout,
                    proxy=endpoint.proxy,
                ) as response,
            ):
                if response.status >= 300:
                    raw = await response.read()
                    failure = classify_http_failure(endpoint, response.status, response.headers, raw)
                else:
                    _require_event_stream(endpoint, response)
                    parser = SSEParser()
                    async for chunk in response.content.iter_any():
                        for event, data in parser.feed(chunk):
                            if consumer.feed(event, data):
                                waiting.reschedule(loop.time() + idle_seconds)
                    if consumer.is_complete():
                        return consumer
                    failure = _Failure(
                        ProviderUnavailableError(
                            f"{endpoint.provider} ended the response stream before it was complete.",
                            provider=endpoint.provider,
                        ),
                        retryable=True,
                    )
        except StreamError as exc:
            # The consumer quotes what the server streamed, which may echo the key.
            exc.error.args = (endpoint.scrub(str(exc.error)),)
            failure = _Failure(exc.error, retryable=exc.retryable)
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = _idle_stream_failure(endpoint) if waiting.expired() else _connection_failure(endpoint, exc)
        if failure.retryable and consumer.text_delivered:
            raise ProviderUnavailableError(
                f"The response stream from {endpoint.provider} was cut after part of the answer had been "
                f"delivered ({failure.error}); the partial answer cannot be retried without repeating it.",
                status=failure.error.status,
                provider=endpoint.provider,
            ) from failure.error
        attempt = await _wait_before_retry(endpoint, failure, attempt)


def _require_event_stream(endpoint: Endpoint, response: aiohttp.ClientResponse) -> None:
    if response.content_type != "text/event-stream":
        raise ResponseFormatError(
            f"{endpoint.provider} was asked to stream but answered with content type "
            f"'{response.content_type}' instead of 'text/event-stream'.",
            status=response.status,
            provider=endpoint.provider,
        )


def decode_json(endpoint: Endpoint, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ResponseFormatError(
            f"{endpoint.provider} answered with a body that is not valid JSON: "
            f"{_excerpt(endpoint, raw.decode('utf-8', 'replace'))}",
            provider=endpoint.provider,
        ) from None


class SSEParser:
    """Incremental server-sent-events parser, fed raw chunks as they arrive.

    Chunks may split anywhere, even inside a line, a CRLF or a multi-byte
    character: only complete lines are decoded. `feed` returns the
    `(event, data)` pairs completed by the chunk, the event name defaulting to
    "message" as the SSE spec says.
    """

    __slots__ = ("_after_cr", "_data", "_event", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._after_cr = False
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        if self._after_cr and chunk:
            # The previous chunk ended in CR: an LF now is the rest of that CRLF.
            self._after_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._pending + chunk if self._pending else chunk
        if b"\r" in buffer:
            self._after_cr = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._pending = lines.pop()
        events: list[tuple[str, str]] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append((self._event or "message", "\n".join(self._data)))
                    self._data = []
                self._event = ""
                continue
            if line[0] == 0x3A:  # ':' starts a comment, which servers send as keep-alives
                continue
            field, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                self._data.append(value.decode("utf-8", "replace"))
            elif field == b"event":
                self._event = value.decode("utf-8", "replace")
        return events


class _Failure:
    __slots__ = ("error", "retry_after", "retryable")

    def __init__(self, error: ModelError, *, retryable: bool, retry_after: float | None = None) -> None:
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after


async def _wait_before_retry(endpoint: Endpoint, failure: _Failure, attempt: int) -> int:
    """Sleep before the next attempt, or raise the failure if none is left."""
    if not failure.retryable or attempt >= endpoint.max_retries:
        if failure.retryable and endpoint.max_retries:
            retries = "1 retry" if endpoint.max_retries == 1 else f"{endpoint.max_retries} retries"
            failure.error.args = (f"{failure.error} (gave up after {retries})",)
        raise failure.error
    if failure.retry_after is not None:
        delay = failure.retry_after
    else:
        backoff = min(endpoint.retry_backoff * 2**attempt, MAX_BACKOFF_SECONDS)
        delay = backoff * (1.0 - 0.25 * random.random())
    log.info(
        "%s request failed (%s); retry %d of %d in %.2f s",
        endpoint.provider,
        endpoint.scrub(str(failure.error)),
        attempt + 1,
        endpoint.max_retries,
        delay,
    )
    await asyncio.sleep(delay)
    return attempt + 1


def _connection_failure(endpoint: Endpoint, exc: BaseException) -> _Failure:
    if isinstance(exc, TimeoutError):
        limits = endpoint.request_timeout
        what = f"timed out (timeout {limits.total:g} s, connect_timeout {limits.sock_connect:g} s)"
    else:
        what = f"failed ({type(exc).__name__}: {endpoint.scrub(str(exc)) or 'connection lost'})"
    return _Failure(
        ProviderUnavailableError(
            f"The connection to {endpoint.provider} at {endpoint.url} {what}.", provider=endpoint.provider
        ),
        retryable=True,
    )


def _idle_stream_failure(endpoint: Endpoint) -> _Failure:
    # Retried like any timeout: the next attempt may reach a server (or a queue) that is not stuck.
    return _Failure(
        ProviderUnavailableError(
            f"The response stream from {endpoint.provider} at {endpoint.url} timed out: no part of the answer "
            f"came for {endpoint.stream_idle_seconds:g} s (keep-alives do not count). Give the model a larger "
            "timeout (timeout=... to the model class, or '?timeout=<seconds>' after the model string) if it is this "
            "slow to start answering.",
            provider=endpoint.provider,
        ),
        retryable=True,
    )


def classify_http_failure(endpoint: Endpoint, status: int, headers: Mapping[str, str], raw: bytes) -> _Failure:
    """Turn a non-2xx answer into the error to raise and whether to retry it."""
    provider = endpoint.provider
    detail = provider_error_message(endpoint, raw)
    if status in (401, 403):
        # The 401 text itself is left out: OpenAI's quotes a masked form of the key.
        extra = f": {detail}" if status == 403 and detail else ""
        return _Failure(
            AuthenticationError(
                f"{provider} rejected the API key (HTTP {status}{extra}). Set the {endpoint.key_env_var} "
                f"environment variable to a valid key, or pass api_key=... to the model.",
                status=status,
                provider=provider,
            ),
            retryable=False,
        )
    if status in _BAD_REQUEST_STATUSES:
        return _Failure(
            BadRequestError(
                f"{provider} rejected the request (HTTP {status}): {detail or 'no details given'}",
                status=status,
                provider=provider,
            ),
            retryable=False,
        )
    retry_after = parse_retry_after(headers)
    should_retry = headers.get("x-should-retry")
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    if should_retry == "true":
        retryable = True
    elif should_retry == "false":
        retryable = False
    if status == 429:
        error: ModelError = RateLimitError(
            f"{provider} is rate-limiting requests (HTTP 429): {detail or 'no details given'}",
            status=status,
            provider=provider,
        )
        if b"insufficient_quota" in raw:
            retryable = False  # an empty account does not refill by waiting
    elif status >= 500 or status == 408:
        error = ProviderUnavailableError(
            f"{provider} is unavailable (HTTP {status}): {detail or 'no details given'}",
            status=status,
            provider=provider,
        )
    else:
        error = ModelError(
            f"{provider} refused the request (HTTP {status}): {detail or 'no details given'}",
            status=status,
            provider=provider,
        )
    if retryable and retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
        error.args = (f"{error} (the provider asked to wait {retry_after:.0f} s before retrying)",)
        retryable = False
    return _Failure(error, retryable=retryable, retry_after=retry_after)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms` or `retry-after`.

    `headers` must look names up case-insensitively, as aiohttp's do.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    seconds = headers.get("retry-after")
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except ValueError:
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(seconds)
        except (TypeError, ValueError):
            return None
        value = when.timestamp() - time.time()
        return max(value, 0.0)
    return value if math.isfinite(value) and value >= 0 else None


def provider_error_message(endpoint: Endpoint, raw: bytes) -> str:
    """The provider's own explanation from an error body, or an excerpt of the body."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        return _excerpt(endpoint, text)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return _excerpt(endpoint, error["message"])
        if isinstance(error, str):
            return _excerpt(endpoint, error)
        if isinstance(body.get("message"), str):
            return _excerpt(endpoint, body["message"])
    return _excerpt(endpoint, text)


def _excerpt(endpoint: Endpoint, text: str) -> str:
    text = endpoint.scrub(text.strip())
    if len(text) > _MAX_DETAIL_CHARS:
        return text[:_MAX_DETAIL_CHARS] + "..."
    return text
