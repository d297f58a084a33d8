"""A fake Twilio caller: what Twilio does on a call whose TwiML is ``<Connect><Stream>``.

Offline tests, the demo and the benchmarks need a phone call without a phone. This
module POSTs the voice webhook like Twilio, reads the TwiML, opens the bidirectional
Media Stream and then behaves like the real thing: a 20 ms frame every 20 ms whether
or not anyone speaks, agent audio played out in real time, ``mark`` frames echoed only
once the audio before them has played, ``clear`` honoured at once. A script of caller
turns (speech, DTMF, barge-in) drives it, and every timing the latency work cares about
is recorded in a :class:`CallResult`. Frame shapes follow Twilio's Media Streams documentation.
"""

from __future__ import annotations

import base64
import binascii
import random
import secrets
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import trio
import trio_websocket
from twilio.request_validator import RequestValidator

from llc.kit.sim.audio import BYTES_PER_MS, FRAME_MS, frames, silence, speech_like, speech_ms_for_text
from llc.kit.sim.client_tls import client_tls
from llc.kit.sim.malformed import malformed_frame
from llc.kit.sim.playout_clock import Playout

FRAME_S = FRAME_MS / 1000
FIRST_TURN_SILENCE_MS = 300  # caller says "hello" about this long after the line opens
DTMF_GAP_FRAMES = 5  # ~100 ms between key presses
_SILENCE_B64 = base64.b64encode(silence(FRAME_MS)).decode()


class FakeCallerError(RuntimeError):
    """The server under test did something a real Twilio call could not get past."""


@dataclass
class CallerTurn:
    """One thing the caller does. Speech is synthetic (speech_like), only its length matters."""

    text: str  # speech_ms_for_text(text) ms of speech, unless speech_ms is given
    speech_ms: int | None = None
    barge_in_after_ms: int | None = None  # None: let the agent finish; N: talk over it after N ms PLAYED
    dtmf: str | None = None  # keys pressed first; with empty text the turn is keys only


@dataclass
class CallerScript:
    turns: list[CallerTurn]
    wait_first_reply: bool = False  # greeting scenarios: the agent speaks first
    agent_done_silence_ms: int = 600  # this much empty playout ends an agent reply
    reply_timeout_s: float = 8.0  # no reply audio by then: recorded (TurnTiming.timed_out), not raised
    hangup: bool = True  # False: after the last reply, wait for the server to close
    max_call_s: float = 30.0  # hard bound on the whole call (ended_by="timeout")


@dataclass
class TurnTiming:
    speech_end: float | None
    first_audio: float | None
    timed_out: bool = False  # no agent reply started within reply_timeout_s

    @property
    def voice_to_voice_ms(self) -> float | None:
        """Caller stops talking -> first agent audio arrives: the latency the project is named for."""
        if self.speech_end is None or self.first_audio is None:
            return None
        return (self.first_audio - self.speech_end) * 1000


@dataclass
class CallResult:
    call_sid: str
    stream_sid: str
    twiml: str
    stream_url: str
    parameters: dict[str, str]
    received_payloads: list[str]
    received_audio: bytes
    heard_audio_ms: int  # agent audio actually played (cleared audio is not heard)
    marks_echoed: list[str]
    clears: list[float]
    media_times: list[float]  # arrival time of each received media frame (trio clock)
    barge_in_starts: list[float]  # when each barge-in turn's first speech frame was sent
    audio_after_each_barge_in_ms: list[int]  # audio_after_clear_ms, split per barge-in
    audio_after_clear_ms: int  # talked-over agent audio that still played after a barge-in began
    turns: list[TurnTiming]
    close_code: int | None
    ended_by: str
    events: list[str] = field(default_factory=list)  # oddities seen (timeouts, bad frames), for humans


@dataclass
class _Reply:
    """An agent reply being waited for, anchored where the caller stopped talking."""

    label: str  # "turn N" or "the greeting", for the events log
    anchor_played: int  # playout.played_bytes at speech end
    deadline: float  # give up if nothing has arrived by then
    timing: TurnTiming | None = None
    first_audio: float | None = None


def parse_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    """Return the ``<Connect><Stream>`` URL and its ``<Parameter>``s, as Twilio reads them."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise FakeCallerError(f"TwiML is not XML ({exc}): {twiml!r}") from exc
    stream = root.find("./Connect/Stream") if root.tag == "Response" else None
    if stream is None or not stream.get("url"):
        raise FakeCallerError(f"TwiML has no <Response><Connect><Stream url=...>: {twiml!r}")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), params


class FakeCaller:
    """One scripted phone call against a server, through webhook and Media Stream."""

    _ended_by: str | None  # why the call ended (None while it runs); set by _reset
    _scope: trio.CancelScope  # the running call's scope; set by _reset

    def __init__(
        self,
        base_url: str,
        script: CallerScript,
        *,
        call_sid: str | None = None,
        account_sid: str = "AC" + "0" * 32,
        from_number: str = "+15550100001",
        to_number: str = "+15550100002",
        auth_token: str | None = None,
        twiml_path: str = "/twiml",
        extra_params: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.script = script
        self.call_sid = call_sid or "CA" + secrets.token_hex(16)
        self.account_sid = account_sid
        self.from_number = from_number
        self.to_number = to_number
        self.auth_token = auth_token
        self.twiml_path = twiml_path
        self.extra_params = dict(extra_params or {})
        self.stream_sid = "MZ" + secrets.token_hex(16)

    def _sign(self, url: str, params: dict[str, str]) -> str:
        assert self.auth_token is not None
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    async def run(self) -> CallResult:
        """Place the call: webhook, TwiML, then the stream (see :meth:`run_stream`)."""
        deadline = trio.current_time() + self.script.max_call_s
        url = self.base_url + self.twiml_path
        params = {
            "CallSid": self.call_sid, "AccountSid": self.account_sid, "From": self.from_number,
            "To": self.to_number, "Direction": "inbound", "CallStatus": "ringing",
            "ApiVersion": "2010-04-01", **self.extra_params,
        }
        headers = {"X-Twilio-Signature": self._sign(url, params)} if self.auth_token else {}
        with trio.move_on_at(deadline) as scope:
            async with httpx.AsyncClient(timeout=10.0, verify=client_tls()) as client:
                resp = await client.post(url, data=params, headers=headers)
        if scope.cancelled_caught:
            raise FakeCallerError(f"TwiML webhook {url} did not answer within max_call_s")
        if resp.status_code != 200:
            raise FakeCallerError(f"TwiML webhook {url} answered HTTP {resp.status_code}: {resp.text[:300]!r}")
        stream_url, parameters = parse_twiml(resp.text)
        return await self._call(stream_url, parameters, resp.text, deadline)

    async def run_stream(self, stream_url: str, parameters: dict[str, str]) -> CallResult:
        """Open the Media Stream directly (outbound calls whose TwiML came some other way)."""
        return await self._call(stream_url, parameters, "", trio.current_time() + self.script.max_call_s)

    async def inject(self, fault: str, count: int = 10, seed: int = 0) -> None:
        """Twilio's side misbehaving, on command: ``garbage`` sends ``count`` malformed frames,
        ``stall`` stops the 20 ms media clock until ``resume``, ``drop`` cuts the TCP connection
        without a close handshake or ``stop`` (a network failure)."""
        if fault == "garbage":
            rng = random.Random(seed)
            for _ in range(count):
                frame = malformed_frame(rng, self.stream_sid)
                async with self._send_lock:
                    await self._ws.send_message(frame)
        elif fault == "stall":
            self._stalled = True
        elif fault == "resume":
            self._stalled = False
        elif fault == "drop":
            self._ended_by = self._ended_by or "dropped"
            await self._ws._stream.aclose()  # trio-websocket has no abort: close the TCP stream under it
            self._scope.cancel()
        else:
            raise ValueError(f"unknown fault {fault!r}; one of garbage, stall, resume, drop")

    def hang_up(self, reason: str = "ended_by_api") -> None:
        """Twilio ends the stream from its side (REST hang-up or redirect): ``stop``, then close."""
        if getattr(self, "_ended_by", "not running") is None:
            self._ended_by, self._remote_stop = reason, True
            self._events.append(f"stream ended by Twilio: {reason}")
            self._scope.cancel()

    # -- the call ---------------------------------------------------------------------

    def _reset(self) -> None:
        self._playout = Playout()
        self._seq = 1
        self._chunk = 0
        self._send_lock = trio.Lock()  # FIFO: sequence numbers go out in order
        self._stalled = False  # a "stall" fault: the media clock sends nothing
        self._stopped = False
        self._ended_by = None
        self._remote_stop = False
        self._scope = trio.CancelScope()
        self._close_code: int | None = None
        self._payloads: list[str] = []
        self._media_times: list[float] = []
        self._barge_starts: list[float] = []
        self._after_each: list[int] = []  # talked-over bytes played, per barge-in
        self._audio = bytearray()
        self._marks_echoed: list[str] = []
        self._clears: list[float] = []
        self._events: list[str] = []
        self._turns: list[TurnTiming] = []
        self._outq: deque[tuple[str, str]] = deque()  # ("media", b64) | ("dtmf", digit)
        self._reply: _Reply | None = None
        self._speaking: TurnTiming | None = None
        self._spoken = trio.Event()
        self._barge_pending = False
        self._barging = False
        self._barge_limit: int | None = None  # playout position where the talked-over audio ends
        self._after_clear_bytes = 0
        self._tick_event = trio.Event()
        self._turn_audio = [self._utterance(t, i) for i, t in enumerate(self.script.turns)]

    def _utterance(self, turn: CallerTurn, index: int) -> list[tuple[str, str]]:
        """Pre-encode a turn's frames so the 20 ms ticker never waits on synthesis."""
        items: list[tuple[str, str]] = []
        for j, digit in enumerate(turn.dtmf or ""):
            items += [("media", _SILENCE_B64)] * (DTMF_GAP_FRAMES if j else 0) + [("dtmf", digit)]
        ms = turn.speech_ms
        if ms is None:
            ms = 0 if turn.dtmf and not turn.text else speech_ms_for_text(turn.text)
        if ms > 0:
            items += [("media", base64.b64encode(f).decode()) for f in frames(speech_like(ms, seed=index))]
        return items or [("media", _SILENCE_B64)]

    async def _call(self, stream_url: str, parameters: dict[str, str], twiml: str, deadline: float) -> CallResult:
        self._reset()
        headers = [(b"X-Twilio-Signature", self._sign(stream_url, {}).encode())] if self.auth_token else []
        try:
            async with trio_websocket.open_websocket_url(
                stream_url, extra_headers=headers,
                connect_timeout=max(0.1, deadline - trio.current_time()), disconnect_timeout=2.0,
            ) as ws:
                self._ws = ws
                with trio.move_on_at(deadline) as self._scope:
                    await self._converse(parameters)
                if self._ended_by is None:  # max_call_s: hang up as Twilio does at a call time limit
                    self._ended_by = "timeout"
                    self._events.append(f"call hit max_call_s={self.script.max_call_s}")
                    with trio.move_on_after(1.0):
                        await self._stop()
                elif self._remote_stop:
                    with trio.move_on_after(1.0):
                        await self._stop()
                with trio.move_on_after(2.0):
                    await ws.aclose(1000)
                self._close_code = ws.closed.code if ws.closed else self._close_code
        except trio_websocket.HandshakeError as exc:
            raise FakeCallerError(f"could not open Media Stream {stream_url}: {exc!r}") from exc
        return CallResult(
            call_sid=self.call_sid, stream_sid=self.stream_sid, twiml=twiml, stream_url=stream_url,
            parameters=dict(parameters), received_payloads=self._payloads, received_audio=bytes(self._audio),
            heard_audio_ms=self._playout.played_bytes // BYTES_PER_MS, marks_echoed=self._marks_echoed,
            clears=self._clears, media_times=self._media_times, barge_in_starts=self._barge_starts,
            audio_after_each_barge_in_ms=[b // BYTES_PER_MS for b in self._after_each],
            audio_after_clear_ms=self._after_clear_bytes // BYTES_PER_MS,
            turns=self._turns, close_code=self._close_code, ended_by=self._ended_by, events=self._events,
        )

    async def _converse(self, parameters: dict[str, str]) -> None:
        try:
            await self._send("connected", {"protocol": "Call", "version": "1.0.0"}, seq=False)
            await self._send("start", {"streamSid": self.stream_sid, "start": {
                "streamSid": self.stream_sid, "accountSid": self.account_sid, "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": dict(parameters),
            }})
        except trio_websocket.ConnectionClosed as exc:
            self._closed(exc)
            return
        self._t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receiver)
            nursery.start_soon(self._ticker)
            await self._run_script()
            if not self.script.hangup:
                await trio.sleep_forever()  # until the server closes or max_call_s
            self._ended_by = self._ended_by or "caller_hangup"
            await self._stop()
            with trio.move_on_after(2.0):
                await self._ws.aclose(1000)
            nursery.cancel_scope.cancel()

    async def _stop(self) -> None:
        """Send ``stop``; after it the ticker and mark echoes fall silent, as on a real hangup."""
        self._stopped = True
        try:
            await self._send("stop", {"streamSid": self.stream_sid, "stop": {
                "accountSid": self.account_sid, "callSid": self.call_sid}}, after_stop=True)
        except trio_websocket.ConnectionClosed:
            pass

    def _closed(self, exc: trio_websocket.ConnectionClosed) -> None:
        """The socket went away: if we did not hang up, the server ended the call."""
        if self._ended_by is None:
            self._ended_by = "server_closed"
            self._close_code = exc.reason.code if exc.reason else None
        self._scope.cancel()

    async def _send(self, event: str, body: dict[str, Any], *, seq: bool = True, after_stop: bool = False) -> None:
        async with self._send_lock:
            if self._stopped and not after_stop:
                return  # Twilio sends nothing after stop
            frame: dict[str, Any] = {"event": event}
            if seq:
                frame["sequenceNumber"] = str(self._seq)
                self._seq += 1
            frame.update(body)
            await self._ws.send_message(orjson.dumps(frame).decode())

    # -- outbound: the 20 ms clock ----------------------------------------------------

    async def _ticker(self) -> None:
        """Every 20 ms on an absolute schedule: play 20 ms of agent audio, send 20 ms of caller audio."""
        k = 0
        try:
            while True:
                k += 1
                await trio.sleep_until(self._t0 + k * FRAME_S)
                if self._stalled:
                    continue
                await self._tick(k)
                event, self._tick_event = self._tick_event, trio.Event()
                event.set()
        except trio_websocket.ConnectionClosed as exc:
            self._closed(exc)

    async def _tick(self, k: int) -> None:
        played, due = self._playout.tick()
        if self._barging:  # count talked-over audio: up to the start of the next reply, if any
            end, cap = self._playout.position, self._barge_limit
            heard = max(0, (end if cap is None else min(end, cap)) - (end - played))
            self._after_clear_bytes += heard
            if self._after_each:
                self._after_each[-1] += heard
            if (cap is not None and end >= cap) or self._playout.idle_ms >= self.script.agent_done_silence_ms:
                self._barging = False  # the talked-over reply ran out without a clear
        for name in due:
            await self._echo_mark(name)
        kind, value = self._outq.popleft() if self._outq else ("media", _SILENCE_B64)
        if self._barge_pending:  # the caller opens their mouth now; count what still plays
            self._barge_pending, self._barging, self._barge_limit = False, True, None
            self._barge_starts.append(trio.current_time())
            self._after_each.append(0)
        if kind == "dtmf":
            await self._send("dtmf", {"streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": value}})
            value = _SILENCE_B64
        self._chunk += 1
        await self._send("media", {"streamSid": self.stream_sid, "media": {
            "track": "inbound", "chunk": str(self._chunk), "timestamp": str((k - 1) * FRAME_MS), "payload": value}})
        if self._speaking is not None and not self._outq:
            now = trio.current_time()
            self._speaking.speech_end = now
            label, deadline = f"turn {len(self._turns)}", now + self.script.reply_timeout_s
            self._reply = _Reply(label, self._playout.played_bytes, deadline, self._speaking)
            self._speaking = None
            self._spoken.set()

    async def _echo_mark(self, name: str) -> None:
        self._marks_echoed.append(name)
        await self._send("mark", {"streamSid": self.stream_sid, "mark": {"name": name}})

    # -- inbound: what the server sends -----------------------------------------------

    async def _receiver(self) -> None:
        try:
            while True:
                for name in self._handle(await self._ws.get_message()):
                    await self._echo_mark(name)
        except trio_websocket.ConnectionClosed as exc:
            self._closed(exc)

    def _handle(self, raw: str | bytes) -> list[str]:
        """Apply one server frame; return the marks a clear released (to echo right away)."""
        now = trio.current_time()
        try:
            msg = orjson.loads(raw)
            event = msg["event"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            self._events.append(f"unreadable frame from server: {raw[:120]!r}")
            return []
        if msg.get("streamSid") != self.stream_sid:
            self._events.append(f"{event} frame with streamSid {msg.get('streamSid')!r}")
        if event == "media":
            payload = (msg.get("media") or {}).get("payload")
            if not isinstance(payload, str):
                self._events.append("media frame without a payload string")
                return []
            self._payloads.append(payload)
            self._media_times.append(trio.current_time())
            try:
                audio = base64.b64decode(payload, validate=True)
            except binascii.Error:
                self._events.append(f"media payload is not base64: {payload[:40]!r}")
                return []
            reply = self._reply
            if reply is not None and reply.first_audio is None:
                if self._barging:  # a reply to the barge-in: what is queued before it is talked-over audio
                    self._barge_limit = self._playout.end
                reply.first_audio = now
                if reply.timing is not None:
                    reply.timing.first_audio = now
            self._audio += audio
            self._playout.append(audio)
        elif event == "mark":
            self._playout.add_mark(str((msg.get("mark") or {}).get("name", "")))
        elif event == "clear":
            self._clears.append(now)
            self._barging = False
            return self._playout.clear()[1]
        else:
            self._events.append(f"unexpected {event!r} frame from server")
        return []

    # -- the script -------------------------------------------------------------------

    async def _next_tick(self) -> None:
        await self._tick_event.wait()

    async def _run_script(self) -> None:
        script = self.script
        if script.wait_first_reply:
            self._reply = _Reply("the greeting", 0, self._t0 + script.reply_timeout_s)
        for i, turn in enumerate(script.turns):
            if self._reply is None:
                for _ in range(FIRST_TURN_SILENCE_MS // FRAME_MS):
                    await self._next_tick()
            else:
                await self._wait_reply(self._reply, turn.barge_in_after_ms)
            timing = TurnTiming(None, None)
            self._turns.append(timing)
            self._spoken = trio.Event()
            self._speaking = timing
            self._barge_pending = turn.barge_in_after_ms is not None
            self._outq.extend(self._turn_audio[i])
            await self._spoken.wait()
        if self._reply is not None:
            await self._wait_reply(self._reply, None)

    async def _wait_reply(self, reply: _Reply, played_ms: int | None) -> None:
        """Wait until the reply finished playing (``played_ms`` None) or played ``played_ms``."""
        while True:
            await self._next_tick()
            if reply.first_audio is None:
                if trio.current_time() >= reply.deadline:
                    if reply.timing is not None:
                        reply.timing.timed_out = True
                    self._events.append(f"no agent reply to {reply.label} within {self.script.reply_timeout_s} s")
                    return
                continue
            done = self._playout.buffered == 0 and self._playout.idle_ms >= self.script.agent_done_silence_ms
            if done:
                if played_ms is not None:
                    self._events.append(f"agent reply ended before the {played_ms} ms barge-in point")
                return
            if played_ms is not None and self._playout.played_bytes - reply.anchor_played >= played_ms * BYTES_PER_MS:
                return
