"""The SIP calls API: accept, reject, refer, hang up (``POST {OPENAI_API_URL}/realtime/calls/{id}/…``).

Every request is bounded; an answer other than 2xx is a ``ControlError`` carrying the status
(404 on accept: the caller hung up while ringing).

Why one pooled client: the accept is on the caller's ring, and a new connection to the API costs
a TCP and a TLS handshake (a few round trips) before the request can even go. The server holds
the client open (``pooled``) for as long as SIP calls can run, so the accept usually rides a
connection already open. Outside it (a tool, a test) each request has a client of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import trio

from llc.openai.connect import tls_context

TIMEOUT_S = 5.0
CLOSE_GRACE_S = 1.0
LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=10, keepalive_expiry=30)


class ControlError(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {text[:200]}")


# What a calls-API request can end in besides success: the API's answer, the network, the bound.
FAILURES = (ControlError, httpx.HTTPError, OSError, trio.TooSlowError)


class SipControl:
    def __init__(self, api_url: str, api_key: str | None, timeout_s: float = TIMEOUT_S) -> None:
        self.base = api_url.rstrip("/")
        # The simulator takes any bearer; `llc-phone serve` requires a key for the real API.
        self.key = api_key or "sk-llc-simulator"
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    def _new_client(self) -> httpx.AsyncClient:
        verify: Any = tls_context() if self.base.startswith("https:") else False
        return httpx.AsyncClient(verify=verify, timeout=self.timeout_s, limits=LIMITS, follow_redirects=False,
                                 headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})

    @asynccontextmanager
    async def pooled(self) -> AsyncIterator[None]:
        """Keep one client (and its open connections) for every request made inside."""
        client = self._client = self._new_client()
        try:
            yield
        finally:
            self._client = None
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + CLOSE_GRACE_S
                await client.aclose()

    async def _post(self, call_id: str, verb: str, body: dict[str, Any] | None = None) -> None:
        url = f"{self.base}/realtime/calls/{call_id}/{verb}"
        with trio.fail_after(self.timeout_s):
            if self._client is not None:
                try:
                    response = await self._client.post(url, content=orjson.dumps(body or {}))
                except httpx.RemoteProtocolError:  # a kept-alive connection the API had just closed
                    response = await self._client.post(url, content=orjson.dumps(body or {}))
            else:
                async with self._new_client() as client:
                    response = await client.post(url, content=orjson.dumps(body or {}))
        if response.status_code // 100 != 2:
            raise ControlError(response.status_code, response.text)

    async def accept(self, call_id: str, session: dict[str, Any]) -> None:
        await self._post(call_id, "accept", session)

    async def reject(self, call_id: str, status_code: int = 486) -> None:
        await self._post(call_id, "reject", {"status_code": status_code})

    async def refer(self, call_id: str, target_uri: str) -> None:
        await self._post(call_id, "refer", {"target_uri": target_uri})

    async def hangup(self, call_id: str) -> None:
        await self._post(call_id, "hangup")
