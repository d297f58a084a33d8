"""A lean load generator for the relay benches: fake Twilio callers and a fake OpenAI in one loop.

Why not the simulator (llc/sim)? FakeCaller and FakeOpenAI synthesise audio and run a VAD: right
for behaviour tests, far too heavy to drive hundreds of calls at 50 frames/s each way from the
same 2-core box as the server. This driver does the minimum per frame, in one thread over one
``selectors`` loop, with its own tiny WebSocket framing (client frames use the all-zero mask
key, which RFC 6455 permits, so masking costs nothing here; the server still unmasks).

One clock for both sides: every payload carries the time it was sent (``perf_counter_ns``) and
a sequence number in its first 12 bytes. The fake caller stamps Twilio ``media`` frames and the
fake OpenAI reads the stamp back out of ``input_audio_buffer.append``; the fake OpenAI stamps
audio deltas and the caller reads them out of the server's ``media`` frames. Both sides live in
this process, so ``now - stamp`` is the time the frame spent crossing loopback twice plus the
server. An echo server measured in the same run gives the floor for "loopback twice".

Not on the product path: nothing in llc/ imports this outside the bench commands.
"""

from __future__ import annotations

import base64
import hashlib
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
FRAME_MS = 20
SLOTS = FRAME_MS  # callers are spread over the 20 ms frame period in 1 ms slots, like real calls
_STAMP = struct.Struct("<qI")  # send time (ns), sequence number
_FILL = b"\xff" * (160 - _STAMP.size)  # mu-law silence: a real 20 ms frame is 160 bytes
_STAMP_B64 = 16  # base64 characters that hold the 12 stamp bytes

CALLER_MEDIA = (b'{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":'
                b'{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"}}')
OPENAI_DELTA = (b'{"type":"response.output_audio.delta","event_id":"ev","response_id":"resp%d",'
                b'"item_id":"item%d","output_index":0,"content_index":0,"delta":"%s"}')
# Barge-in (--barge-every): the fake OpenAI says the caller started talking over the agent, in the
# middle of a mark period (so the server knows audio is still playing) and then starts a new item,
# as the service does once the caller's turn is answered: nothing in flight is lost.
SPEECH_STARTED = b'{"type":"input_audio_buffer.speech_started","event_id":"ev","audio_start_ms":0,"item_id":"user"}'
BARGE_AT_FRAME = 3  # of every 5 deltas: never on a mark boundary (marks are 100 or 500 ms apart)
_TAG = struct.Struct("<I")  # a caller's payload carries its index after the stamp: the fake OpenAI pairs them


def stamped_payload(seq: int, tag: int | None = None) -> bytes:
    """160 bytes of mu-law whose first 12 carry (send time, seq), then ``tag``; base64-encoded."""
    rest = _FILL if tag is None else _TAG.pack(tag) + _FILL[_TAG.size:]
    return base64.b64encode(_STAMP.pack(time.perf_counter_ns(), seq) + rest)


def _payload_head(msg: bytes, key: bytes, chars: int) -> bytes | None:
    """The first bytes of the base64 string after ``key`` in a JSON message, without parsing it."""
    i = msg.find(key)
    if i < 0:
        return None
    i += len(key)
    return base64.b64decode(msg[i : i + chars])


def read_tag(msg: bytes, key: bytes) -> int | None:
    """The ``tag`` of a stamped payload after ``key`` (24 base64 characters hold stamp + tag)."""
    head = _payload_head(msg, key, 24)
    return None if head is None else int(_TAG.unpack(head[_STAMP.size : _STAMP.size + _TAG.size])[0])


def read_stamp(msg: bytes, key: bytes) -> tuple[int, int] | None:
    """(sent_ns, seq) from the base64 string after ``key`` in a JSON message, without parsing it."""
    head = _payload_head(msg, key, _STAMP_B64)
    return None if head is None else _STAMP.unpack(head)


def encode_frame(opcode: int, payload: bytes, *, client: bool) -> bytes:
    n = len(payload)
    mask_bit = 0x80 if client else 0
    if n < 126:
        head = bytes((0x80 | opcode, mask_bit | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, mask_bit | 127)) + n.to_bytes(8, "big")
    # Client frames must be masked; the zero key leaves the payload as it is.
    return head + b"\0\0\0\0" + payload if client else head + payload


def _unmask(key: bytes, data: bytes) -> bytes:
    n = len(data)
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


class FrameReader:
    """Incremental WebSocket frame parser; reassembles fragmented messages."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._parts: list[bytes] = []
        self._part_op = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self.buf
        buf += data
        out: list[tuple[int, bytes]] = []
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, pos = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, pos = int.from_bytes(buf[2:10], "big"), 10
            key = b""
            if b1 & 0x80:
                key, pos = bytes(buf[pos : pos + 4]), pos + 4
            if len(buf) < pos + n:
                break
            payload = bytes(buf[pos : pos + n])
            del buf[: pos + n]
            if key and key != b"\0\0\0\0":
                payload = _unmask(key, payload)
            op, fin = b0 & 0x0F, b0 & 0x80
            if op == OP_CONT or not fin and op in (OP_TEXT, OP_BINARY):
                if op != OP_CONT:
                    self._part_op = op
                self._parts.append(payload)
                if fin:
                    out.append((self._part_op, b"".join(self._parts)))
                    self._parts = []
                continue
            out.append((op, payload))
        return out


@dataclass
class Conn:
    """One socket of the load generator and what it is for."""

    sock: socket.socket
    kind: str  # "caller" | "openai" | "echo"
    client: bool
    index: int = 0
    state: str = "handshake"  # handshake -> open -> closed
    reader: FrameReader = field(default_factory=FrameReader)
    head: bytes = b""
    out: bytearray = field(default_factory=bytearray)
    slot: int = 0
    seq: int = 0  # frames sent
    got: int = 0  # stamped frames received
    next_seq: int = 0  # the sequence number expected next (order check)
    out_of_order: int = 0
    live: bool = False  # openai: session.updated sent; caller: start sent
    stream_sid: bytes = b""
    peer: Conn | None = None  # openai: the caller whose audio it gets (barge-ins only)
    item: int = 0  # openai: the agent item its deltas belong to; a new one after each barge-in
    item_frames: int = 0
    next_barge: float = 0.0
    barge_sent_ns: int = 0  # caller: when its session sent speech_started, until the clear arrives


@dataclass
class Samples:
    """Per-direction latencies in µs, recorded only while ``measuring``."""

    to_openai: list[float] = field(default_factory=list)
    to_twilio: list[float] = field(default_factory=list)
    echo_rtt: list[float] = field(default_factory=list)
    bargein: list[float] = field(default_factory=list)  # speech_started sent -> clear at the caller


class LoadGen:
    """N fake callers + one fake OpenAI listener + echo probes, driven by ``run_for``."""

    def __init__(self, host: str = "127.0.0.1", barge_every_s: float = 0.0) -> None:
        self.barge_every_s = barge_every_s  # 0: no barge-ins
        self.barges_sent = self.barges_cleared = 0  # in the measured window
        self.sel = selectors.DefaultSelector()
        self.host = host
        self.listener = socket.create_server((host, 0), backlog=4096)
        self.listener.setblocking(False)
        self.openai_port = self.listener.getsockname()[1]
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.callers: list[Conn] = []
        self.sessions: list[Conn] = []
        self.echoes: list[Conn] = []
        self.samples = Samples()
        self.sending = False
        self.measuring = False
        self.window_start_ns = 0
        self.errors: list[str] = []
        self.fail_fast = True  # stop waiting at the first error (off while hanging up)
        self.closed_by_server = 0
        self.tick_lag_ms_max = 0.0
        self.late_ticks = 0
        self.marks_echoed = 0  # marks the fake callers sent back, as Twilio does
        self._tick = 0
        self._next_tick = time.perf_counter()

    @property
    def openai_url(self) -> str:
        return f"ws://{self.host}:{self.openai_port}/v1/realtime"

    # ---- opening connections ------------------------------------------------------------

    def _connect(self, url: str, kind: str, index: int) -> Conn:
        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        key = base64.b64encode(os.urandom(16))
        request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        conn = Conn(sock, kind, client=True, index=index, slot=index % SLOTS)
        self.sel.register(sock, selectors.EVENT_READ, conn)
        self._send(conn, request.encode())
        return conn

    def open_calls(self, n: int, media_url: str, *, per_batch: int = 25, timeout: float = 60.0) -> None:
        """Open ``n`` calls (upgrade + connected + start) and wait until every session is live."""
        start = len(self.callers)
        for i in range(start, start + n):
            self.callers.append(self._connect(media_url, "caller", i))
            if (i - start + 1) % per_batch == 0:
                self.run_for(0.02)
        self.wait_until(lambda: sum(s.live for s in self.sessions) >= len(self.callers), timeout,
                        "every call's OpenAI session to go live")

    def open_echo(self, n: int, url: str, timeout: float = 10.0) -> None:
        for i in range(n):
            self.echoes.append(self._connect(url, "echo", i * (SLOTS // max(n, 1)) + 7))
        self.wait_until(lambda: all(e.state == "open" for e in self.echoes), timeout, "the echo server")

    # ---- the loop -----------------------------------------------------------------------

    def wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.perf_counter() + timeout
        while not done():
            if self.errors and self.fail_fast:
                raise RuntimeError(f"while waiting for {what}: {self.errors[0]}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
            self.run_for(0.01)

    def run_for(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        select, tick = self.sel.select, FRAME_MS / SLOTS / 1000
        while True:
            now = time.perf_counter()
            if now >= end:
                return
            if now >= self._next_tick:
                lag = now - self._next_tick
                if lag > 0.005:
                    self.late_ticks += 1
                self.tick_lag_ms_max = max(self.tick_lag_ms_max, lag * 1000)
                if lag > 0.1:  # far behind (e.g. after a pause): do not burst, resync
                    self._next_tick = now
                self._on_tick()
                self._tick += 1
                self._next_tick += tick
                continue
            for key, _ in select(min(self._next_tick, end) - now):
                if key.data is None:
                    self._accept()
                else:
                    self._on_readable(key.data)

    def _on_tick(self) -> None:
        if not self.sending:
            return
        slot = self._tick % SLOTS
        for c in self.callers:
            if c.slot == slot and c.live and c.state == "open":
                self._send_caller_media(c)
        barging = self.barge_every_s > 0
        for s in self.sessions:
            if s.slot == slot and s.live and s.state == "open":
                self._send(s, encode_frame(OP_TEXT, OPENAI_DELTA % (s.item, s.item, stamped_payload(s.seq)), client=False))
                s.seq += 1
                s.item_frames += 1
                if barging and s.item_frames % 5 == BARGE_AT_FRAME:
                    self._maybe_barge(s)
        for e in self.echoes:
            if e.slot == slot and e.state == "open":
                self._send(e, encode_frame(OP_TEXT, b'{"payload":"%s"}' % stamped_payload(e.seq), client=True))
                e.seq += 1

    def _maybe_barge(self, s: Conn) -> None:
        if s.peer is None:  # not paired with its caller yet
            return
        now = time.perf_counter()
        if not s.next_barge:  # first time: spread the sessions' barge-ins over the period
            s.next_barge = now + self.barge_every_s * (s.index % SLOTS + 1) / SLOTS
        if now < s.next_barge:
            return
        s.next_barge = now + self.barge_every_s
        s.peer.barge_sent_ns = time.perf_counter_ns()
        self._send(s, encode_frame(OP_TEXT, SPEECH_STARTED, client=False))
        s.item, s.item_frames = s.item + 1, 0
        if self.measuring:
            self.barges_sent += 1

    def _send_caller_media(self, c: Conn) -> None:
        seq = c.seq
        tag = c.index if self.barge_every_s else None
        text = CALLER_MEDIA % (seq + 2, c.stream_sid, seq + 1, seq * FRAME_MS, stamped_payload(seq, tag))
        self._send(c, encode_frame(OP_TEXT, text, client=True))
        c.seq = seq + 1

    def _send(self, c: Conn, data: bytes) -> None:
        if c.out:  # the kernel buffer was full before: keep order
            c.out += data
            return
        try:
            sent = c.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._drop(c, f"send failed: {exc}")
            return
        if sent < len(data):
            c.out += data[sent:]
            self.sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    def _flush(self, c: Conn) -> None:
        try:
            sent = c.sock.send(c.out)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(c, f"send failed: {exc}")
            return
        del c.out[:sent]
        if not c.out:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            conn = Conn(sock, "openai", client=False, index=len(self.sessions))
            conn.slot = (conn.index + SLOTS // 2) % SLOTS
            self.sessions.append(conn)
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def _on_readable(self, c: Conn) -> None:
        if c.out:
            self._flush(c)
        try:
            data = c.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(c, f"recv failed: {exc}")
            return
        if not data:
            self._drop(c, "")
            return
        if c.state == "handshake":
            c.head += data
            end = c.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = c.head[:end], c.head[end + 4 :]
            c.head = b""
            if not self._handshake(c, head):
                return
            if not data:
                return
        for op, payload in c.reader.feed(data):
            if op == OP_TEXT or op == OP_BINARY:
                self._on_message(c, payload)
            elif op == OP_PING:
                self._send(c, encode_frame(OP_PONG, payload, client=c.client))
            elif op == OP_CLOSE:
                if c.kind != "openai" or c.live:
                    self.closed_by_server += c.kind == "openai"
                self._send(c, encode_frame(OP_CLOSE, payload[:2], client=c.client))
                self._drop(c, "")
                return

    def _handshake(self, c: Conn, head: bytes) -> bool:
        if c.client:
            if not head.startswith(b"HTTP/1.1 101"):
                status = head.split(b"\r\n", 1)[0].decode(errors="replace")
                self._drop(c, f"{c.kind} upgrade refused: {status}")
                return False
            c.state = "open"
            if c.kind == "caller":
                self._start_call(c)
            return True
        key = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self._send(c, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        c.state = "open"
        self._send(c, encode_frame(OP_TEXT, b'{"type":"session.created","event_id":"ev0","session":{}}', client=False))
        return True

    def _start_call(self, c: Conn) -> None:
        c.stream_sid = b"MZbench%06d" % c.index
        call_sid = f"CAbench{c.index:06d}"
        self._send(c, encode_frame(OP_TEXT, b'{"event":"connected","protocol":"Call","version":"1.0.0"}', client=True))
        start = orjson.dumps({
            "event": "start", "sequenceNumber": "1", "streamSid": c.stream_sid.decode(),
            "start": {"streamSid": c.stream_sid.decode(), "accountSid": "ACbench", "callSid": call_sid,
                      "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                      "customParameters": {"direction": "inbound", "scenario": "default"}},
        })
        self._send(c, encode_frame(OP_TEXT, start, client=True))
        c.live = True

    def _on_message(self, c: Conn, msg: bytes) -> None:
        kind = c.kind
        if msg[:10] in (b'{"type": "', b'{"event": '):
            # stdlib json.dumps's spaced style (the reference relay): compact it once, so the
            # prefix checks below read every relay's frames alike.
            msg = orjson.dumps(orjson.loads(msg))
        if kind == "openai":
            stamp = read_stamp(msg, b'"audio":"') if msg.startswith(b'{"type":"input_audio_buffer.append"') else None
            if stamp is not None:
                self._record(c, stamp, self.samples.to_openai)
                if c.peer is None and self.barge_every_s:
                    tag = read_tag(msg, b'"audio":"')
                    if tag is not None and 0 <= tag < len(self.callers):
                        c.peer = self.callers[tag]
                return
            try:
                event = orjson.loads(msg)
            except orjson.JSONDecodeError:
                self.errors.append(f"fake OpenAI got a frame that is not JSON: {msg[:80]!r}")
                return
            if event.get("type") == "session.update":
                self._send(c, encode_frame(OP_TEXT, b'{"type":"session.updated","event_id":"ev1","session":{}}', client=False))
                c.live = True
            return
        if kind == "caller":
            if msg.startswith(b'{"event":"media"'):
                stamp = read_stamp(msg, b'"payload":"')
                if stamp is not None:
                    self._record(c, stamp, self.samples.to_twilio)
            elif msg.startswith(b'{"event":"clear"') and c.barge_sent_ns:
                if self.measuring and c.barge_sent_ns >= self.window_start_ns:
                    self.samples.bargein.append((time.perf_counter_ns() - c.barge_sent_ns) / 1000)
                    self.barges_cleared += 1
                c.barge_sent_ns = 0
            elif msg.startswith(b'{"event":"mark"'):
                # Twilio echoes every mark (when the audio before it has played; here at once:
                # the server's cost per echo is the same). The frame's shape is Twilio's.
                self._send(c, encode_frame(OP_TEXT, msg, client=True))
                self.marks_echoed += 1
            return
        stamp = read_stamp(msg, b'"payload":"')  # echo
        if stamp is not None:
            self._record(c, stamp, self.samples.echo_rtt)

    def _record(self, c: Conn, stamp: tuple[int, int], into: list[float]) -> None:
        sent_ns, seq = stamp
        c.got += 1
        if seq != c.next_seq:
            c.out_of_order += 1
        c.next_seq = seq + 1
        if self.measuring and sent_ns >= self.window_start_ns:
            into.append((time.perf_counter_ns() - sent_ns) / 1000)

    def _drop(self, c: Conn, why: str) -> None:
        if c.state == "closed":
            return
        if why:
            self.errors.append(f"{c.kind} {c.index}: {why}")
        c.state = "closed"
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    # ---- phases -------------------------------------------------------------------------

    def start_window(self) -> None:
        self.samples = Samples()
        self.window_start_ns = time.perf_counter_ns()
        self.measuring = True
        self.marks_echoed = 0
        self.barges_sent = self.barges_cleared = 0

    def hang_up_all(self, timeout: float = 15.0) -> None:
        """Send Twilio ``stop`` on every call and wait for the server to close both legs."""
        self.fail_fast = False
        for c in self.callers:
            if c.state == "open":
                stop = b'{"event":"stop","sequenceNumber":"%d","streamSid":"%s","stop":{"accountSid":"ACbench","callSid":"CAbench%06d"}}' % (
                    c.seq + 2, c.stream_sid, c.index)
                self._send(c, encode_frame(OP_TEXT, stop, client=True))
        try:
            self.wait_until(lambda: all(s.state == "closed" for s in self.sessions + self.callers), timeout,
                            "the server to close every call")
        except TimeoutError:
            callers = sum(c.state != "closed" for c in self.callers)
            sessions = sum(s.state != "closed" for s in self.sessions)
            self.errors.append(f"{timeout:g} s after hanging up, the server still held {callers} Twilio "
                               f"and {sessions} OpenAI sockets open")

    def close(self) -> None:
        for c in self.callers + self.sessions + self.echoes:
            if c.state != "closed":
                c.state = "closed"
                c.sock.close()
        self.sel.close()
        self.listener.close()

    def lost(self) -> tuple[int, int]:
        """Frames sent but never received, (to OpenAI, to Twilio); call after a drain."""
        sent_in = sum(c.seq for c in self.callers)
        got_in = sum(s.got for s in self.sessions)
        sent_out = sum(s.seq for s in self.sessions)
        got_out = sum(c.got for c in self.callers)
        return sent_in - got_in, sent_out - got_out

    def out_of_order(self) -> int:
        return sum(c.out_of_order for c in self.callers + self.sessions)
