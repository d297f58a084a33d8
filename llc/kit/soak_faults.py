"""`llc-phone soak --faults`: network faults that stall instead of closing, mixed into the soak.

Every ``every_s`` one fault, in turn:

- ``openai_stall``: one live OpenAI connection freezes (the relay in front of the fake OpenAI
  stops moving bytes both ways, sockets open). The server must notice (no pong, or a write
  that cannot finish) and reconnect that call with its conversation; the call then ends
  normally, so the soak's own checks (caller hung up, agent audio heard, record stored) hold.
- ``twilio_silent``: a call whose Twilio leg goes quiet after its start, socket open. The server
  must end it within LLC_TWILIO_IDLE_S and close the socket; its record says ``twilio_silent``.
- ``no_start``: a media socket that is upgraded and never says ``start``: closed within
  LLC_START_TIMEOUT_S, never counted as a call.
- ``key_flood``: a call whose caller presses FLOOD_KEYS keys as fast as the socket takes them,
  then hangs up. The server must stay on time for every other call (its /healthz, asked
  during the flood, answers within FaultBounds.responsive_s) and record every key
  (``dtmf_total``) in a record of bounded size.
- ``clock_step``: the server's wall clock steps CLOCK_STEP_S back, and at the next one forward
  again to the true time, with calls in flight (``llc.kit.sim.wall_clock``; its monotonic clock
  does not move). Its outcome is the server's own ``Date`` header showing the step; then every
  call that spanned it must still end with its final record (the soak checks every record).
  Without libfaketime it is not injected, and the report says so.

Each fault's time to the designed outcome is measured; one over its bound is a failure.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx
import orjson
import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

from llc.kit.sim.client_tls import client_tls
from llc.kit.sim.fake_caller import parse_twiml
from llc.kit.sim.stall_proxy import StallProxy
from llc.kit.sim.wall_clock import INSTALL, SteppedClock

KINDS = ("openai_stall", "clock_step", "no_start", "twilio_silent", "key_flood")
CLOCK_STEP_S = 120.0
FLOOD_KEYS = 5000
# A frozen OpenAI connection is cut by the relay after this (the fake's side is then freed).
FROZEN_FOR_S = 30.0
SILENT_FRAME = base64.b64encode(b"\xff" * 160).decode()


@dataclass
class FaultReport:
    injected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    longest_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    silent_call_sids: list[str] = field(default_factory=list)
    flood_call_sids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    reconnected: int = 0  # calls whose record shows a replaced OpenAI session
    calls_across_steps: int = 0  # calls in flight when the wall clock stepped
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        timed = ", ".join(f"{k} {self.injected[k]} (longest to outcome {self.longest_s[k]:.2f} s)" for k in KINDS[1:])
        return (f"openai_stall {self.injected['openai_stall']} ({self.reconnected} calls reconnected), {timed}; "
                f"{self.calls_across_steps} calls in flight across a clock step")


@dataclass(frozen=True)
class FaultBounds:
    twilio_idle_s: float = 5.0
    start_timeout_s: float = 5.0
    slack_s: float = 2.0  # ticks, scheduling on a loaded 2-core box
    responsive_s: float = 0.5  # /healthz during a key flood
    clock_step_s: float = 3.0  # the library re-reads the offset once a second; Date has 1 s steps


@dataclass
class Faulted:
    """What the faults act on: the server, the relay in front of the fake OpenAI, the server's
    wall clock (None: libfaketime is missing) and how many calls the soak has in flight."""

    http_url: str
    proxy: StallProxy
    clock: SteppedClock | None = None
    in_flight: Callable[[], int] = lambda: 0


async def inject_faults(report: FaultReport, target: Faulted, every_s: float, until: float,
                        bounds: FaultBounds = FaultBounds()) -> None:
    """Inject one fault every ``every_s`` until ``until`` (trio clock); each runs as its own task."""
    kinds = itertools.cycle(KINDS)
    seq = itertools.count(1)
    http_url, proxy = target.http_url, target.proxy
    if target.clock is None:
        report.notes.append(f"clock_step not injected: libfaketime is not installed ({INSTALL})")
    async with trio.open_nursery() as nursery:
        while trio.current_time() + every_s < until:
            await trio.sleep(every_s)
            kind, n = next(kinds), next(seq)
            if kind == "clock_step" and target.clock is None:
                continue
            report.injected[kind] += 1
            if kind == "clock_step":
                assert target.clock is not None
                nursery.start_soon(_clock_step, report, http_url, target.clock, target.in_flight(), bounds)
            elif kind == "openai_stall":
                nursery.start_soon(_openai_stall, report, proxy)
            elif kind == "twilio_silent":
                nursery.start_soon(_twilio_silent, report, http_url, f"CAsoakfault{n:05d}", bounds)
            elif kind == "key_flood":
                nursery.start_soon(_key_flood, report, http_url, f"CAsoakflood{n:05d}", bounds)
            else:
                nursery.start_soon(_no_start, report, http_url, bounds)


def _took(report: FaultReport, kind: str, seconds: float, bound: float) -> None:
    report.longest_s[kind] = max(report.longest_s[kind], seconds)
    if seconds > bound:
        report.failures.append(f"fault {kind}: the outcome took {seconds:.2f} s (bound {bound:g} s)")


async def _openai_stall(report: FaultReport, proxy: StallProxy) -> None:
    # A call's leg a little while in (live, mid-conversation), not a warm session still ringing.
    now = trio.current_time()
    live = [c for c in proxy.connections if not c.frozen and not c.scope.cancel_called and 1.5 <= now - c.opened_at <= 4]
    if not live:
        report.injected["openai_stall"] -= 1  # no call in flight to freeze: not a fault
        return
    proxy.connections[:] = [c for c in proxy.connections if not c.scope.cancel_called]  # ended ones go
    conn = live[-1]  # the youngest such call: the most of it still to come
    conn.freeze()
    await trio.sleep(FROZEN_FOR_S)
    conn.cut()


async def _wait_closed(ws: WebSocketConnection, bound: float) -> float | None:
    """Seconds until the server closed the socket, or None when it did not within ``bound``."""
    started = trio.current_time()
    with trio.move_on_after(bound):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed:
            return trio.current_time() - started
    return None


async def _stream_url(http_url: str, call_sid: str) -> tuple[str, dict[str, str]]:
    form = {"CallSid": call_sid, "From": "+15550100001", "To": "+15550100002"}
    async with httpx.AsyncClient(timeout=5, verify=client_tls()) as client:
        return parse_twiml((await client.post(http_url + "/twiml", data=form)).text)


async def _start_call(ws: WebSocketConnection, call_sid: str, params: dict[str, str]) -> str:
    """Say ``connected`` and ``start`` as Twilio does, then half a second of a live call; the stream's sid."""
    stream_sid = f"MZ{call_sid[2:]}"
    start = {"streamSid": stream_sid, "accountSid": "ACsoak", "callSid": call_sid, "tracks": ["inbound"],
             "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}, "customParameters": params}
    await ws.send_message(orjson.dumps({"event": "connected", "protocol": "Call"}).decode())
    await ws.send_message(orjson.dumps({"event": "start", "streamSid": stream_sid, "start": start}).decode())
    for _ in range(25):
        await ws.send_message(orjson.dumps({"event": "media", "streamSid": stream_sid,
                                            "media": {"payload": SILENT_FRAME}}).decode())
        await trio.sleep(0.02)
    return stream_sid


OPEN_FAILURES = (httpx.HTTPError, OSError, HandshakeError, ConnectionClosed, ValueError)


async def _twilio_silent(report: FaultReport, http_url: str, call_sid: str, bounds: FaultBounds) -> None:
    try:
        stream_url, params = await _stream_url(http_url, call_sid)
        async with open_websocket_url(stream_url) as ws:
            await _start_call(ws, call_sid, params)  # then the leg goes quiet
            bound = bounds.twilio_idle_s + bounds.slack_s
            took = await _wait_closed(ws, bound)
    except OPEN_FAILURES as exc:
        report.failures.append(f"fault twilio_silent: could not open the call: {exc}"[:300])
        return
    report.silent_call_sids.append(call_sid)
    _took(report, "twilio_silent", took if took is not None else float("inf"), bound)


async def _key_flood(report: FaultReport, http_url: str, call_sid: str, bounds: FaultBounds) -> None:
    slowest = 0.0

    async def probe_health(client: httpx.AsyncClient) -> None:
        nonlocal slowest
        for _ in range(20):
            started = trio.current_time()
            await client.get(http_url + "/healthz")
            slowest = max(slowest, trio.current_time() - started)
            await trio.sleep(0.1)

    try:
        stream_url, params = await _stream_url(http_url, call_sid)
        async with open_websocket_url(stream_url) as ws, httpx.AsyncClient(timeout=5, verify=client_tls()) as client:
            stream_sid = await _start_call(ws, call_sid, params)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(probe_health, client)
                for i in range(FLOOD_KEYS):
                    key = {"event": "dtmf", "streamSid": stream_sid, "dtmf": {"track": "inbound_track", "digit": "0123456789*#"[i % 12]}}
                    await ws.send_message(orjson.dumps(key).decode())
            await ws.send_message(orjson.dumps({"event": "stop", "streamSid": stream_sid,
                                                "stop": {"accountSid": "ACsoak", "callSid": call_sid}}).decode())
            await _wait_closed(ws, bounds.slack_s)
    except OPEN_FAILURES as exc:
        report.failures.append(f"fault key_flood: could not make the call: {exc}"[:300])
        return
    report.flood_call_sids.append(call_sid)
    _took(report, "key_flood", slowest, bounds.responsive_s)


async def _clock_step(report: FaultReport, http_url: str, clock: SteppedClock, in_flight: int,
                      bounds: FaultBounds) -> None:
    """Step the server's wall clock (back, or forward to the true time) and wait for its ``Date``
    header to show it."""
    offset = 0.0 if clock.offset_s else -CLOCK_STEP_S
    started = trio.current_time()
    clock.step(offset)
    report.calls_across_steps += in_flight
    async with httpx.AsyncClient(timeout=5, headers={"Connection": "close"}, verify=client_tls()) as client:
        with trio.move_on_after(bounds.clock_step_s + bounds.slack_s):
            while True:
                answer = await client.get(http_url + "/healthz")
                shown = parsedate_to_datetime(answer.headers["date"]).timestamp()
                if abs(shown - (time.time() + offset)) < 2.5:  # Date has whole seconds
                    _took(report, "clock_step", trio.current_time() - started, bounds.clock_step_s)
                    return
                await trio.sleep(0.2)
    report.failures.append(f"fault clock_step: the server's clock did not show the {offset:+.0f} s step")


async def _no_start(report: FaultReport, http_url: str, bounds: FaultBounds) -> None:
    bound = bounds.start_timeout_s + bounds.slack_s
    try:
        async with open_websocket_url(http_url.replace("http", "ws", 1) + "/media") as ws:
            took = await _wait_closed(ws, bound)
    except (OSError, HandshakeError) as exc:
        report.failures.append(f"fault no_start: could not open the socket: {exc}"[:300])
        return
    _took(report, "no_start", took if took is not None else float("inf"), bound)
