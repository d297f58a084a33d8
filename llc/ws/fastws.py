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
from functools import partial
from typing import Awaitable, Callable, Sequence

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

from llc.ws.transport import TransportClosed

RECV_BYTES = 65536
# An upgrade request/response head longer than this is refused (Twilio's and OpenAI's are < 2 KiB).
MAX_HEAD_BYTES = 16384
# How long close() waits for the peer's close frame (callers bound it too), and how long a
# connection the engine failed (1002, 1009) waits for it before the TCP socket is closed.
CLOSE_WAIT_S = 1.0
# A write that cannot finish within this (the kernel buffer stays full: the peer stopped
# reading) fails the connection. Half the frame may be out, so the socket cannot be reused.
SEND_STALL_S = 1.0
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

    def __init__(self, sock: socket.socket, proto: Protocol, leftover: bytes = b"") -> None:
        self._sock = sock  # non-blocking
        self._proto = proto
        # Messages ready for receive_text: bytes (cut here) or websockets Frames (anything else).
        self._frames: deque[bytes | Frame] = deque()
        self._buf = b""  # received bytes not yet a whole frame
        self._refused = False  # the protocol failed the connection on a frame: it gets every byte
        self._fragments: list[bytes] = []
        self._send_lock = trio.StrictFIFOLock()
        self._reading = False
        self._closed = False
        self._aborted: TransportClosed | None = None  # why abort() cut the connection
        self._close_by: float | None = None  # closing: when the peer's close stops being waited for
        self.send_stall_s = SEND_STALL_S
        self.pongs = 0  # pongs received: liveness for the ping the caller of ping() sent
        # True when the last recv emptied the kernel buffer: the next read waits for readiness
        # first instead of paying a recv() that fails with EAGAIN (one syscall per frame).
        self._drained = False
        client = proto.side is Side.CLIENT
        self._mask_bit = 0 if client else 0x80  # what the peer's frames must carry (RFC 6455 5.1)
        self._mask_rng = random.Random(os.urandom(16)) if client else None
        self._heads = _CLIENT_HEADS if client else _SERVER_HEADS
        self.request: Request | None = None  # server side: the upgrade request (path, headers)
        # The protocol saw bytes whose answer (pong, close) has not been sent yet.
        self._owed = bool(leftover) and self._take(leftover)
        # The hub's path (read_nowait / send_nowait, llc.ws.hub): the rest of a write the kernel
        # took only part of (flush() sends it; every later write waits behind it), an end of
        # stream seen there (the task's next read returns it), and how to take the socket back
        # from the hub before it closes (an epoll set must never hold a closed fd).
        self._backlog: memoryview | None = None
        self.backlogged = False  # _backlog is not None, as a field: read per message by the bridge
        self._eof_seen = False
        self.hub_release: Callable[[], None] | None = None

    # ---- Transport --------------------------------------------------------------------

    async def receive_text(self) -> bytes:
        if self._owed:  # the hub read frames that are owed an answer (a pong): it goes out first
            await self._fill()
        frames = self._frames
        if frames:
            # A message already buffered: honour cancellation without a task switch. (When
            # nothing is buffered, the wait for the socket below is the checkpoint.)
            await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            while frames:
                frame = frames.popleft()
                if type(frame) is bytes:
                    return frame
                op = frame.opcode  # type: ignore[union-attr]
                if op is Opcode.TEXT or op is Opcode.BINARY:
                    if frame.fin:  # type: ignore[union-attr]
                        return frame.data  # type: ignore[union-attr]
                    self._fragments = [frame.data]  # type: ignore[union-attr]
                elif op is Opcode.CONT:
                    self._fragments.append(frame.data)  # type: ignore[union-attr]
                    if frame.fin:  # type: ignore[union-attr]
                        data, self._fragments = b"".join(self._fragments), []
                        return data
                elif op is Opcode.CLOSE:
                    raise self._closed_exc()
                elif op is Opcode.PONG:
                    self.pongs += 1
                # PING is answered by the protocol (flushed in _fill).
            if self._proto.state is State.CLOSED or self._aborted is not None:
                raise self._closed_exc()
            await self._fill()

    async def send_text(self, text: str | bytes) -> None:
        await self.send_texts((text,))

    async def send_texts(self, texts: Sequence[str | bytes]) -> None:
        """Text frames in one write: a media frame and its mark cost one syscall.

        Frames are built here, unfragmented: websockets' send_text() does the same plus an
        extension pass and a getrandom() syscall per mask, a tenth of the relay's CPU. Its
        state machine is unaffected (it only tracks fragmented sends).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._proto.state is not State.OPEN or self._aborted is not None:
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
        self._unpark()
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

    async def ping(self) -> None:
        """Send a ping; the reader counts the pong (``pongs``). Raises TransportClosed."""
        if self._proto.state is not State.OPEN or self._aborted is not None:
            raise self._closed_exc()
        self._proto.send_ping(os.urandom(4))
        await self._write(self._proto.data_to_send())

    def abort(self, reason: str) -> None:
        """Cut a dead connection now (no close handshake: the peer is not listening).

        Every task waiting on the socket wakes with TransportClosed(1006, ``reason``).
        """
        if self._aborted is None:
            self._aborted = TransportClosed(1006, reason)
        self._closed = True
        self._shutdown()

    # ---- the hub's path: no waiting, no task switch (llc.ws.hub) ---------------------------

    def parkable(self) -> bool:
        """True when the hub may read this socket: open, and nothing read that a task must handle."""
        return (not self._frames and not self._owed and not self._eof_seen and not self._closed
                and self._aborted is None and self._proto.state is State.OPEN)

    def read_nowait(self) -> bool:
        """One non-blocking read into the message queue; False when a task must take over.

        That is: the peer closed (the end is kept for the task's next read), the socket failed
        (aborted, with the reason), or the protocol got a frame it must answer (a ping, a close).
        """
        data = self._recv_nowait()
        if data is None:
            return self._aborted is None  # nothing yet, or the socket failed (aborted, with why)
        if not data:
            self._eof_seen = True
            return False
        if self._take(data):
            self._owed = True  # answered by the task's next _fill
            return False
        return True

    def _recv_nowait(self) -> bytes | None:
        """What the kernel has (b"": the end), or None: nothing yet, or a failure (then aborted)."""
        try:
            return self._sock.recv(RECV_BYTES)
        except BlockingIOError:
            return None
        except OSError as exc:
            self.abort(f"socket error: {exc}")
            return None

    def _seal(self, data: bytes) -> bytes:
        """Bytes for the wire (TLSWebSocket encrypts them here)."""
        return data

    def send_nowait(self, texts: Sequence[str | bytes]) -> bool:
        """Text frames out in one non-blocking write; False (nothing sent) while a write is under way.

        When the kernel takes only part, the rest waits in a backlog: the caller must ``await
        flush()`` (bounded by ``send_stall_s``); every later write waits behind it. Raises
        TransportClosed.
        """
        # _state: the protocol's own field (its property costs a call per frame; websockets is pinned)
        if self._proto._state is not State.OPEN or self._aborted is not None:
            raise self._closed_exc()
        if self._backlog is not None or self._send_lock.locked():
            return False
        frame = self._frame
        if len(texts) == 1:  # most writes: one frame
            t = texts[0]
            data = self._seal(frame(t.encode() if isinstance(t, str) else t))
        else:
            data = self._seal(b"".join([frame(t.encode() if isinstance(t, str) else t) for t in texts]))
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise TransportClosed(1006, f"socket error: {exc}") from None
        if sent != len(data):
            self._backlog, self.backlogged = memoryview(data)[sent:], True
        return True

    async def flush(self) -> None:
        """Send what send_nowait left in the backlog (within ``send_stall_s``). Raises TransportClosed."""
        if self._backlog is not None:
            await self._write(())

    def _unpark(self) -> None:
        release = self.hub_release
        if release is not None:
            release()

    # ---- bytes in and out -------------------------------------------------------------

    async def _recv_some(self) -> bytes:
        if self._eof_seen:
            return b""
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


    async def _fill(self) -> None:
        """Read once from the socket and turn the bytes into messages; answer pings/closes."""
        proto = self._proto
        if self._owed:  # frames the hub's path read are owed an answer (a pong, a close): send it first
            self._owed = False
            await self._write(proto.data_to_send())  # over TLS, also what TLS itself owes
            return
        self._reading = True
        try:
            if proto.state is State.CLOSING:
                # We sent a close (or failed the connection on a bad frame): the peer's close
                # is a courtesy, waited for within one bound from the first wait (a peer that
                # keeps sending frames must not restart it), then the socket goes.
                if self._close_by is None:
                    self._close_by = trio.current_time() + CLOSE_WAIT_S
                data = None
                with trio.move_on_at(self._close_by):
                    data = await self._recv_some()
                if data is None:
                    self.abort("the peer did not finish the close handshake")
                    raise self._closed_exc()
            else:
                data = await self._recv_some()
        except (OSError, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            if self._aborted is not None:
                raise self._closed_exc() from None
            raise TransportClosed(1006, f"socket error: {exc}") from None
        finally:
            self._reading = False
        if data:
            if not self._take(data):
                return  # only whole data frames: nothing for the protocol to answer
        else:
            proto.receive_eof()
            self._frames.extend(proto.events_received())
        out = proto.data_to_send()
        if out:
            await self._write(out)
        if not data and not self._frames:
            raise self._closed_exc()

    def _take(self, data: bytes) -> bool:
        """Cut received bytes into frames; True when websockets' protocol saw some of them.

        Why not hand everything to websockets: its generator-based parser was a sixth of the
        relay's Python calls per frame. A whole, final, unfragmented text or binary frame with
        the right mask bit (nearly every frame of a call) is cut here; anything else (control
        frames, fragments, reserved bits, a wrong mask, an oversized length) goes to the
        protocol as whole frames, so its parser always sits on a frame boundary and it keeps
        doing every check and answer (pong, close, 1002/1009 failures) itself.
        """
        if self._refused:  # after a refused frame every byte is the protocol's (it discards them)
            self._to_protocol(data)
            return True
        buf = self._buf + data if self._buf else data
        proto, frames, mask_bit = self._proto, self._frames, self._mask_bit
        limit = proto.max_message_size
        fed = False
        i, n = 0, len(buf)
        while n - i >= 2:
            b0, b1 = buf[i], buf[i + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - i < 4:
                    break
                length, head = int.from_bytes(buf[i + 2 : i + 4], "big"), 4
            elif length == 127:
                if n - i < 10:
                    break
                length, head = int.from_bytes(buf[i + 2 : i + 10], "big"), 10
            if limit is not None and length > limit:
                # Let the protocol refuse it now (1009) instead of buffering it first.
                self._to_protocol(buf[i:])
                self._buf, self._refused = b"", True
                return True
            if b1 & 0x80:
                head += 4
            end = i + head + length
            if end > n:
                break
            if (b0 == 0x81 or b0 == 0x82) and (b1 & 0x80) == mask_bit and proto.current_size is None \
                    and proto._state is State.OPEN:
                if mask_bit:
                    frames.append(apply_mask(buf[i + head : end], buf[i + head - 4 : i + head]))
                else:
                    frames.append(buf[i + head : end])
            else:
                self._to_protocol(buf[i:end])
                fed = True
            i = end
        self._buf = buf[i:] if i < n else b""
        return fed

    def _to_protocol(self, data: bytes) -> None:
        self._proto.receive_data(data)
        self._frames.extend(self._proto.events_received())

    async def _write(self, chunks: Sequence[bytes]) -> None:
        eof = _EOF in chunks
        data = self._seal(b"".join(chunks) if len(chunks) != 1 else chunks[0])
        if data or self._backlog is not None:
            lock = self._send_lock
            try:
                if lock.locked() or self._backlog is not None:  # a partial write is finishing: queue behind it
                    async with lock:
                        backlog, self._backlog, self.backlogged = self._backlog, None, False
                        if backlog is not None:
                            await self._send_bounded(backlog)
                        if data:
                            await self._send_bounded(memoryview(data))
                else:
                    try:
                        sent = self._sock.send(data)
                    except BlockingIOError:
                        sent = 0
                    if sent != len(data):
                        lock.acquire_nowait()  # nothing awaited since locked() said no
                        try:
                            await self._send_bounded(memoryview(data)[sent:])
                        finally:
                            lock.release()
            except (OSError, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
                if self._aborted is not None:
                    raise self._closed_exc() from None
                raise TransportClosed(1006, f"socket error: {exc}") from None
        if eof:
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    async def _send_bounded(self, view: memoryview) -> None:
        """The rest of a partial write, within ``send_stall_s``: a peer that stops reading is a
        dead leg, never a task blocked for ever (the other leg's reader sends inline)."""
        with trio.move_on_after(self.send_stall_s):
            await _send_all(self._sock, view)
            return
        self.abort(f"the peer stopped reading: a write waited over {self.send_stall_s:g} s")
        raise self._closed_exc()

    def _closed_exc(self) -> TransportClosed:
        rcvd, sent = self._proto.close_rcvd, self._proto.close_sent
        if rcvd is not None:
            return TransportClosed(rcvd.code, rcvd.reason)
        if sent is not None:  # we closed or failed it (1002, 1009): our code says why
            return TransportClosed(sent.code, sent.reason)
        if self._aborted is not None:
            return TransportClosed(self._aborted.code, self._aborted.reason)
        return TransportClosed(1006, "connection dropped without a close frame")

    def _shutdown(self) -> None:
        self._unpark()
        try:
            trio.lowlevel.notify_closing(self._sock)
        except Exception:
            pass
        self._sock.close()


class _TLS:
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
                await _send_all(sock, memoryview(self.outgoing.read()))
            raw = await _recv_any(sock)
            if not raw:
                raise HandshakeFailed("the peer closed the connection during the TLS handshake")
            self.incoming.write(raw)
        await _send_all(sock, memoryview(self.outgoing.read()))

    async def receive(self, sock: socket.socket) -> bytes:
        """Plaintext from the socket (during the upgrade); b"" at the end."""
        while True:
            raw = await _recv_any(sock)
            data = self.open(raw)
            if data or not raw or self.eof:
                return data


class TLSWebSocket(FastWebSocket):
    """The same engine over TLS, for ``wss://`` (the real OpenAI endpoint), the hub's path included."""

    def __init__(self, sock: socket.socket, tls: _TLS, proto: Protocol, leftover: bytes = b"") -> None:
        self._tls = tls
        super().__init__(sock, proto, leftover)

    def _seal(self, data: bytes) -> bytes:
        # Sealed in the order writes are asked for; the send lock keeps that order on the wire.
        try:
            return self._tls.seal(data)
        except ssl.SSLError as exc:
            raise TransportClosed(1006, f"TLS error: {exc}") from None

    def read_nowait(self) -> bool:
        data = self._recv_nowait()
        if data is None:
            return self._aborted is None
        if not data:
            self._eof_seen = True
            return False
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


def _raw_socket(stream: trio.SocketStream) -> socket.socket:
    """Take the stdlib socket out of a Trio stream, with Nagle off (every frame is urgent)."""
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    fd = stream.socket.detach()
    return socket.socket(fileno=fd)


async def _recv_any(sock: socket.socket) -> bytes:
    while True:
        try:
            return sock.recv(RECV_BYTES)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)


async def _send_all(sock: socket.socket, view: memoryview) -> None:
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)


async def _handshake_events(receive: Callable[[], Awaitable[bytes]], proto: Protocol) -> tuple[list[object], bytes]:
    """Feed the upgrade request/response to the protocol; its events, and the bytes after it.

    Only the HTTP head goes to the protocol: frame bytes that arrived in the same read are
    returned for FastWebSocket to cut, so the protocol's parser starts on a frame boundary.
    """
    pending = b""  # received, not yet given to the protocol
    fed_head = False
    while True:
        data = await receive()
        if not data:
            proto.receive_eof()
            events = proto.events_received()
            if events:
                return events, b""
            raise HandshakeFailed("the peer closed the connection during the WebSocket handshake")
        if fed_head:
            proto.receive_data(data)  # the body of a refusal
        else:
            pending += data
            end = pending.find(b"\r\n\r\n")
            if end < 0:
                if len(pending) > MAX_HEAD_BYTES:
                    raise HandshakeFailed(f"the upgrade head is over {MAX_HEAD_BYTES} bytes")
                continue
            proto.receive_data(pending[: end + 4])
            pending, fed_head = pending[end + 4 :], True
        events = proto.events_received()
        if events:
            return events, pending
        if pending:  # the head alone was not enough (a refusal with a body): the rest is the protocol's
            proto.receive_data(pending)
            pending = b""
            events = proto.events_received()
            if events:
                return events, b""


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
    sock = _raw_socket(stream)
    try:
        sock.setblocking(False)
        if wsuri.secure:
            tls = _TLS(ssl_context or ssl.create_default_context(), wsuri.host)
            await tls.handshake(sock)
            await _send_all(sock, memoryview(tls.seal(b"".join(proto.data_to_send()))))
            events, leftover = await _handshake_events(partial(tls.receive, sock), proto)
            _check_response(proto, events)  # a refusal (401/429/5xx) closes the socket too
            return TLSWebSocket(sock, tls, proto, leftover)
        sock.sendall(b"".join(proto.data_to_send()))  # a few hundred bytes into an empty buffer
        events, leftover = await _handshake_events(partial(_recv_any, sock), proto)
        _check_response(proto, events)
    except BaseException:
        sock.close()
        raise
    return FastWebSocket(sock, proto, leftover)


def _check_response(proto: ClientProtocol, events: list[object]) -> None:
    if proto.handshake_exc is not None:
        response = events[0] if events and isinstance(events[0], Response) else None
        status = response.status_code if response is not None else None
        raise HandshakeFailed(f"WebSocket handshake refused: {proto.handshake_exc}", status)


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
            events, leftover = await _handshake_events(partial(_recv_any, sock), proto)
            request = events[0]
            assert isinstance(request, Request)
            if request.path.split("?", 1)[0] != path:
                response = proto.reject(404, f"no WebSocket here; the media stream is at {path}\n")
            else:
                response = proto.accept(request)
            proto.send_response(response)
            ws = FastWebSocket(sock, proto, leftover)
            ws.request = request
            await ws._write(proto.data_to_send())
            if response.status_code == 101 and proto.handshake_exc is None:
                return ws
    except (HandshakeFailed, OSError, TransportClosed):
        pass
    except BaseException:  # cancelled mid-handshake: the detached socket is ours to close
        sock.close()
        raise
    sock.close()
    return None
