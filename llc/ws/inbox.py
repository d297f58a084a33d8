"""Frames in: received plaintext to messages, sans-I/O like the protocol it wraps.

Why not hand everything to websockets: its generator-based parser was a sixth of the relay's
Python calls per frame. A whole, final, unfragmented text or binary frame with the right mask
bit, and a short pong (nearly every frame of a call), is cut here; anything else (other
control frames, fragments, reserved bits, a wrong mask, an oversized length) goes to the
protocol as whole frames, so its parser always sits on a frame boundary and it keeps doing
every check and answer (pong, close, 1002/1009 failures) itself.
"""

from __future__ import annotations

from collections import deque

from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from llc.ws.transport import TransportClosed

try:
    from websockets.speedups import apply_mask
except ImportError:  # no C extension on this platform: the pure-Python one is correct, slower
    from websockets.utils import apply_mask

NEEDS_MORE = -1  # cut(): no further whole frame in the buffer
OVER_LIMIT = -2  # cut(): the frame's declared length is over the limit


def cut(buf: bytes, i: int, out: deque[bytes | Frame], mask_bit: int, limit: int | None,
        in_message: bool) -> tuple[int, int, int]:
    """Cut whole data frames from ``buf[i:]`` into ``out`` until a frame the protocol must see.

    ``mask_bit``: what the peer's frames must carry (RFC 6455 5.1); ``in_message``: the protocol
    holds part of a fragmented message, so data frames are its to check. Returns ``(i, end,
    pongs)``: where the cut stopped; where the frame at ``i`` ends when the protocol must see
    it (``NEEDS_MORE``: no whole frame left; ``OVER_LIMIT``: refuse it before it is buffered);
    and how many short pongs were counted (nothing answers a pong, so they stay here).
    """
    n, pongs, append = len(buf), 0, out.append
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
            return i, OVER_LIMIT, pongs
        if b1 & 0x80:
            head += 4
        end = i + head + length
        if end > n:
            break
        if (b0 == 0x81 or b0 == 0x82) and (b1 & 0x80) == mask_bit and not in_message:
            if mask_bit:
                append(apply_mask(buf[i + head : end], buf[i + head - 4 : i + head]))
            else:
                append(buf[i + head : end])
        elif b0 == 0x8A and length < 126 and (b1 & 0x80) == mask_bit:
            pongs += 1
        else:
            return i, end, pongs
        i = end
    return i, NEEDS_MORE, pongs


def frame_size(buf: bytes) -> int:
    """The whole size of the frame ``buf`` starts with, header included; 0 while its header is partial."""
    n = len(buf)
    if n < 2:
        return 0
    b1 = buf[1]
    length, head = b1 & 0x7F, 2
    if length == 126:
        if n < 4:
            return 0
        length, head = int.from_bytes(buf[2:4], "big"), 4
    elif length == 127:
        if n < 10:
            return 0
        length, head = int.from_bytes(buf[2:10], "big"), 10
    return head + (4 if b1 & 0x80 else 0) + length


class Inbox:
    """One socket's received plaintext: messages for the reader, and what the protocol owes back.

    The engine tells ``take`` whether the connection is still open (it keeps that state
    itself); once a close frame of ours is out, every byte is the protocol's.
    """

    def __init__(self, proto: Protocol) -> None:
        self.proto = proto
        # Ready for the reader: bytes (cut here) or the protocol's frames (anything else), in order.
        self.frames: deque[bytes | Frame] = deque()
        self.out: list[bytes] = []  # what the protocol owes the peer (a pong, a close, the EOF), unsent
        self.pongs = 0  # pongs received: liveness for the pings the engine sent
        # Received bytes not yet a whole frame, as they came (always starting on a frame boundary):
        # joined once, when the frame is whole, so a large frame sent in small pieces costs
        # O(frame), not a copy of everything held at every read.
        self._parts: list[bytes] = []
        self._held = 0  # bytes in _parts
        self._need = 0  # bytes the partial frame needs in all (0: its header is not whole yet)
        self._fragments: list[bytes] = []
        self._mask_bit = 0 if proto.side is Side.CLIENT else 0x80  # what the peer's frames carry (RFC 6455 5.1)

    def take(self, data: bytes, cutting: bool) -> bool:
        """Received plaintext in; True when the protocol saw some of it (the engine syncs then).

        ``cutting``: the connection is open, so whole data frames are cut here; otherwise a
        close frame of ours is out and every byte is the protocol's, the partial frame first.
        """
        if self._parts:
            self._parts.append(data)
            self._held += len(data)
            if cutting and self._held < self._need:
                return False  # still partial: nothing to cut yet
            buf = b"".join(self._parts)
            self._hold(b"")
        else:
            buf = data
        if not cutting:
            self._to_protocol(buf)
            return True
        proto = self.proto
        fed, i = False, 0
        while True:
            i, end, pongs = cut(buf, i, self.frames, self._mask_bit, proto.max_message_size,
                                proto.current_size is not None)
            if pongs:
                self.pongs += pongs
            if end == NEEDS_MORE:
                self._hold(buf[i:] if i else buf)
                return fed
            fed = True
            if end == OVER_LIMIT:
                # To the protocol now, to be refused (1009) before it is buffered: that fails
                # the connection, and every later byte is the protocol's too.
                self._to_protocol(buf[i:])
                return True
            self._to_protocol(buf[i:end])
            if proto.state is not State.OPEN:  # a close frame, or a frame that failed the connection
                if end < len(buf):
                    self._to_protocol(buf[end:])
                return True
            i = end

    @property
    def held(self) -> int:
        """Bytes of a partial frame waiting for the rest."""
        return self._held

    def _hold(self, rest: bytes) -> None:
        """Keep ``rest`` (the start of a frame, or nothing) until the frame is whole."""
        self._parts = [rest] if rest else []
        self._held, self._need = len(rest), frame_size(rest)

    def end(self) -> None:
        """The stream's end (the socket's, or TLS's): the protocol decides what it means."""
        self.proto.receive_eof()
        self.collect()

    def collect(self) -> None:
        """After any call into the protocol: its frames queued, what it owes kept."""
        proto = self.proto
        self.frames.extend(e for e in proto.events_received() if isinstance(e, Frame))  # only frames after the handshake
        self.out += proto.data_to_send()

    def _to_protocol(self, data: bytes) -> None:
        self.proto.receive_data(data)
        self.collect()

    def message(self) -> bytes | None:
        """The next message, fragments joined and pongs counted; None when none is queued.

        Raises TransportClosed when the queue reaches the peer's close frame.
        """
        frames = self.frames
        while frames:
            frame = frames.popleft()
            if isinstance(frame, bytes):
                return frame
            op = frame.opcode
            if op is Opcode.TEXT or op is Opcode.BINARY:
                if frame.fin:
                    return bytes(frame.data)
                self._fragments = [bytes(frame.data)]
            elif op is Opcode.CONT:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    data, self._fragments = b"".join(self._fragments), []
                    return data
            elif op is Opcode.CLOSE:
                rcvd = self.proto.close_rcvd  # set with every close frame the protocol passes on
                raise TransportClosed(rcvd.code if rcvd else 1005, rcvd.reason if rcvd else "")
            elif op is Opcode.PONG:
                self.pongs += 1
            # PING is answered by the protocol (its pong is in ``out``).
        return None
