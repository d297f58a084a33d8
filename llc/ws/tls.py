"""``wss://`` on the fast engine: TLS on memory buffers, so the hub's path works over TLS too.

The real OpenAI endpoint is ``wss://``. Trio's SSLStream awaits every read and write, so a leg
on it could neither be read by the hub (``llc.ws.hub``) nor written without a wait;
``ssl.SSLObject`` on two ``MemoryBIO`` buffers encrypts and decrypts without waiting, and only
the socket waits, as for a plain leg.
"""

from __future__ import annotations

import socket
import ssl

from websockets.protocol import Protocol

from llc.ws.fastws import RECV_BYTES, FastWebSocket, HandshakeFailed, recv_raw, send_raw
from llc.ws.transport import TransportClosed


class MemoryTLS:
    """TLS on memory buffers (``ssl.SSLObject``): ciphertext in, plaintext out, and back.

    Why not Trio's SSLStream: its every read and write is awaited, so a ``wss://`` leg could
    not be read by the hub (llc.ws.hub) or written without a wait. Here encrypting and
    decrypting never wait; only the socket does, exactly as for a plain leg.
    """

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        self.eof = False  # the peer ended TLS (close_notify, or the socket's end)

    def open(self, raw: bytes) -> bytes:
        """Ciphertext in (b"": the socket's end), the plaintext it completes out (maybe b"")."""
        if raw:
            self.incoming.write(raw)
        elif not self.incoming.eof:
            self.incoming.write_eof()
        out: list[bytes] = []
        while not self.eof:
            try:
                chunk = self.obj.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.eof = True
                break
            if not chunk:
                self.eof = True
                break
            out.append(chunk)
        return out[0] if len(out) == 1 else b"".join(out)

    def seal(self, data: bytes) -> bytes:
        """Plaintext in, ciphertext out, with anything TLS itself must send (a key update)."""
        if data:
            self.obj.write(data)
        return self.outgoing.read()

    async def handshake(self, sock: socket.socket) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await send_raw(sock, memoryview(self.outgoing.read()))
            raw = await recv_raw(sock)
            if not raw:
                raise HandshakeFailed("the peer closed the connection during the TLS handshake")
            self.incoming.write(raw)
        await send_raw(sock, memoryview(self.outgoing.read()))

    async def receive(self, sock: socket.socket) -> bytes:
        """Plaintext from the socket (during the upgrade); b"" at the end."""
        while True:
            raw = await recv_raw(sock)
            data = self.open(raw)
            if data or not raw or self.eof:
                return data


class TLSWebSocket(FastWebSocket):
    """The same engine over TLS, for ``wss://`` (the real OpenAI endpoint), the hub's path included."""

    def __init__(self, sock: socket.socket, tls: MemoryTLS, proto: Protocol, leftover: bytes = b"") -> None:
        self._tls = tls
        super().__init__(sock, proto, leftover)

    def _seal(self, data: bytes) -> bytes:
        # Sealed in the order writes are asked for; the send lock keeps that order on the wire.
        try:
            return self._tls.seal(data)
        except ssl.SSLError as exc:
            raise TransportClosed(1006, f"TLS error: {exc}") from None

    def _took(self, data: bytes) -> bool:
        try:
            plain = self._tls.open(data)
        except ssl.SSLError as exc:
            self.abort(f"TLS error: {exc}")
            return False
        if plain and self._take(plain) or self._tls.outgoing.pending:
            self._owed = True  # the task's next _fill answers (the protocol, or TLS itself)
            return False
        if self._tls.eof:
            self._eof_seen = True
            return False
        return True

    async def _recv_some(self) -> bytes:
        while not self._tls.eof:
            raw = await super()._recv_some()
            data = self._tls.open(raw)  # an ssl.SSLError is an OSError: the reader's socket error
            if self._tls.outgoing.pending:
                await self._write(())
            if data or not raw:
                return data
        return b""
