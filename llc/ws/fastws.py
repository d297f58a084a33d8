"""The fast WebSocket engine: the `websockets` package's sans-I/O protocol on a Trio socket.

Why: measured on a 2-core box, the relay's CPU went mostly to the WebSocket engine (wsproto's
framing plus the ASGI and channel layers), not to JSON. Here one call's socket has no helper
task, no channel and no lock on the common path: a frame is read with one non-blocking
``recv`` (waiting in Trio only when the kernel has nothing) and written with one non-blocking
``send``. Only a partial write (a full kernel buffer) takes the slow path under a FIFO lock.

Both legs use it: ``llc.ws.handshake.connect()`` opens the OpenAI leg (``ws://`` on a raw
socket, ``wss://`` with a TLS layer on memory buffers, ``llc.ws.tls``), ``llc.ws.handshake.accept()``
upgrades a Twilio media socket. Between messages the media hub (``llc.ws.hub``) reads the
socket (``read_nowait``) and the bridge writes it (``send_nowait``); a task takes over for
anything else. Messages come back as ``bytes`` (orjson parses bytes directly).
"""

from __future__ import annotations

import os
import random
import socket
import typing
from collections import deque
from typing import Sequence

import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, Side, State

try:
    from websockets.speedups import apply_mask
except ImportError:  # no C extension on this platform: the pure-Python one is correct, slower
    from websockets.utils import apply_mask

from llc.ws.transport import TransportClosed

if typing.TYPE_CHECKING:
    from llc.ws.hub import Parking
    from llc.ws.tls import MemoryTLS

RECV_BYTES = 65536
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
    """One WebSocket (either side) over a non-blocking stdlib socket. Implements Transport.

    ``tls``: for ``wss://``, what is written is sealed and what is read opened through it.
    ``leftover``: frame bytes (plaintext) read with the handshake.
    """

    def __init__(self, sock: socket.socket, proto: Protocol, leftover: bytes = b"", *,
                 tls: MemoryTLS | None = None) -> None:
        self._sock = sock  # non-blocking
        self._proto = proto
        self._tls = tls
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
        self.pongs = 0  # pongs received: liveness for the pings ping_nowait() sent
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
        # took only part of (flush() sends it; every later write waits behind it), and an end of
        # stream seen there (the task's next read returns it).
        self._backlog: memoryview | None = None
        self.backlogged = False  # _backlog is not None, as a field: read per message by the bridge
        self._eof_seen = False
        self._parking: Parking | None = None  # the hub holding this socket, while parked

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

    def ping_nowait(self) -> bool:
        """A ping out without a wait; the reader counts the pong (``pongs``). False (nothing
        sent) while a write is under way; a backlog is left as by send_nowait. Raises TransportClosed."""
        if not self._free_to_send():
            return False
        self._proto.send_ping(os.urandom(4))
        data = b"".join(self._proto.data_to_send())
        self._send_now(self._tls.seal(data) if self._tls is not None else data)
        return True

    def abort(self, reason: str) -> None:
        """Cut a dead connection now (no close handshake: the peer is not listening).

        Every task waiting on the socket wakes with TransportClosed(1006, ``reason``).
        """
        if self._aborted is None:
            self._aborted = TransportClosed(1006, reason)
        self._closed = True
        self._shutdown()

    # ---- the hub's seam: no waiting, no task switch (llc.ws.hub) ---------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

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
        if self._tls is not None:
            return self._took_tls(data)
        if not data:
            self._eof_seen = True
            return False
        return self._took(data)

    def message_nowait(self) -> bytes | None:
        """The next whole data message; None when the queue is empty or its head needs a task."""
        frames = self._frames
        if frames:
            head = frames[0]
            if isinstance(head, bytes):
                frames.popleft()
                return head
        return None

    def attach_parking(self, parking: Parking) -> None:
        """A hub parked this socket: ``parking.release()`` is called before the fd closes."""
        self._parking = parking

    def detach_parking(self) -> None:
        """The hub let go of this socket (handed back to its task)."""
        self._parking = None

    def _took(self, data: bytes) -> bool:
        """Bytes the hub's read got, into the message queue; False when a task must take over."""
        if self._take(data):
            self._owed = True  # answered by the task's next _fill
            return False
        return True

    def _took_tls(self, raw: bytes) -> bool:
        """What the hub's read got over TLS (b"": the socket's end); False when a task must take over."""
        tls = self._tls
        assert tls is not None
        try:
            plain = tls.open(raw)
        except TransportClosed as exc:
            self.abort(exc.reason)
            return False
        if plain and self._take(plain) or tls.pending:
            self._owed = True  # the task's next _fill answers (the protocol, or TLS itself)
            return False
        if tls.eof:
            self._eof_seen = True
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

    def send_nowait(self, texts: Sequence[str | bytes]) -> bool:
        """Text frames out in one non-blocking write; False (nothing sent) while a write is under way.

        When the kernel takes only part, the rest waits in a backlog: the caller must ``await
        flush()`` (bounded by ``send_stall_s``); every later write waits behind it. Raises
        TransportClosed.
        """
        if not self._free_to_send():
            return False
        frame = self._frame
        if len(texts) == 1:  # most writes: one frame
            t = texts[0]
            data = frame(t.encode() if isinstance(t, str) else t)
        else:
            data = b"".join([frame(t.encode() if isinstance(t, str) else t) for t in texts])
        self._send_now(self._tls.seal(data) if self._tls is not None else data)
        return True

    def _free_to_send(self) -> bool:
        """No write under way or waiting, so one may go out now. Raises TransportClosed."""
        # _state: the protocol's own field (its property costs a call per frame; websockets is pinned)
        if self._proto._state is not State.OPEN or self._aborted is not None:
            raise self._closed_exc()
        return self._backlog is None and not self._send_lock.locked()

    def _send_now(self, data: bytes) -> None:
        """One non-blocking send; what the kernel does not take waits in the backlog."""
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            if self._aborted is not None:
                raise self._closed_exc() from None
            raise TransportClosed(1006, f"socket error: {exc}") from None
        if sent != len(data):
            self._backlog, self.backlogged = memoryview(data)[sent:], True

    async def flush(self) -> None:
        """Send what send_nowait left in the backlog (within ``send_stall_s``). Raises TransportClosed."""
        if self._backlog is not None:
            await self._write(())

    def _unpark(self) -> None:
        parking, self._parking = self._parking, None
        if parking is not None:
            parking.release()

    # ---- bytes in and out -------------------------------------------------------------

    async def _recv_some(self) -> bytes:
        """Plaintext from the socket (b"": the end); over TLS, what TLS owes goes out on the way."""
        tls = self._tls
        while not self._eof_seen and (tls is None or not tls.eof):
            raw = await self._recv_raw()
            if tls is None:
                return raw
            data = tls.open(raw)  # TransportClosed when TLS fails
            if tls.pending:
                await self._write(())
            if data or not raw:
                return data
        return b""

    async def _recv_raw(self) -> bytes:
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
            elif b0 == 0x8A and length < 126 and (b1 & 0x80) == mask_bit and proto._state is State.OPEN:
                # A whole pong (the answer to ping_nowait): counted here, nothing to answer, its
                # payload unread; without this every pong handed the hub's socket back to its task.
                self.pongs += 1
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
        data = b"".join(chunks) if len(chunks) != 1 else chunks[0]
        if self._tls is not None:
            data = self._tls.seal(data)  # sealed in the order written; the send lock keeps that order
        if data and self._backlog is None and not self._send_lock.locked():
            self._send_now(data)  # the common case: all of it goes now, or the rest is a backlog
            data = b""
        if data or self._backlog is not None:  # a partial write is finishing: queue behind it
            try:
                async with self._send_lock:
                    backlog, self._backlog, self.backlogged = self._backlog, None, False
                    if backlog is not None:
                        await self._send_bounded(backlog)
                    if data:
                        await self._send_bounded(memoryview(data))
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
            await send_raw(self._sock, view)
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


async def recv_raw(sock: socket.socket) -> bytes:
    while True:
        try:
            return sock.recv(RECV_BYTES)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)


async def send_raw(sock: socket.socket, view: memoryview) -> None:
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
