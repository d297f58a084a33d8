"""A network model of the two call paths, for `llc-phone bench paths`: stated assumptions, not a
measurement of any real network.

- **Media Streams**: Twilio's media edge → llc (a WebSocket over TCP) → OpenAI (a WebSocket over
  TCP), and the agent's audio back the same way: two legs each way, plus what llc's relay adds.
- **SIP**: Twilio's SIP trunk → OpenAI (RTP over UDP) and back: one leg each way, no relay.

Each leg has a round-trip time; one 20 ms audio frame is one packet. The loss rate is the
path's, one way: on Media Streams it is split over the two legs (each loses ``1 - sqrt(1 - p)``),
so both paths lose the same share of packets end to end and only what a loss costs differs.

Why TCP costs time when a packet is lost: it delivers in order, so a lost segment holds back
every frame behind it (head-of-line blocking) until it is sent again. The sender learns of the
loss from three duplicate ACKs, sent as the next three frames arrive, so the copy arrives about
``3 × 20 ms + 1 RTT`` after the original would have; a lost copy waits a retransmission timeout
(``RTO_MS``, doubling). RTP has no re-sending: a lost frame is simply missing (the receiver fills
20 ms with concealment) and nothing behind it waits. So TCP turns loss into delay and RTP into
gaps; the model counts both.

Left out, because it is the same on both paths: the caller's phone network to Twilio, jitter
buffers, and the model's own time (measured on the simulator and added to both). The agent's
audio is modelled as a paced stream, although OpenAI sends it faster than real time and Twilio
buffers it: so only its *first* frame counts towards voice-to-voice, where no buffer can help.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from llc.kit.bench.stats import percentile

FRAME_MS = 20.0
DUPACKS = 3  # later segments whose duplicate ACKs reveal a loss (fast retransmit)
RTO_MS = 200.0  # Linux's smallest retransmission timeout: what a lost re-sent segment waits


@dataclass(frozen=True)
class Leg:
    rtt_ms: float
    loss: float  # the chance that one packet is lost, 0..1
    transport: Literal["tcp", "rtp"]


@dataclass(frozen=True)
class Network:
    """The legs of both paths. The defaults are assumptions (a server near Twilio's media edge),
    printed beside every figure they produce."""

    twilio_llc_rtt_ms: float = 20.0
    llc_openai_rtt_ms: float = 30.0
    twilio_openai_rtt_ms: float = 40.0  # direct, so no longer than the two legs through llc
    loss: float = 0.0  # the path's, one way (see the module's doc)

    def media_legs(self) -> tuple[Leg, Leg]:
        per_leg = 1 - (1 - self.loss) ** 0.5
        return Leg(self.twilio_llc_rtt_ms, per_leg, "tcp"), Leg(self.llc_openai_rtt_ms, per_leg, "tcp")

    def sip_leg(self) -> Leg:
        return Leg(self.twilio_openai_rtt_ms, self.loss, "rtp")

    def describe(self) -> str:
        return (f"Twilio<->llc RTT {self.twilio_llc_rtt_ms:g} ms, llc<->OpenAI RTT {self.llc_openai_rtt_ms:g} ms "
                f"(Media Streams, TCP); Twilio<->OpenAI RTT {self.twilio_openai_rtt_ms:g} ms (SIP, RTP)")


def carry(leg: Leg, sent: list[float], rng: random.Random) -> list[float | None]:
    """When each packet sent at ``sent`` (ms, ascending) is delivered to the application over
    ``leg``; None for a packet RTP lost."""
    one_way = leg.rtt_ms / 2
    out: list[float | None] = []
    ready = float("-inf")  # TCP: nothing is delivered before the packet ahead of it
    for i, at in enumerate(sent):
        arrive = at + one_way
        if rng.random() < leg.loss:
            if leg.transport == "rtp":
                out.append(None)
                continue
            seen = sent[i + DUPACKS] + leg.rtt_ms if i + DUPACKS < len(sent) else at + RTO_MS
            arrive = seen + one_way
            rto = RTO_MS
            while rng.random() < leg.loss:  # the copy was lost too
                arrive += rto
                rto *= 2
        if leg.transport == "tcp":
            arrive = max(arrive, ready)
            ready = arrive
        out.append(arrive)
    return out


def one_way(legs: tuple[Leg, ...], frames: int, relay_ms: float, rng: random.Random) -> tuple[list[float], int]:
    """Delay (ms) of each of ``frames`` consecutive 20 ms frames through ``legs`` in turn, with
    ``relay_ms`` between legs; and how many frames never arrived (RTP loss)."""
    times: list[float | None] = [i * FRAME_MS for i in range(frames)]
    for n, leg in enumerate(legs):
        kept = [(i, t) for i, t in enumerate(times) if t is not None]
        sent = [t + (relay_ms if n else 0.0) for _, t in kept]
        carried = carry(leg, sent, rng)
        times = [None] * frames
        for (i, _), t in zip(kept, carried):
            times[i] = t
    delays = [t - i * FRAME_MS for i, t in enumerate(times) if t is not None]
    return delays, frames - len(delays)


@dataclass(frozen=True)
class PathFigures:
    voice_to_voice_p50_ms: float
    voice_to_voice_p99_ms: float
    frame_p99_ms: float  # one agent frame, OpenAI -> Twilio
    lost: float  # share of frames never played (RTP), 0..1


def model_path(legs: tuple[Leg, ...], relay_ms: float, base_ms: float, *, frames: int = 30_000,
               samples: int = 20_000, seed: int = 1) -> PathFigures:
    """Voice-to-voice on one path: ``base_ms`` (VAD wait + the model, the same on both paths)
    + the caller's last frame going up + the agent's first frame coming down, each drawn from
    a ``frames``-long stream under the model."""
    rng = random.Random(seed)
    up, lost_up = one_way(legs, frames, relay_ms, rng)
    down, lost_down = one_way(tuple(reversed(legs)), frames, relay_ms, rng)
    v2v = [base_ms + rng.choice(up) + rng.choice(down) for _ in range(samples)]
    return PathFigures(percentile(v2v, 50), percentile(v2v, 99), percentile(down, 99),
                       (lost_up + lost_down) / (2 * frames))
