"""`llc-phone bench paths`: the same call on Media Streams and on SIP, and what each path costs.

Both calls go through the real server and the simulator, with the same script (the demo's two
turns, then the caller hangs up): a Media Streams call (fake Twilio caller, fake OpenAI) and a SIP
call (fake OpenAI SIP control plane and sideband). Measured on this machine: llc's relay per
frame (Media Streams; SIP has none, the audio never passes llc), the SIP webhook -> accept time,
and each call's record, printed side by side.

The networks are not measured (nothing here reaches Twilio or OpenAI): voice-to-voice on each path
comes from ``llc.kit.bench.netmodel``, a stated model (one extra hop, TCP's re-sending vs RTP's
gaps) added to the simulator's VAD wait and model time, which are the same on both paths.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import trio

from llc.kit.bench.netmodel import Network, PathFigures, model_path
from llc.kit.bench.stats import percentile
from llc.kit.demo import AGENT_LINES, CALLER_LINES, run_demo
from llc.kit.sim.fake_openai_sip import SipScript
from llc.kit.sip_demo import run_sip_demo
from llc.log import setup_logging

LOSSES = (0.0, 0.005, 0.02)
# The demo's call on SIP: the caller's two lines, the agent's two answers, then the caller hangs up.
SAME_SCRIPT = SipScript([("say", CALLER_LINES[0]), ("say", CALLER_LINES[1]), ("wait", 0.3), ("hangup",)],
                        replies=list(AGENT_LINES))


@dataclass
class Measured:
    media: list[dict[str, Any]]  # Media Streams records
    sip: list[dict[str, Any]]  # SIP records
    relay_ms: list[float]  # llc's relay per turn (Media Streams)
    base_ms: list[float]  # VAD wait + model per turn (the simulator's; the same on both paths)
    accept_ms: list[float]  # SIP: webhook sent -> accept received


async def measure(calls: int) -> Measured:
    m = Measured([], [], [], [], [])
    for _ in range(calls):
        demo = await run_demo(ttfb_ms=300, silence_ms=400)
        m.media.append(demo.record.as_dict())
        for turn in demo.turns:
            fall = turn.fall
            if fall is None or fall.relay_ms is None or fall.vad_wait_ms is None or fall.model_ms is None:
                continue  # a turn without a spoken reply, or whose VAD wait the record cannot tell
            m.relay_ms.append(fall.relay_ms)
            m.base_ms.append(fall.vad_wait_ms + fall.model_ms)
        sip = await run_sip_demo(":memory:", SAME_SCRIPT)
        m.sip.append(sip.record)
        m.accept_ms.append(sip.webhook_to_accept_ms)
    return m


def lines(record: dict[str, Any]) -> list[str]:
    return [f"{t['role']}: {t['text']}" for t in record["transcript"]]


def side_by_side(media: dict[str, Any], sip: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The two records, field by field: (what, Media Streams, SIP)."""
    rows = [("path", media["path"], sip["path"]), ("scenario", media["scenario"], sip["scenario"]),
            ("ended", media["end_reason"], sip["end_reason"]),
            ("turns", str(len(media["turns"])), str(len(sip["turns"]))),
            ("frames relayed by llc", f"{media['frames_from_twilio']} in, {media['frames_to_twilio']} out",
             f"{sip['frames_from_twilio']} in, {sip['frames_to_twilio']} out"),
            ("barge-ins", str(len(media["barge_ins"])), str(len(sip["barge_ins"]))),
            ("tool calls", str(len(media["tool_calls"])), str(len(sip["tool_calls"])))]
    a, b = lines(media), lines(sip)
    for i in range(max(len(a), len(b))):
        rows.append((f"transcript {i + 1}", a[i] if i < len(a) else "-", b[i] if i < len(b) else "-"))
    return rows


def modelled(m: Measured, net: Network) -> tuple[PathFigures, PathFigures]:
    base, relay = statistics.median(m.base_ms), statistics.median(m.relay_ms)
    return model_path(net.media_legs(), relay, base), model_path((net.sip_leg(),), 0.0, base)


def report(m: Measured, net: Network, out: Callable[[str], None] = print) -> None:
    out(f"llc-phone bench paths: the demo's call on both paths, {len(m.media)} of each, through the real server")
    out("")
    out("Measured on this machine (simulator):")
    out(f"  llc relay per turn (Media Streams)   p50 {percentile(m.relay_ms, 50):.2f} ms   "
        f"p99 {percentile(m.relay_ms, 99):.2f} ms   (SIP: none, the audio never passes llc)")
    out(f"  SIP webhook -> accept                p50 {percentile(m.accept_ms, 50):.1f} ms   "
        f"p99 {percentile(m.accept_ms, 99):.1f} ms")
    out(f"  VAD wait + model (simulator)         p50 {statistics.median(m.base_ms):.0f} ms, the same on both paths")
    out("")
    out("The same call's record on each path:")
    out(f"  {'':<24}{'Media Streams':<52}SIP")
    for what, a, b in side_by_side(m.media[0], m.sip[0]):
        out(f"  {what:<24}{a[:50]:<52}{b[:60]}")
    out("")
    out("Voice-to-voice under a network MODEL (assumed, not measured):")
    out(f"  {net.describe()}")
    out("  TCP re-sends a lost segment after 3 duplicate ACKs + 1 RTT and holds the frames behind it;")
    out("  RTP loses the frame (20 ms concealed) and holds nothing. The loss is each path's, one way")
    out("  (Media Streams' two legs share it), so both lose as many packets; only what a loss costs differs.")
    out(f"  {'loss':<8}{'Media Streams p50/p99':<26}{'SIP p50/p99':<20}{'agent frame p99 MS/SIP':<26}SIP frames lost")
    for loss in LOSSES:
        media, sip = modelled(m, replace(net, loss=loss))
        out(f"  {loss * 100:<8.1f}{media.voice_to_voice_p50_ms:>7.0f} / {media.voice_to_voice_p99_ms:<5.0f} ms"
            f"{'':9}{sip.voice_to_voice_p50_ms:>5.0f} / {sip.voice_to_voice_p99_ms:<5.0f} ms"
            f"{'':2}{media.frame_p99_ms:>7.0f} / {sip.frame_p99_ms:<5.0f} ms{'':9}{sip.lost * 100:.1f} %")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", type=int, default=3, help="calls on each path (default 3)")
    defaults = Network()
    p.add_argument("--twilio-llc-rtt-ms", type=float, default=defaults.twilio_llc_rtt_ms,
                   help="model: round trip between Twilio's media edge and llc")
    p.add_argument("--llc-openai-rtt-ms", type=float, default=defaults.llc_openai_rtt_ms,
                   help="model: round trip between llc and OpenAI")
    p.add_argument("--twilio-openai-rtt-ms", type=float, default=defaults.twilio_openai_rtt_ms,
                   help="model: round trip between Twilio's SIP trunk and OpenAI")


def run(args: argparse.Namespace) -> int:
    if args.calls < 1 or min(args.twilio_llc_rtt_ms, args.llc_openai_rtt_ms, args.twilio_openai_rtt_ms) < 0:
        print("llc-phone bench paths: --calls must be at least 1 and round trips not negative")
        return 2
    setup_logging(level="ERROR")  # the simulator's set-up warnings (no Twilio token) are not findings
    measured = trio.run(measure, args.calls)
    if not measured.relay_ms or not measured.sip:
        print("llc-phone bench paths: no complete turn was measured (see the log above); nothing to model")
        return 1
    report(measured, Network(args.twilio_llc_rtt_ms, args.llc_openai_rtt_ms, args.twilio_openai_rtt_ms))
    return 0
