"""The fast WebSocket engine: the `websockets` package's sans-I/O protocol on a Trio socket.

Why: measured on a 2-core box, the relay's CPU went mostly to the WebSocket engine (wsproto's
framing plus the ASGI and channel layers), not to JSON. Here one call's socket has no helper
task, no channel and no lock on the common path: a frame is read with one non-blocking
``recv`` (waiting in Trio only when the kernel has nothing) and written with one non-blocking
``send``. Only a partial write (a full kernel buffer) takes the slow path under a FIFO lock.

Both legs use it (``llc.ws.handshake``: ``wss://`` adds a TLS layer, ``llc.ws.tls``). Between
messages the media hub (``llc.ws.hub``) reads the socket through its public seam and the
bridge writes it (``send_nowait``); a task takes over for anything else. The lifecycle is one
state (``llc.ws.state``); received bytes become messages in ``llc.ws.inbox``.
"""

from __future__ import annotations

import os
import socket
import typing
from collections.abc import Sequence
from contextlib import suppress

import trio
from websockets.http11 import Request
from websockets.protocol import Protocol, Side

from llc.ws.inbox import Inbox
from llc.ws.state import ABORTED, CLOSED, CLOSING, LIVE, OPEN, moved, opened, synced
from llc.ws.transport import TransportClosed
from llc.ws.wire import RECV_BYTES, TextFramer, recv_raw, send_raw

if typing.TYPE_CHECKING:
    from llc.ws.hub import Parking
    from llc.ws.state import ConnectionState
    from llc.ws.tls import MemoryTLS

# How long close() waits for the peer's close frame (callers bound it too), and how long a
# connection the engine failed (1002, 1009) waits for it before the TCP socket is closed.
CLOSE_WAIT_S = 1.0
# A write that cannot finish within this (the kernel buffer stays full: the peer stopped
# reading) fails the connection. Half the frame may be out, so the socket cannot be reused.
SEND_STALL_S = 1.0


class FastWebSocket:
    """One WebSocket (either side) over a non-blocking stdlib socket. Implements Transport.

    ``tls``: for ``wss://``, what is written is sealed and what is read opened through it.
    ``leftover``: frame bytes (plaintext) read with the handshake.
    """

    def __init__(self, sock: socket.socket, proto: Protocol, leftover: bytes = b"", *,
                 tls: MemoryTLS | None = None, request: Request | None = None) -> None:
        self._state = opened(proto.state)
        self._sock = sock  # non-blocking
        self._proto = proto
        self._tls = tls
        self._cut: TransportClosed | None = None  # ABORTED: why it was cut
        self._in = Inbox(proto)  # received bytes to messages, and what the protocol owes back
        self._frames = self._in.frames  # its message queue, read per message by the hub
        self._send_lock = trio.StrictFIFOLock()
        # The rest of a write the kernel took only part of: flush() sends it, every later write waits behind it.
        self._backlog: memoryview | None = None
        self._close_by: float | None = None  # CLOSING: when the wait for the peer's close ends
        # A task waits to read: close() must not wait on the fd too (Trio lets one task wait per fd).
        self._reader_active = False
        # The last recv emptied the kernel buffer: the next read waits for readiness first
        # instead of paying a recv() that fails with EAGAIN (one syscall per frame).
        self._kernel_emptied = False
        self._parking: Parking | None = None  # the hub holding this socket, while parked
        self.send_stall_s = SEND_STALL_S
        self.request = request  # server side: the upgrade request (path, headers)
        self._frame = TextFramer(proto.side is Side.CLIENT).frame
        if leftover:
            self._take(leftover)

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def pongs(self) -> int:
        """Pongs received: liveness for the pings ping_nowait() sent."""
        return self._in.pongs

    @property
    def backlogged(self) -> bool:
        """A send_nowait left bytes the kernel did not take: ``flush()`` must send them."""
        return self._backlog is not None

    # ---- Transport --------------------------------------------------------------------

    async def receive_text(self) -> bytes:
        inbox = self._in
        if self._owes():  # the hub's read left an answer owed (a pong, the EOF): it goes out first
            await self._send_owed()
        if inbox.frames:
            # A message already buffered: honour cancellation without a task switch. (When
            # nothing is buffered, the wait for the socket below is the checkpoint.)
            await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            message = inbox.message()
            if message is not None:
                return message
            if self._state is not OPEN and self._state is not CLOSING:
                raise self._closed_exc()
            await self._fill()

    async def send_text(self, text: str | bytes) -> None:
        await self.send_texts((text,))

    async def send_texts(self, texts: Sequence[str | bytes]) -> None:
        """Text frames in one write: a media frame and its mark cost one syscall. (Built here,
        unfragmented, by ``llc.ws.wire``: the protocol tracks only fragmented sends.)"""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._state is not OPEN:
            raise self._closed_exc()
        frame = self._frame
        await self._write([frame(t.encode() if isinstance(t, str) else t) for t in texts])

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._state not in LIVE:
            return
        self._unpark()
        try:
            if self._state is OPEN:
                self._proto.send_close(code, reason)
                self._in.collect()
                self._sync()
            if self._owes():
                await self._send_owed()
            if not self._reader_active:  # a reader in progress will see the close itself
                with trio.move_on_after(CLOSE_WAIT_S):
                    while self._state is CLOSING:
                        await self._fill()
        except (TransportClosed, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer is gone already: nothing left to say
        finally:
            if self._state is OPEN:  # the protocol refused the close code (raised to the caller)
                self.abort(f"close({code}) failed")
            self._let_go(CLOSED)

    def ping_nowait(self) -> bool:
        """A ping out without a wait; the reader counts the pong (``pongs``). False (nothing
        sent) while a write is under way; a backlog is left as by send_nowait. Raises TransportClosed."""
        if self._state is not OPEN:
            raise self._closed_exc()
        if self._backlog is not None or self._send_lock.locked():  # it would overtake that write
            return False
        self._proto.send_ping(os.urandom(4))
        data = b"".join(self._proto.data_to_send())
        self._send_now(self._tls.seal(data) if self._tls is not None else data)
        return True

    def abort(self, reason: str) -> None:
        """Cut the connection now, in any state (no close handshake: the peer is not listening).

        Every task waiting on the socket wakes with TransportClosed(1006, ``reason``); a
        socket already let go of is left as it is.
        """
        if self._state in LIVE:
            self._cut = TransportClosed(1006, reason)
            self._let_go(ABORTED)

    def send_nowait(self, texts: Sequence[str | bytes]) -> bool:
        """Text frames out in one non-blocking write; False (nothing sent) while a write is under way.

        When the kernel takes only part, the rest waits in a backlog: the caller must ``await
        flush()`` (bounded by ``send_stall_s``); every later write waits behind it. Raises
        TransportClosed.
        """
        if self._state is not OPEN:
            raise self._closed_exc()
        if self._backlog is not None or self._send_lock.locked():  # it would overtake that write
            return False
        frame = self._frame
        if len(texts) == 1:  # most writes: one frame
            t = texts[0]
            data = frame(t.encode() if isinstance(t, str) else t)
        else:
            data = b"".join([frame(t.encode() if isinstance(t, str) else t) for t in texts])
        self._send_now(self._tls.seal(data) if self._tls is not None else data)
        return True

    async def flush(self) -> None:
        """Send what send_nowait left in the backlog (within ``send_stall_s``). Raises TransportClosed."""
        if self._backlog is not None:
            await self._write(())

    # ---- the hub's seam: no waiting, no task switch (llc.ws.hub) ---------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    def parkable(self) -> bool:
        """True when the hub may read this socket: open, nothing queued or owed that a task must handle."""
        # _owes() spelled out: the hub asks once per wake-up.
        return (self._state is OPEN and not self._frames and not self._in.out
                and (self._tls is None or not self._tls.pending))

    def read_nowait(self) -> bool:
        """One non-blocking read into the message queue; False when a task must take over: the
        peer's end, a failure (aborted), a frame the protocol saw (a ping, a close, a fragment)."""
        try:
            raw = self._sock.recv(RECV_BYTES)
        except BlockingIOError:
            return True  # nothing yet
        except OSError as exc:
            self.abort(f"socket error: {exc}")
            return False
        if raw and self._tls is None:  # _take() spelled out: the hub's every read
            if self._in.take(raw, self._state is OPEN):
                self._sync()
                return False
            return True
        return self._ingest(raw)

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

    def _unpark(self) -> None:
        parking, self._parking = self._parking, None
        if parking is not None:
            parking.release()

    # ---- bytes in ---------------------------------------------------------------------

    async def _fill(self) -> None:
        """Read once into the message queue, then send what that owes (a pong, a close, TLS's own)."""
        if not self._owes():
            self._ingest(await self._recv())
            if self._state is ABORTED:  # TLS failed on what was read
                raise self._closed_exc()
        if self._owes():
            await self._send_owed()

    async def _recv(self) -> bytes:
        """One read (b"": the peer's end); in CLOSING within the close wait. Raises TransportClosed."""
        self._reader_active = True
        try:
            if self._state is not CLOSING:
                return await self._recv_some()
            # A close frame of ours is out: the peer's answer is a courtesy, waited for within
            # one bound from the first wait (a peer that keeps sending must not restart it).
            if self._close_by is None:
                self._close_by = trio.current_time() + CLOSE_WAIT_S
            with trio.move_on_at(self._close_by):
                return await self._recv_some()
            self.abort("the peer did not finish the close handshake")
            raise self._closed_exc()
        except (OSError, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise self._broken(exc) from None
        finally:
            self._reader_active = False

    async def _recv_some(self) -> bytes:
        if self._kernel_emptied:
            await trio.lowlevel.wait_readable(self._sock)
        data = await recv_raw(self._sock)
        self._kernel_emptied = len(data) < RECV_BYTES
        return data

    def _ingest(self, raw: bytes) -> bool:
        """Bytes read from the socket (b"": its end) into the queue; True when they gave only
        whole data messages (nothing for a task: no frame the protocol saw, nothing owed)."""
        tls = self._tls
        if tls is None:
            if raw:
                return not self._take(raw)
            self._end_of_stream()
            return False
        try:
            plain = tls.open(raw)
        except TransportClosed as exc:
            self.abort(exc.reason)
            return False
        fed = bool(plain) and self._take(plain)
        if tls.eof:  # close_notify or the socket's end: the stream's end either way
            self._end_of_stream()
            return False
        return not fed and not tls.pending

    def _take(self, data: bytes) -> bool:
        """Received plaintext into the inbox; True when the protocol saw some of it (a task's, then)."""
        if self._in.take(data, self._state is OPEN):
            self._sync()
            return True
        return False

    def _end_of_stream(self) -> None:
        self._in.end()
        self._sync()

    def _sync(self) -> None:
        """After every call into the protocol: the hot path asks only our own state."""
        self._state = synced(self._state, self._proto.state)

    def _owes(self) -> bool:
        """The peer is owed bytes the protocol or TLS made (an answer, the EOF, a key update)."""
        return bool(self._in.out) or (self._tls is not None and self._tls.pending)

    # ---- bytes out --------------------------------------------------------------------

    def _send_now(self, data: bytes) -> None:
        """One non-blocking send of wire bytes; what the kernel does not take waits in the backlog."""
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise self._broken(exc) from None
        if sent != len(data):
            self._backlog = memoryview(data)[sent:]

    async def _send_owed(self) -> None:
        inbox = self._in
        out, inbox.out = inbox.out, []
        await self._write(out)  # over TLS, also what TLS itself owes

    async def _write(self, chunks: Sequence[bytes]) -> None:
        eof = b"" in chunks  # what websockets' data_to_send() yields for "half-close the socket now"
        data = b"".join(chunks) if len(chunks) != 1 else chunks[0]
        if self._tls is not None:
            data = self._tls.seal(data)  # sealed in the order written; the send lock keeps that order
        if data and self._backlog is None and not self._send_lock.locked():
            self._send_now(data)  # the common case: all of it goes now, or the rest is a backlog
            data = b""
        if data or self._backlog is not None:  # a partial write is finishing: queue behind it
            try:
                async with self._send_lock:
                    backlog, self._backlog = self._backlog, None
                    if backlog is not None:
                        await self._send_bounded(backlog)
                    if data:
                        await self._send_bounded(memoryview(data))
            except (OSError, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
                raise self._broken(exc) from None
        if eof:
            with suppress(OSError):  # the peer went first: nothing left to half-close
                self._sock.shutdown(socket.SHUT_WR)

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
        if self._cut is not None:
            return TransportClosed(self._cut.code, self._cut.reason)
        return TransportClosed(1006, "connection dropped without a close frame")

    def _broken(self, exc: BaseException) -> TransportClosed:
        """What a failed socket call means: the close's reason when we let go of the fd meanwhile."""
        return self._closed_exc() if self._state not in LIVE else TransportClosed(1006, f"socket error: {exc}")

    def _let_go(self, final: ConnectionState) -> None:
        """Into ``final`` and the fd closed: out of the hub first (an epoll set must never hold
        a closed fd), then every task waiting on the fd woken."""
        if self._state not in LIVE:
            return
        self._state = moved(self._state, final)
        self._unpark()
        with suppress(RuntimeError):  # outside a Trio run: nobody can be waiting on the fd
            trio.lowlevel.notify_closing(self._sock)
        self._sock.close()
