"""The small interface both WebSocket legs sit behind, and its adapters.

The call logic only ever receives text, sends text and closes; the engine underneath
(Quart's ASGI websocket, trio-websocket, or a faster sans-I/O engine later) can change
without touching it.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from trio_websocket import ConnectionClosed, WebSocketConnection


class TransportClosed(Exception):
    """The peer closed the socket (or it broke); ``code`` is the WebSocket close code if known."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"closed (code {code}) {reason}".strip())


class Transport(Protocol):
    async def receive_text(self) -> str | bytes:
        """Next message; raises TransportClosed when the socket is gone."""

    async def send_text(self, text: str | bytes) -> None:
        """Send one text message; raises TransportClosed when the socket is gone."""

    async def send_texts(self, texts: Sequence[str | bytes]) -> None:
        """Send several messages in order (the fast engine writes them with one syscall)."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close; never raises, returns promptly (callers bound it with a timeout too)."""


class _SendEach:
    """``send_texts`` for engines without a batched write: one message after the other."""

    async def send_text(self, text: str | bytes) -> None:
        raise NotImplementedError

    async def send_texts(self, texts: Sequence[str | bytes]) -> None:
        for text in texts:
            await self.send_text(text)


class TrioWebsocketTransport(_SendEach):
    """trio-websocket client connection (the OpenAI leg)."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    async def receive_text(self) -> str | bytes:
        try:
            return await self.ws.get_message()
        except ConnectionClosed as exc:
            raise TransportClosed(getattr(exc.reason, "code", None), getattr(exc.reason, "reason", "") or "") from None

    async def send_text(self, text: str | bytes) -> None:
        try:
            await self.ws.send_message(text if isinstance(text, str) else text.decode())  # a text frame, always
        except ConnectionClosed as exc:
            raise TransportClosed(getattr(exc.reason, "code", None), getattr(exc.reason, "reason", "") or "") from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        try:
            await self.ws.aclose(code, reason or None)
        except Exception:  # already broken: nothing left to close
            pass


class QuartWebsocketTransport(_SendEach):
    """Quart-Trio's websocket object (the Twilio leg under Hypercorn)."""

    def __init__(self, websocket: Any) -> None:
        self.ws = websocket
        self.closed = False

    async def receive_text(self) -> str | bytes:
        # quart-trio cancels the handler when the client disconnects, so a closed socket
        # shows up as cancellation of the call, not as an exception here.
        return await self.ws.receive()

    async def send_text(self, text: str | bytes) -> None:
        if self.closed:
            raise TransportClosed(None, "closed by us")
        await self.ws.send(text if isinstance(text, str) else text.decode())  # Twilio needs text frames

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.ws.close(code, reason)
        except Exception:  # the peer is already gone
            pass
