"""The fast WebSocket engine: the `websockets` package's sans-I/O protocol on a Trio socket.

Why: measured on a 2-core box, the relay's CPU went mostly to the WebSocket engine (wsproto's
framing plus the ASGI and channel layers), not to JSON. Here one call's socket has no helper
task, no channel and no lock on the common path: a frame is read with one non-blocking
``recv`` (waiting in Trio only when the kernel has nothing) and written with one non-blocking
``send``. Only a partial write (a full kernel buffer) takes the slow path under a FIFO lock.

Both legs use it: ``connect()`` opens the OpenAI leg (``ws://`` on a raw socket, ``wss://``
through Trio's SSLStream), ``accept()`` upgrades a Twilio media socket on the fast listener.
Messages come back as ``bytes`` (orjson parses bytes directly, so nothing is decoded twice).
"""

from __future__ import annotations

import os
import random
import socket
import ssl
from collections import deque
from typing import Iterable, Sequence

import trio
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, Side, State

try:
    from websockets.speedups import apply_mask
except ImportError:  # no C extension on this platform: the pure-Python one is correct, slower
    from websockets.utils import apply_mask
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from llc.call.transport import TransportClosed

RECV_BYTES = 65536
# How long close() waits for the peer's close frame (callers bound it too).
CLOSE_WAIT_S = 1.0
_EOF = b""  # what websockets' data_to_send() yields for "half-close the socket now"


def _text_heads(mask_bit: int) -> tuple[tuple[bytes, ...], bytes, bytes]:
    """Headers of a final text frame: by length below 126, and the 16/64-bit length prefixes."""
    return (tuple(bytes((0x81, mask_bit | n)) for n in range(126)),
            bytes((0x81, mask_bit | 126)), bytes((0x81, mask_bit | 127)))


_SERVER_HEADS = _text_heads(0)
_CLIENT_HEADS = _text_heads(0x80)


class HandshakeFailed(Exception):
    """The opening handshake did not complete; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class FastWebSocket:
    """One WebSocket (either side) over a non-blocking stdlib socket. Implements Transport."""

    def __init__(self, sock: socket.socket, proto: Protocol, pending: Iterable[Frame] = ()) -> None:
        self._sock = sock  # non-blocking
        self._proto = proto
        self._frames: deque[Frame] = deque(pending)
        self._fragments: list[bytes] = []
        self._send_lock = trio.StrictFIFOLock()
        self._reading = False
        self._closed = False
        # True when the last recv emptied the kernel buffer: the next read waits for readiness
        # first instead of paying a recv() that fails with EAGAIN (one syscall per frame).
        self._drained = False
        client = proto.side is Side.CLIENT
        self._mask_rng = random.Random(os.urandom(16)) if client else None
        self._heads = _CLIENT_HEADS if client else _SERVER_HEADS
        self.request: Request | None = None  # server side: the upgrade request (path, headers)

    # ---- Transport --------------------------------------------------------------------

    async def receive_text(self) -> bytes:
        # Cancellation is honoured without a task switch; a switch happens only when the
        # kernel has nothing to read, which at 50 frames/s is nearly every frame anyway.
        await trio.lowlevel.checkpoint_if_cancelled()
        frames = self._frames
        while True:
            while frames:
                frame = frames.popleft()
                op = frame.opcode
                if op is Opcode.TEXT or op is Opcode.BINARY:
                    if frame.fin:
                        return frame.data
                    self._fragments = [frame.data]
                elif op is Opcode.CONT:
                    self._fragments.append(frame.data)
                    if frame.fin:
                        data, self._fragments = b"".join(self._fragments), []
                        return data
                elif op is Opcode.CLOSE:
                    raise self._closed_exc()
                # PING is answered by the protocol (flushed in _fill); PONG needs nothing.
            if self._proto.state is State.CLOSED:
                raise self._closed_exc()
            await self._fill()

    async def send_text(self, text: str | bytes) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._proto.state is not State.OPEN:
            raise self._closed_exc()
        # One unfragmented text frame, built here: websockets' send_text() does the same plus
        # an extension pass and a getrandom() syscall per mask, a tenth of the relay's CPU.
        # Its state machine is unaffected (it only tracks fragmented sends).
        data = text.encode() if isinstance(text, str) else text
        await self._write((self._frame(data),))

    async def send_texts(self, texts: Sequence[str | bytes]) -> None:
        """Several text frames in one write: a media frame and its mark cost one syscall."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._proto.state is not State.OPEN:
            raise self._closed_exc()
        frame = self._frame
        await self._write([frame(t.encode() if isinstance(t, str) else t) for t in texts])

    def _frame(self, data: bytes) -> bytes:
        n = len(data)
        short, head16, head64 = self._heads
        if n < 126:
            head = short[n]
        elif n < 65536:
            head = head16 + n.to_bytes(2, "big")
        else:
            head = head64 + n.to_bytes(8, "big")
        if self._mask_rng is None:  # server side: frames go unmasked
            return head + data
        # Client frames are masked (RFC 6455 5.3). The key guards browsers against proxy cache
        # poisoning; a per-socket PRNG seeded from os.urandom is ample for a server-side client.
        mask = self._mask_rng.getrandbits(32).to_bytes(4, "little")
        return head + mask + apply_mask(data, mask)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        proto = self._proto
        try:
            if proto.state is State.OPEN:
                proto.send_close(code, reason)
                await self._write(proto.data_to_send())
            if not self._reading:  # a reader in progress will see the close itself
                with trio.move_on_after(CLOSE_WAIT_S):
                    while proto.state is not State.CLOSED:
                        await self._fill()
        except (TransportClosed, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer is gone already: nothing left to say
        finally:
            self._shutdown()

    # ---- bytes in and out -------------------------------------------------------------

    async def _recv_some(self) -> bytes:
        sock = self._sock
        if self._drained:
            await trio.lowlevel.wait_readable(sock)
        while True:
            try:
                data = sock.recv(RECV_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                continue
            self._drained = len(data) < RECV_BYTES
            return data

    async def _send_some(self, data: memoryview) -> int:
        while True:
            try:
                return self._sock.send(data)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._sock)

    async def _fill(self) -> None:
        """Read once from the socket and turn the bytes into frames; answer pings/closes."""
        self._reading = True
        try:
            data = await self._recv_some()
        except (OSError, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise TransportClosed(1006, f"socket error: {exc}") from None
        finally:
            self._reading = False
        proto = self._proto
        if data:
            proto.receive_data(data)
        else:
            proto.receive_eof()
        self._frames.extend(proto.events_received())
        out = proto.data_to_send()
        if out:
            await self._write(out)
        if not data and not self._frames:
            raise self._closed_exc()

    async def _write(self, chunks: Sequence[bytes]) -> None:
        eof = _EOF in chunks
        data = b"".join(chunks) if len(chunks) != 1 else chunks[0]
        if data:
            lock = self._send_lock
            try:
                if lock.locked():  # someone is finishing a partial write: queue behind them
                    async with lock:
                        await self._send_all(memoryview(data))
                else:
                    try:
                        sent = self._sock.send(data)
                    except BlockingIOError:
                        sent = 0
                    if sent != len(data):
                        lock.acquire_nowait()  # nothing awaited since locked() said no
                        try:
                            await self._send_all(memoryview(data)[sent:])
                        finally:
                            lock.release()
            except (OSError, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
                raise TransportClosed(1006, f"socket error: {exc}") from None
        if eof:
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    async def _send_all(self, view: memoryview) -> None:
        while view:
            view = view[await self._send_some(view):]

    def _closed_exc(self) -> TransportClosed:
        rcvd = self._proto.close_rcvd
        if rcvd is not None:
            return TransportClosed(rcvd.code, rcvd.reason)
        return TransportClosed(1006, "connection dropped without a close frame")

    def _shutdown(self) -> None:
        try:
            trio.lowlevel.notify_closing(self._sock)
        except Exception:
            pass
        self._sock.close()


class TLSWebSocket(FastWebSocket):
    """The same engine over Trio's SSLStream, for ``wss://`` (the real OpenAI endpoint)."""

    def __init__(self, stream: trio.SSLStream[trio.SocketStream], proto: Protocol, pending: Iterable[Frame] = ()) -> None:
        self._stream = stream
        super().__init__(stream.transport_stream.socket, proto, pending)  # type: ignore[arg-type]

    async def _recv_some(self) -> bytes:
        return await self._stream.receive_some(RECV_BYTES)

    async def _write(self, chunks: Sequence[bytes]) -> None:
        data = b"".join(c for c in chunks if c)
        try:
            if data:
                async with self._send_lock:  # SSLStream forbids overlapping sends
                    await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise TransportClosed(1006, f"socket error: {exc}") from None

    def _shutdown(self) -> None:
        try:
            trio.lowlevel.notify_closing(self._sock)
        except Exception:
            pass
        self._stream.transport_stream.socket.close()


def _raw_socket(stream: trio.SocketStream) -> socket.socket:
    """Take the stdlib socket out of a Trio stream, with Nagle off (every frame is urgent)."""
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    fd = stream.socket.detach()
    return socket.socket(fileno=fd)


async def _handshake_events(recv: "trio.abc.ReceiveStream | socket.socket", proto: Protocol) -> list[object]:
    """Feed the socket to the protocol until the handshake's first event (Request/Response)."""
    while True:
        if isinstance(recv, socket.socket):
            while True:
                try:
                    data = recv.recv(RECV_BYTES)
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(recv)
        else:
            data = await recv.receive_some(RECV_BYTES)
        if data:
            proto.receive_data(data)
        else:
            proto.receive_eof()
        events = proto.events_received()
        if events:
            return events
        if not data:
            raise HandshakeFailed("the peer closed the connection during the WebSocket handshake")


async def connect(
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    max_size: int = 4 * 1024 * 1024,
    ssl_context: ssl.SSLContext | None = None,
) -> FastWebSocket:
    """Open a client WebSocket. Raises HandshakeFailed (with the HTTP status) or OSError."""
    wsuri = parse_uri(url)
    proto = ClientProtocol(wsuri, max_size=max_size)
    request = proto.connect()
    for name, value in headers:
        request.headers[name] = value
    proto.send_request(request)
    stream = await trio.open_tcp_stream(wsuri.host, wsuri.port)
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    if wsuri.secure:
        tls = trio.SSLStream(stream, ssl_context or ssl.create_default_context(), server_hostname=wsuri.host)
        try:
            await tls.send_all(b"".join(proto.data_to_send()))
            events = await _handshake_events(tls, proto)
        except BaseException:
            await trio.aclose_forcefully(tls)
            raise
        _check_response(proto, events)
        return TLSWebSocket(tls, proto, _frames(events[1:]))
    sock = _raw_socket(stream)
    try:
        sock.setblocking(False)
        sock.sendall(b"".join(proto.data_to_send()))  # a few hundred bytes into an empty buffer
        events = await _handshake_events(sock, proto)
        _check_response(proto, events)
    except BaseException:
        sock.close()
        raise
    return FastWebSocket(sock, proto, _frames(events[1:]))


def _check_response(proto: ClientProtocol, events: list[object]) -> None:
    if proto.handshake_exc is not None:
        response = events[0] if events and isinstance(events[0], Response) else None
        status = response.status_code if response is not None else None
        raise HandshakeFailed(f"WebSocket handshake refused: {proto.handshake_exc}", status)


def _frames(events: Iterable[object]) -> list[Frame]:
    return [e for e in events if isinstance(e, Frame)]


async def accept(
    stream: trio.SocketStream, path: str, *, max_size: int, timeout_s: float = 10.0
) -> FastWebSocket | None:
    """Server side: read the upgrade request, accept it on ``path`` or refuse it.

    Returns None (after answering with an HTTP error and closing) when the request is not a
    WebSocket upgrade to ``path`` or does not arrive in time.
    """
    sock = _raw_socket(stream)
    sock.setblocking(False)
    proto = ServerProtocol(max_size=max_size)
    try:
        with trio.move_on_after(timeout_s):
            events = await _handshake_events(sock, proto)
            request = events[0]
            assert isinstance(request, Request)
            if request.path.split("?", 1)[0] != path:
                response = proto.reject(404, f"no WebSocket here; the media stream is at {path}\n")
            else:
                response = proto.accept(request)
            proto.send_response(response)
            ws = FastWebSocket(sock, proto, _frames(events[1:]))
            ws.request = request
            await ws._write(proto.data_to_send())
            if response.status_code == 101 and proto.handshake_exc is None:
                return ws
    except (HandshakeFailed, OSError, TransportClosed):
        pass
    sock.close()
    return None
