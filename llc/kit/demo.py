"""`llc-phone demo`: a whole simulated phone call on loopback, no keys, no network.

Starts the fake OpenAI Realtime server, the real llc server and the fake Twilio caller in
one process (one clock, so every latency below is measured on the same timeline), runs a
short two-turn call and shows it *as it happens*: each transcript line and each turn's latency
is printed when the server records it, with a progress line while the call waits. Then where
the voice-to-voice time went. The record goes to a database file ``llc-phone calls`` and the
console read; ``llc-phone demo --console`` keeps a server up afterwards to look at it.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from llc.app import Server, build_server, serve
from llc.config import Settings
from llc.core.dialect import Shape
from llc.core.record import CallRecord, TranscriptLine
from llc.core.timeline import Waterfall, waterfall, waterfalls
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, CallResult, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.profile import load_profile

CALLER_LINES = ["Hello?", "Hi, what time do you open tomorrow?"]
AGENT_LINES = [
    "Hi! Thanks for calling. How can I help you today?",
    "We open at nine tomorrow morning. Anything else?",
]
WATCH_EVERY_S = 0.1
LATENCY = "voice-to-voice: the caller's last loud frame -> the agent's first audio frame sent"
Out = Callable[[str], None]
Watch = Callable[[Server], Awaitable[None]]


@dataclass
class TurnBreakdown:
    """One turn's voice-to-voice time from the call's record (``TurnLatency``), with its parts."""

    caller_said: str
    fall: Waterfall | None  # None: the turn got no spoken reply


@dataclass
class DemoResult:
    record: CallRecord
    caller: CallResult
    turns: list[TurnBreakdown] = field(default_factory=list)
    openai_errors: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        agent_lines = [t for t in self.record.transcript if t.role == "agent"]
        return len(agent_lines) >= len(CALLER_LINES) and not self.openai_errors and self.caller.ended_by == "caller_hangup"


def line_text(line: TranscriptLine | dict[str, Any]) -> str:
    """One transcript line as the demo prints it (live, and from a stored record)."""
    get = line.get if isinstance(line, dict) else (lambda k, d=None: getattr(line, k, d))
    text = f"  {get('at'):6.2f}s  {get('role'):<6}  {get('text')}"
    if get("interrupted"):
        of = f" of {get('generated_ms')}" if get("generated_ms") is not None else ""
        text += f"\n{'':18}(cut by the caller: heard {get('heard_ms')}{of} ms"
        text += f", about: {get('heard_text')!r})" if get("heard_text") is not None else ")"
    return text


class LiveView:
    """Prints the call as the server records it: new lines, new turn latencies, and on a terminal
    a progress line (rewritten in place) while nothing new has happened."""

    def __init__(self, out: Out = print, tty: bool = False, progress: Callable[[str], None] | None = None) -> None:
        self.out, self.tty = out, tty
        self.progress = progress  # writes without a newline (a terminal's stdout)
        self._lines = self._turns = 0
        self._record: CallRecord | None = None
        self._shown_progress = False

    async def watch(self, server: Server) -> None:
        start = trio.current_time()
        self.out("The call, live (seconds since the stream started):")
        while True:
            self.poll(server, trio.current_time() - start)
            await trio.sleep(WATCH_EVERY_S)

    def poll(self, server: Server, elapsed: float) -> None:
        if self._record is None:
            self._record = next((b.record for b in list(server.active) if b.record.call_sid), None)
        rec = self._record
        printed = []
        if rec is not None:
            for line in rec.transcript[self._lines:]:
                printed.append(line_text(line))
            self._lines = len(rec.transcript)
            done = [t for t in rec.turns if t.ms is not None]
            for i, turn in enumerate(done[self._turns:], self._turns + 1):
                fall = waterfall(i, turn.as_dict())
                if fall is not None:
                    printed.append(f"{'':10}turn {i}: {fall.said()}")
            self._turns = len(done)
        if printed:
            if self._shown_progress and self.progress is not None:
                self.progress("\r" + " " * 60 + "\r")
                self._shown_progress = False
            for text in printed:
                self.out(text)
        elif self.tty and self.progress is not None:
            what = "waiting for the call to start" if rec is None else f"{rec.frames_from_twilio} caller frames relayed"
            self.progress(f"\r  … {elapsed:4.1f} s, {what}")
            self._shown_progress = True

    def finish(self) -> None:
        if self._shown_progress and self.progress is not None:
            self.progress("\r" + " " * 60 + "\r")


async def run_demo(shape: Shape = "ga", ttfb_ms: int = 300, silence_ms: int = 400, log_level: str = "WARNING",
                   db_url: str = ":memory:", watch: Watch | None = None) -> DemoResult:
    fake = FakeOpenAI(
        FakeOpenAIConfig(
            shape=shape,
            ttfb_ms=ttfb_ms,
            end_of_turn_silence_ms=silence_ms,
            replies=list(AGENT_LINES),
            user_transcripts=list(CALLER_LINES),
        )
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(fake.serve)
            settings = Settings(port=0, openai_realtime_url=fake.url, openai_api_shape=shape, log_level=log_level, db_url=db_url)
            state = build_server(settings, load_profile(settings.profile_path))
            binds = await nursery.start(serve, state)
            if watch is not None:
                nursery.start_soon(watch, state)
            caller = FakeCaller(binds[0], CallerScript(turns=[CallerTurn(t) for t in CALLER_LINES]))
            result = await caller.run()
            with trio.fail_after(5):  # the server finishes and stores its record right after the hangup
                while await state.store.get_call(caller.call_sid) is None:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    state.store.close()
    record = state.records[-1]
    demo = DemoResult(record=record, caller=result, openai_errors=list(fake.sessions[-1].errors_sent))
    for i, turn in enumerate(record.turns):
        said = CALLER_LINES[i] if i < len(CALLER_LINES) else ""
        demo.turns.append(TurnBreakdown(said, waterfall(i + 1, turn.as_dict())))
    return demo


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def render(demo: DemoResult, shape: str, ttfb_ms: int, silence_ms: int, out: Out = print, live: bool = False) -> None:
    """The demo's summary; ``live``: the transcript was already printed as it happened."""
    rec = demo.record
    out(f"llc-phone demo: one simulated call, OpenAI shape {shape!r}, simulator TTFB {ttfb_ms} ms, end-of-turn silence {silence_ms} ms")
    out(f"call {rec.call_sid}  stream {rec.stream_sid}  ended: {rec.end_reason}  path: {rec.path}")
    if not live:
        out("")
        out("Transcript")
        for line in rec.transcript:
            out(line_text(line))
    out("")
    out(f"Latency per turn ({LATENCY})")
    out(f"  {'turn':<5}{'voice-to-voice':>16}{'= VAD wait':>14}{'+ model':>12}{'+ llc relay':>14}")
    for i, t in enumerate(demo.turns, 1):
        w = t.fall
        parts = (w.total_ms, w.vad_wait_ms, w.model_ms, w.relay_ms) if w is not None else (None,) * 4
        out(f"  {i:<5}" + "".join(f"{_fmt(v):>{width}}" for v, width in zip(parts, (16, 14, 12, 14))))
    relays = [t.fall.relay_ms for t in demo.turns if t.fall is not None and t.fall.relay_ms is not None]
    if relays:
        out(f"  relay added by llc: median {statistics.median(relays):.1f} ms over {len(relays)} turns")
    out("")
    out(f"frames from caller: {rec.frames_from_twilio}, audio frames to caller: {rec.frames_to_twilio}, "
        f"agent audio heard: {demo.caller.heard_audio_ms} ms, OpenAI errors: {len(demo.openai_errors)}")
    out("demo OK" if demo.ok else "demo FAILED: the call did not complete both turns cleanly (see above)")


def render_mode(rec: dict[str, Any], dialed: list[str], messages: list[dict[str, Any]], tickets: list[dict[str, Any]],
                openai_errors: list[dict[str, Any]], out: Out = print, live: bool = False) -> bool:
    """`llc-phone demo --scenario NAME`'s summary from the stored record; returns whether it went well."""
    keys = " ".join(repr(k) for k in rec["dtmf"]) or "none"
    out(f"llc-phone demo --scenario {rec['scenario']}: call {rec['call_sid']} from {rec['from_number']} to {rec['to_number']}")
    out(f"path: {rec['path']}   ended: {rec['end_reason']}   keys pressed: {keys}")
    if not live:
        out("")
        out("Transcript")
        for line in rec["transcript"]:
            out(line_text(line))
    if rec["routes"]:
        out("")
        out("IVR routing")
        for r in rec["routes"]:
            out(f"  {r['at']:6.2f}s  {r['via']:<6}  {r['choice']!r} -> {r['action']} {r['target']}")
    out("")
    out("Tool calls")
    for t in rec["tool_calls"] or []:
        if t["ms"] is not None:
            out(f"  {t['name']}({t['arguments']}) -> {t['error'] or t['output']}  [{t['ms']:g} ms]")
        elif t["name"] == "transfer_call" and dialed:
            out(f"  {t['name']}({t['arguments']}) -> handed over: Twilio took the call away, ending its stream as a transfer does")
        else:
            out(f"  {t['name']}({t['arguments']}) -> no result: {t['error'] or 'still running when the call ended'}")
    if not rec["tool_calls"]:
        out("  none")
    if dialed:
        out(f"  Twilio redirected the call: <Dial> {', '.join(dialed)}")
    for label, rows in (("Messages", messages), ("Tickets", tickets)):
        if rows:
            out("")
            out(f"{label} stored in the database")
            for row in rows:
                out("  " + ", ".join(f"{k}={v}" for k, v in row.items() if k != "created_at"))
    out("")
    falls = waterfalls(rec)
    if falls:
        out(f"Latency per turn ({LATENCY})")
        for w in falls:
            out(f"  turn {w.turn}: {w.said()}")
    else:
        out("Latency per turn: no turn had a spoken reply after the caller stopped (key presses and the greeting only)")
    ok = bool(rec["transcript"]) and not openai_errors and rec["end_reason"] in ("caller_hangup", "twilio_closed", "transferred")
    out("demo OK" if ok else f"demo FAILED (OpenAI errors: {openai_errors})")
    return ok
