"""``wss://`` on the fast engine: a TLS layer on memory buffers, so the hub's path works over TLS too.

The real OpenAI endpoint is ``wss://``. Trio's SSLStream awaits every read and write, so a leg
on it could neither be read by the hub (``llc.ws.hub``) nor written without a wait;
``ssl.SSLObject`` on two ``MemoryBIO`` buffers encrypts and decrypts without waiting, and only
the socket waits, as for a plain leg. The engine (``llc.ws.fastws``) holds one as a layer: it
opens what it reads and seals what it writes through it, and nothing else changes.
"""

from __future__ import annotations

import socket
import ssl

from llc.ws.transport import HandshakeFailed, TransportClosed
from llc.ws.wire import RECV_BYTES, recv_raw, send_raw


class MemoryTLS:
    """TLS on memory buffers (``ssl.SSLObject``): ciphertext in, plaintext out, and back.

    ``open`` and ``seal`` raise TransportClosed(1006) when TLS fails (a forged or broken
    record): the connection cannot go on.
    """

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._incoming, self._outgoing, server_hostname=host)
        self.eof = False  # the peer ended TLS (close_notify, or the socket's end)

    @property
    def pending(self) -> bool:
        """TLS has bytes of its own for the peer (a handshake message, a key update)."""
        return self._outgoing.pending > 0

    def open(self, raw: bytes) -> bytes:
        """Ciphertext in (b"": the socket's end), the plaintext it completes out (maybe b"")."""
        if raw:
            self._incoming.write(raw)
        elif not self._incoming.eof:
            self._incoming.write_eof()
        out: list[bytes] = []
        while not self.eof:
            try:
                chunk = self._obj.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.eof = True
                break
            except ssl.SSLError as exc:
                raise TransportClosed(1006, f"TLS error: {exc}") from None
            if not chunk:
                self.eof = True
                break
            out.append(chunk)
        return out[0] if len(out) == 1 else b"".join(out)

    def seal(self, data: bytes) -> bytes:
        """Plaintext in, ciphertext out, with anything TLS itself must send (a key update)."""
        if data:
            try:
                self._obj.write(data)
            except ssl.SSLError as exc:
                raise TransportClosed(1006, f"TLS error: {exc}") from None
        return self._outgoing.read()

    async def handshake(self, sock: socket.socket) -> None:
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await send_raw(sock, memoryview(self._outgoing.read()))
            raw = await recv_raw(sock)
            if not raw:
                raise HandshakeFailed("the peer closed the connection during the TLS handshake")
            self._incoming.write(raw)
        await send_raw(sock, memoryview(self._outgoing.read()))

    async def send(self, sock: socket.socket, data: bytes) -> None:
        """Plaintext to the socket (during the upgrade). Raises HandshakeFailed or OSError."""
        try:
            sealed = self.seal(data)
        except TransportClosed as exc:
            raise HandshakeFailed(exc.reason) from None
        await send_raw(sock, memoryview(sealed))

    async def receive(self, sock: socket.socket) -> bytes:
        """Plaintext from the socket (during the upgrade); b"" at the end. Raises HandshakeFailed or OSError."""
        while True:
            raw = await recv_raw(sock)
            try:
                data = self.open(raw)
            except TransportClosed as exc:
                raise HandshakeFailed(exc.reason) from None
            if data or not raw or self.eof:
                return data
