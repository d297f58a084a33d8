"""HTTP tools: a tool call is a signed JSON POST to the user's URL; the JSON answer is the output.

One pooled client (HTTP/1.1 keep-alive) serves every HTTP tool of the process: a call's tool
reuses a warm connection instead of paying TCP and TLS set-up. It lives in the server's
nursery (``HttpTools.run``) and is closed when the server stops. A receiver that fails
(non-2xx, slow, not JSON, too big) gives the model an ``{"error": ...}`` (``ToolFailed``) and a
log line with the call_sid; the call goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import trio

from llc.events.signing import Signer, new_message_id
from llc.log import get_logger
from llc.tools.registry import ToolContext, ToolFailed, ToolFn

log = get_logger("tools")

MAX_BODY_BYTES = 64 * 1024  # a tool output is read by the model on every turn: keep it small
CLOSE_GRACE_S = 2.0


@dataclass(frozen=True)
class HttpTool:
    name: str
    url: str
    timeout_s: float
    headers: dict[str, str]


class ToolHttpError(ToolFailed):
    """What went wrong with the receiver, in words for the model and the log."""


class HttpTools:
    """The process's one HTTP client for HTTP tools, and the calls made through it."""

    def __init__(self, secret: str | None) -> None:
        self._signer = Signer(secret) if secret else None
        self._client: httpx.AsyncClient | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the pooled client until cancelled (the server's nursery), then close it."""
        client = httpx.AsyncClient(http1=True, http2=False, follow_redirects=False,
                                   limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        self._client = client
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._client = None
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + CLOSE_GRACE_S
                await client.aclose()

    def function(self, spec: HttpTool) -> ToolFn:
        async def call(ctx: ToolContext, **arguments: Any) -> Any:
            try:
                return await self.post(spec, ctx, arguments)
            except ToolHttpError as exc:
                log.warning("HTTP tool %s failed: %s", spec.name, exc,
                            extra={"call_sid": ctx.call_sid, "tool": spec.name, "url": spec.url})
                raise

        return call

    async def post(self, spec: HttpTool, ctx: ToolContext, arguments: dict[str, Any]) -> Any:
        client, signer = self._client, self._signer
        if client is None or signer is None:
            raise ToolHttpError("HTTP tools are not running (the server is starting or stopping)")
        mode = ctx.mode
        call = {"call_sid": ctx.call_sid, "scenario": mode.scenario.name if mode else ctx.params.get("scenario", ""),
                "direction": ctx.params.get("direction", ""),
                "caller": mode.caller if mode else ctx.params.get("caller", ""),
                "called": mode.called if mode else ctx.params.get("called", "")}
        body = orjson.dumps({"tool": spec.name, "arguments": arguments, "call": call})
        headers = {**spec.headers, "content-type": "application/json",
                   **signer.headers(new_message_id(), body, time.time())}
        with trio.move_on_after(spec.timeout_s) as scope:
            try:
                status, data = await self._exchange(client, spec, body, headers)
            except httpx.HTTPError as exc:
                raise ToolHttpError(f"the tool's server could not be reached ({type(exc).__name__})") from None
        if scope.cancelled_caught:
            raise ToolHttpError(f"the tool's server did not answer within {spec.timeout_s * 1000:g} ms")
        if not 200 <= status < 300:
            raise ToolHttpError(f"the tool's server answered HTTP {status}")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ToolHttpError("the tool's server answered something that is not JSON") from None

    @staticmethod
    async def _exchange(client: httpx.AsyncClient, spec: HttpTool, body: bytes,
                        headers: dict[str, str]) -> tuple[int, bytes]:
        """POST and read at most MAX_BODY_BYTES of the answer (a bigger one is refused unread)."""
        timeout = httpx.Timeout(spec.timeout_s)
        async with client.stream("POST", spec.url, content=body, headers=headers, timeout=timeout) as response:
            size = response.headers.get("content-length", "")
            if size.isdigit() and int(size) > MAX_BODY_BYTES:
                raise ToolHttpError(f"the tool's answer is {int(size)} bytes, over the {MAX_BODY_BYTES} limit")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_BODY_BYTES:
                    raise ToolHttpError(f"the tool's answer is over the {MAX_BODY_BYTES} byte limit")
            return response.status_code, bytes(data)
