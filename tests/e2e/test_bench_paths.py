"""`llc-phone bench paths`, short: the demo's call on both paths through the real server, one record each."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from llc.cli import main
from llc.kit.bench.netmodel import Network
from llc.kit.bench.paths import LOSSES, lines, measure, report


async def test_the_same_call_on_both_paths_keeps_the_same_record() -> None:
    m = await measure(1)
    media, sip = m.media[0], m.sip[0]
    assert len(lines(media)) == 4 and lines(media) == lines(sip)  # the same conversation, word for word
    assert media["end_reason"] == sip["end_reason"] == "caller_hangup"
    assert sip["path"] == "sip" and media["path"] != "sip"
    assert len(media["turns"]) == len(sip["turns"]) == 2
    # Only Media Streams relays audio; only SIP has a webhook to accept.
    assert media["frames_from_twilio"] > 0 and media["frames_to_twilio"] > 0
    assert sip["frames_from_twilio"] == sip["frames_to_twilio"] == 0
    assert len(m.relay_ms) == 2 and all(0 <= ms < 50 for ms in m.relay_ms)
    assert len(m.accept_ms) == 1 and 0 < m.accept_ms[0] < 2000
    printed: list[str] = []
    report(m, Network(), printed.append)
    text = "\n".join(printed)
    assert "MODEL (assumed, not measured)" in text and "Twilio<->OpenAI RTT 40 ms" in text
    assert sum(1 for row in printed if row.lstrip().startswith(tuple(f"{loss * 100:.1f}" for loss in LOSSES))) == 3


@pytest.fixture
def llc_logging_kept() -> Iterator[None]:
    """The command sets up llc's logging for itself; later tests get theirs back."""
    root = logging.getLogger("llc")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved


@pytest.mark.usefixtures("llc_logging_kept")
def test_the_command_prints_both_records_and_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "paths", "--calls", "1", "--twilio-openai-rtt-ms", "60"]) == 0
    out = capsys.readouterr().out
    assert "SIP webhook -> accept" in out and "Twilio<->OpenAI RTT 60 ms (SIP, RTP)" in out
    assert "caller: Hi, what time do you open tomorrow?" in out and "frames relayed by llc" in out


def test_the_command_refuses_a_negative_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "paths", "--twilio-openai-rtt-ms", "-5"]) == 2
    assert "round trips not negative" in capsys.readouterr().out
