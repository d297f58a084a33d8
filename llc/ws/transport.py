"""The small interface both WebSocket legs sit behind.

The call logic only ever receives text, sends text and closes; ``llc.ws.fastws`` implements
it for both legs (Twilio's media socket and the OpenAI socket), and tests can stand in a
fake without a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TransportClosed(Exception):
    """The peer closed the socket (or it broke); ``code`` is the WebSocket close code if known."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"closed (code {code}) {reason}".strip())


class HandshakeFailed(Exception):
    """The opening handshake did not complete; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class Transport(Protocol):
    @property
    def pongs(self) -> int:
        """Pongs received so far: the answers to ping_nowait(), counted by the engine."""

    @property
    def backlogged(self) -> bool:
        """A send_nowait left bytes the kernel did not take: ``flush()`` must send them."""

    async def receive_text(self) -> str | bytes:
        """Next message; raises TransportClosed when the socket is gone."""

    async def send_text(self, text: str | bytes) -> None:
        """Send one text message; raises TransportClosed when the socket is gone."""

    async def send_texts(self, texts: Sequence[str | bytes]) -> None:
        """Send several messages in order (the fast engine writes them with one syscall)."""

    def send_nowait(self, texts: Sequence[str | bytes]) -> bool:
        """Send without waiting; False (nothing sent) when that would wait: use send_texts then."""

    async def flush(self) -> None:
        """Send what send_nowait left behind (bounded); raises TransportClosed."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close; never raises, returns promptly (callers bound it with a timeout too)."""

    def ping_nowait(self) -> bool:
        """Send a WebSocket ping without a wait (liveness: the pong shows the peer still reads);
        False (nothing sent) while a write is under way."""

    def abort(self, reason: str) -> None:
        """Cut a dead connection at once; waiting tasks get TransportClosed(1006, reason)."""
