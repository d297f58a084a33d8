"""Liveness decisions as data (llc/core/liveness.py): timestamps in, a verdict out."""

from __future__ import annotations

from llc.core.liveness import Liveness, LivenessPolicy, Verdict

POLICY = LivenessPolicy(start_timeout_s=5, twilio_idle_s=5, ping_every_s=2, pong_timeout_s=3)


def test_a_socket_that_never_starts_is_closed_after_the_start_timeout() -> None:
    live = Liveness(POLICY, now=100.0)
    assert live.tick(104.9, started=False, openai_pongs=None) is None
    assert live.tick(105.1, started=False, openai_pongs=None) is Verdict.NO_START


def test_twilio_silence_is_a_dead_leg_and_any_frame_keeps_it_alive() -> None:
    live = Liveness(POLICY, now=0.0)
    live.twilio_seen = 3.0
    assert live.tick(7.9, started=True, openai_pongs=None) is None
    assert live.tick(8.1, started=True, openai_pongs=None) is Verdict.TWILIO_SILENT


def test_openai_is_pinged_and_a_pong_within_the_deadline_keeps_it() -> None:
    live = Liveness(POLICY, now=0.0)
    live.openai_opened(0.0)
    assert live.tick(1.0, started=True, openai_pongs=0) is None
    live.twilio_seen = 2.0
    assert live.tick(2.0, started=True, openai_pongs=0) is Verdict.PING
    live.pinged(2.0, pongs=0)
    assert live.tick(4.9, started=True, openai_pongs=0) is None  # waiting, within the deadline
    live.twilio_seen = 4.9
    assert live.tick(4.95, started=True, openai_pongs=1) is Verdict.PING  # answered; next ping due


def test_an_unanswered_ping_is_a_dead_openai_leg_and_a_new_socket_starts_afresh() -> None:
    live = Liveness(POLICY, now=0.0)
    live.pinged(2.0, pongs=4)
    live.twilio_seen = 5.0
    assert live.tick(5.1, started=True, openai_pongs=4) is Verdict.OPENAI_SILENT
    live.openai_opened(5.1)  # the replacement: its pongs count from 0, no ping is owed
    assert live.tick(5.2, started=True, openai_pongs=0) is None


def test_no_pings_when_turned_off_and_the_tick_is_a_tenth_of_the_tightest_bound() -> None:
    live = Liveness(LivenessPolicy(ping_every_s=0), now=0.0)
    live.twilio_seen = 100.0
    assert live.tick(100.0, started=True, openai_pongs=0) is None
    assert LivenessPolicy(twilio_idle_s=0.5).tick_s == 0.05 and LivenessPolicy().tick_s == 0.2
