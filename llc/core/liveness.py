"""Is each leg of a call alive? Decided as data: the shell reports what it saw, ticks, and acts.

Real networks stall instead of closing: a socket can stay open for minutes while nothing
moves. Twilio sends a media frame every 20 ms for the whole call, so silence from Twilio is a
dead leg; the OpenAI leg is quiet whenever the model is, so it is pinged and must answer with
a pong within a bound. The verdicts go to the recovery that exists (``CallCore``): a dead
OpenAI leg reconnects once, a dead Twilio leg ends the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class LivenessPolicy:
    start_timeout_s: float = 5.0  # upgrade -> Twilio's `start`
    twilio_idle_s: float = 5.0  # a started call with nothing from Twilio this long: dead leg
    ping_every_s: float = 2.0  # OpenAI pings (0: never)
    pong_timeout_s: float = 3.0  # a ping unanswered this long: dead leg (worst case ~5 s of silence)

    @property
    def tick_s(self) -> float:
        """How often the shell asks: fine enough that each bound is kept to within a tenth."""
        bounds = [self.start_timeout_s, self.twilio_idle_s, self.pong_timeout_s]
        if self.ping_every_s > 0:
            bounds.append(self.ping_every_s)
        return max(0.05, min(1.0, min(bounds) / 10))


class Verdict(Enum):
    NO_START = "no_start"  # the socket was upgraded but Twilio never said `start`
    TWILIO_SILENT = "twilio_silent"
    PING = "ping"  # send a ping on the OpenAI leg now
    OPENAI_SILENT = "openai_silent"


class Liveness:
    """Both legs' clocks. ``twilio_seen`` is written by the shell on every frame (one store)."""

    def __init__(self, policy: LivenessPolicy, now: float) -> None:
        self.policy = policy
        self.opened_at = now
        self.twilio_seen = now
        self._ping_at: float | None = None  # a ping is out, unanswered
        self._pongs_at_ping = 0
        self._last_ping = now

    def openai_opened(self, now: float) -> None:
        """A new OpenAI socket: its clock starts afresh (a reconnect's pongs count from 0)."""
        self._ping_at, self._pongs_at_ping, self._last_ping = None, 0, now

    def pinged(self, now: float, pongs: int) -> None:
        self._ping_at, self._pongs_at_ping, self._last_ping = now, pongs, now

    def tick(self, now: float, *, started: bool, openai_pongs: int | None) -> Verdict | None:
        """What to do now; ``openai_pongs`` is None while there is no OpenAI socket."""
        p = self.policy
        if not started:
            return Verdict.NO_START if now - self.opened_at > p.start_timeout_s else None
        if now - self.twilio_seen > p.twilio_idle_s:
            return Verdict.TWILIO_SILENT
        if openai_pongs is None:
            return None
        if self._ping_at is not None:
            if openai_pongs > self._pongs_at_ping:
                self._ping_at = None  # answered
            elif now - self._ping_at > p.pong_timeout_s:
                return Verdict.OPENAI_SILENT
            else:
                return None
        if p.ping_every_s > 0 and now - self._last_ping >= p.ping_every_s:
            return Verdict.PING
        return None
