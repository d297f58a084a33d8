"""The network model behind `llc-phone bench paths`: TCP's re-sending and head-of-line wait, RTP's gaps."""

from __future__ import annotations

import random

import pytest

from llc.kit.bench.netmodel import FRAME_MS, RTO_MS, Leg, Network, carry, model_path, one_way


class Losing(random.Random):
    """Loses exactly the packets (by draw) it is told to."""

    def __init__(self, lost_draws: set[int]) -> None:
        super().__init__(0)
        self.lost, self.draws = lost_draws, -1

    def random(self) -> float:
        self.draws += 1
        return 0.0 if self.draws in self.lost else 0.99


SENT = [i * FRAME_MS for i in range(8)]


@pytest.mark.parametrize(("leg", "lost", "expected"), [
    pytest.param(Leg(40, 0.5, "tcp"), set(), [20.0] * 8, id="nothing-lost"),
    # Frame 2 (sent at 40) is lost: its copy goes when frame 5's duplicate ACK is back (sent at
    # 100, + RTT 40) and arrives at 160; every frame that arrived before then waits for it.
    pytest.param(Leg(40, 0.5, "tcp"), {2}, [20, 20, 120, 100, 80, 60, 40, 20], id="tcp-head-of-line"),
    pytest.param(Leg(40, 0.5, "rtp"), {2}, [20, 20, None, 20, 20, 20, 20, 20], id="rtp-gap"),
    # The last frame has no later frames to reveal its loss: a timeout.
    pytest.param(Leg(40, 0.5, "tcp"), {7}, [20] * 7 + [RTO_MS + 20], id="tail-loss-waits-a-timeout"),
    # The copy is lost too (the second draw): one more timeout.
    pytest.param(Leg(40, 0.5, "tcp"), {2, 3}, [20, 20, 120 + RTO_MS, 100 + RTO_MS, 80 + RTO_MS, 60 + RTO_MS,
                                               40 + RTO_MS, 20 + RTO_MS], id="the-copy-lost-too"),
])
def test_one_leg(leg: Leg, lost: set[int], expected: list[float | None]) -> None:
    delivered = carry(leg, SENT, Losing(lost))
    assert [None if d is None else round(d - s, 6) for d, s in zip(delivered, SENT)] == expected


def test_the_relay_and_both_legs_add_up_with_no_loss() -> None:
    legs = Network(20, 30, 40).media_legs()
    delays, lost = one_way(legs, 100, 0.5, random.Random(1))
    assert lost == 0 and set(delays) == {10 + 0.5 + 15}


def test_sip_is_one_leg_faster_and_loss_costs_it_frames_not_time() -> None:
    net = Network(20, 30, 40, loss=0.02)
    media = model_path(net.media_legs(), 0.1, 600, frames=20_000, samples=5_000)
    sip = model_path((net.sip_leg(),), 0.0, 600, frames=20_000, samples=5_000)
    assert sip.voice_to_voice_p50_ms == sip.voice_to_voice_p99_ms == 600 + 40
    assert 0.015 < sip.lost < 0.025
    assert media.lost == 0 and media.voice_to_voice_p99_ms > media.voice_to_voice_p50_ms + 50  # re-sent, held
    assert all(leg.loss == pytest.approx(1 - 0.98 ** 0.5) for leg in net.media_legs())  # 2 % over both legs
    clean = model_path(Network(20, 30, 40).media_legs(), 0.1, 600, frames=2_000, samples=1_000)
    assert clean.voice_to_voice_p99_ms == pytest.approx(600 + 2 * (10 + 15 + 0.1))
