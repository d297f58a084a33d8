"""The SIP calls API: accept, reject, refer, hang up (``POST {OPENAI_API_URL}/realtime/calls/{id}/…``).

Every request is bounded; an answer other than 2xx is a ``ControlError`` carrying the status
(404 on accept: the caller hung up while ringing).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import trio

from llc.openai.connect import tls_context

TIMEOUT_S = 5.0


class ControlError(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {text[:200]}")


class SipControl:
    def __init__(self, api_url: str, api_key: str | None, timeout_s: float = TIMEOUT_S) -> None:
        self.base = api_url.rstrip("/")
        # The simulator takes any bearer; `llc-phone serve` requires a key for the real API.
        self.key = api_key or "sk-llc-simulator"
        self.timeout_s = timeout_s

    async def _post(self, call_id: str, verb: str, body: dict[str, Any] | None = None) -> None:
        url = f"{self.base}/realtime/calls/{call_id}/{verb}"
        verify: Any = tls_context() if url.startswith("https:") else False
        with trio.fail_after(self.timeout_s):
            async with httpx.AsyncClient(verify=verify, timeout=self.timeout_s) as client:
                response = await client.post(url, content=orjson.dumps(body or {}), headers={
                    "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
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
