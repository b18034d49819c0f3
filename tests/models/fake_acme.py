"""The fake server of the template provider (`acme_provider.py`): Acme's wire protocol on the shared base.

`FakeServer` brings the script (replies and faults), the recorded requests,
token estimates and the server's lifecycle; a protocol adds only how it
checks the key, what it refuses, and how its answers and errors look.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from retinue.testing.fake_server_base import FakeServer, Fault, HttpFault, Reply, random_id, retry_headers


class FakeAcmeServer(FakeServer):
    """A fake of `POST /v1/complete`; `base_url` is the host."""

    protocol = "acme"
    path = "/v1/complete"
    base_path = ""
    input_tokens_include_cache = True

    def _check_auth(self, request: web.Request) -> None:
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise Fault(401, {"error": "missing or wrong API key"})

    def _invalid_request(self, message: str) -> Fault:
        return Fault(400, {"error": message})

    def _http_fault(self, fault: HttpFault, body: dict[str, Any]) -> Fault:
        return Fault(fault.status, {"error": fault.message or f"HTTP {fault.status}"}, retry_headers(fault))

    def _validate(self, body: dict[str, Any]) -> None:
        for required in ("model", "prompt"):
            if not isinstance(body.get(required), str):
                raise self._invalid_request(f"'{required}' must be a string")
        if "stream" in body:
            raise self._invalid_request("'stream' is not supported")

    def _message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        tokens = self._usage(body, reply)
        return {
            "id": random_id("cmpl_"),
            "text": reply.text,
            "usage": {"input_tokens": tokens.uncached + tokens.cache_read, "output_tokens": tokens.output},
        }
