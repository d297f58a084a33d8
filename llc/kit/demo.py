"""`llc demo`: a whole simulated phone call on loopback, no keys, no network.

Starts the fake OpenAI Realtime server, the real llc server and the fake Twilio caller in
one process (one clock, so every latency below is measured on the same timeline), runs a
short two-turn call, prints the transcript and where the voice-to-voice time went.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable

import trio

from llc.config import Settings
from llc.core.record import CallRecord
from llc.profile import load_profile
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, CallResult, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.web.app import serve
from llc.web.server import build_server

CALLER_LINES = ["Hello?", "Hi, what time do you open tomorrow?"]
AGENT_LINES = [
    "Hi! Thanks for calling. How can I help you today?",
    "We open at nine tomorrow morning. Anything else?",
]


@dataclass
class TurnBreakdown:
    caller_said: str
    voice_to_voice_ms: float | None  # caller's last speech frame sent -> first agent audio at the caller
    vad_wait_ms: float | None  # simulated end-of-turn detection
    ttfb_ms: float | None  # simulated model time to first audio byte
    relay_ms: float | None  # OpenAI delta sent -> frame at the caller: what llc adds on the way back


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


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((b - a) * 1000, 1)


async def run_demo(shape: str = "ga", ttfb_ms: int = 300, silence_ms: int = 400, log_level: str = "WARNING") -> DemoResult:
    fake = FakeOpenAI(
        FakeOpenAIConfig(
            shape=shape,  # type: ignore[arg-type]
            ttfb_ms=ttfb_ms,
            end_of_turn_silence_ms=silence_ms,
            replies=list(AGENT_LINES),
            user_transcripts=list(CALLER_LINES),
        )
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(fake.serve)
            settings = Settings(port=0, openai_realtime_url=fake.url, openai_api_shape=shape, log_level=log_level, db_url=":memory:")  # type: ignore[arg-type]
            state = build_server(settings, load_profile(settings.profile_path))
            binds = await nursery.start(serve, state)
            caller = FakeCaller(binds[0], CallerScript(turns=[CallerTurn(t) for t in CALLER_LINES]))
            result = await caller.run()
            with trio.fail_after(5):  # the server finishes its record right after the hangup
                while not state.records:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    session = fake.sessions[-1]
    demo = DemoResult(record=state.records[-1], caller=result, openai_errors=list(session.errors_sent))
    for i, turn in enumerate(result.turns):
        stopped = session.committed_at[i] if i < len(session.committed_at) else None
        first = session.first_delta_at[i] if i < len(session.first_delta_at) else None
        demo.turns.append(
            TurnBreakdown(
                caller_said=CALLER_LINES[i] if i < len(CALLER_LINES) else "",
                voice_to_voice_ms=turn.voice_to_voice_ms,
                vad_wait_ms=_ms(turn.speech_end, stopped),
                ttfb_ms=_ms(stopped, first),
                relay_ms=_ms(first, turn.first_audio),
            )
        )
    return demo


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def render(demo: DemoResult, shape: str, ttfb_ms: int, silence_ms: int, out: Callable[[str], None] = print) -> None:
    rec = demo.record
    out(f"llc demo: one simulated call, OpenAI shape {shape!r}, simulator TTFB {ttfb_ms} ms, end-of-turn silence {silence_ms} ms")
    out(f"call {rec.call_sid}  stream {rec.stream_sid}  ended: {rec.end_reason}  path: {rec.path}")
    out("")
    out("Transcript")
    for line in rec.transcript:
        out(f"  {line.at:6.2f}s  {line.role:<6}  {line.text}")
    out("")
    out("Latency per turn (one process, one clock)")
    out(f"  {'turn':<5}{'voice-to-voice':>16}{'= VAD wait':>14}{'+ model TTFB':>15}{'+ llc relay':>14}")
    for i, t in enumerate(demo.turns, 1):
        out(f"  {i:<5}{_fmt(t.voice_to_voice_ms):>16}{_fmt(t.vad_wait_ms):>14}{_fmt(t.ttfb_ms):>15}{_fmt(t.relay_ms):>14}")
    relays = [t.relay_ms for t in demo.turns if t.relay_ms is not None]
    if relays:
        out(f"  relay added by llc: median {statistics.median(relays):.1f} ms over {len(relays)} turns")
    out("")
    out(f"frames from caller: {rec.frames_from_twilio}, audio frames to caller: {rec.frames_to_twilio}, "
        f"agent audio heard: {demo.caller.heard_audio_ms} ms, OpenAI errors: {len(demo.openai_errors)}")
    out("demo OK" if demo.ok else "demo FAILED: the call did not complete both turns cleanly (see above)")
