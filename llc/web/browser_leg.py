"""A browser's WebSocket (Quart on Hypercorn) behind the call's ``Transport``.

The try-a-call page speaks Twilio's Media Streams messages, so its call runs through the same
bridge, core and records as a phone call. Its socket is served by the admin listener's
Hypercorn, not the fast engine: one person's test call, not a phone line's traffic, and the
admin listener keeps its guard (loopback or the API token) over it.

Pings: Hypercorn answers the browser's pings itself and the app cannot send its own, so there
are no pongs to count; the leg's liveness is the frames the page sends every 20 ms (a silent
page is a dead leg, as a silent Twilio leg is).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from llc.ws.transport import TransportClosed


class BrowserSocket(Protocol):
    """What the bridge needs of Quart's ``websocket`` object."""

    async def receive(self) -> str | bytes: ...

    async def send(self, data: str | bytes) -> None: ...

    async def close(self, code: int, reason: str = "") -> None: ...


class BrowserLeg:
    def __init__(self, ws: BrowserSocket) -> None:
        self._ws = ws
        self._closed = False

    @property
    def pongs(self) -> int:
        return 0

    @property
    def backlogged(self) -> bool:
        return False

    async def receive_text(self) -> str | bytes:
        if self._closed:
            raise TransportClosed(None, "closed")
        return await self._ws.receive()  # a browser that goes away cancels the whole handler

    async def send_text(self, text: str | bytes) -> None:
        if self._closed:
            raise TransportClosed(None, "closed")
        try:
            await self._ws.send(text.decode() if isinstance(text, bytes) else text)
        except Exception as exc:  # Hypercorn raises its own types once the browser has gone
            self._closed = True
            raise TransportClosed(None, f"the browser's socket failed: {exc!r}") from exc

    async def send_texts(self, texts: Sequence[str | bytes]) -> None:
        for text in texts:
            await self.send_text(text)

    def send_nowait(self, texts: Sequence[str | bytes]) -> bool:
        return False  # every send goes through send_texts: Quart has no non-blocking write

    async def flush(self) -> None:
        return None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._ws.close(code, reason)
        except Exception:  # noqa: BLE001  (Hypercorn's own types once the browser left: closing never raises)
            return

    def ping_nowait(self) -> bool:
        return False

    def abort(self, reason: str) -> None:
        """Nothing more goes either way (Quart cannot cut a socket without a wait: the handler's
        end closes it)."""
        self._closed = True
