"""Short versions of the benchmarks for CI: they fail on lost frames or errors, never on times."""

from __future__ import annotations

import pytest

from llc.cli import main
from llc.kit.bench import relay
from llc.kit.bench import server_proc as sp


def test_relay_short_run_through_a_real_server_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # CI's version of `llc-phone bench relay`: 10 calls, a few seconds, the product's one media path;
    # it fails on lost/reordered frames or errors, not on times.
    assert main(["bench", "relay", "--calls", "10", "--seconds", "3", "--engine", "fast"]) == 0
    out = capsys.readouterr().out
    assert out.count("frames lost: 0 to OpenAI, 0 to Twilio; out of order: 0") == 1
    assert "loopback echo (floor)" in out and "ms per call-second" in out


def short_run(engine: str, calls: int, seconds: float, barge_every_s: float = 0.0) -> relay.RelayResult:
    """One unpinned `llc-phone bench relay` measurement with its own echo floor."""
    echo, url = sp.start_echo()
    try:
        return relay.measure(engine, calls, seconds, echo_url=url, pin=False, warmup_s=0.5, barge_every_s=barge_every_s)
    finally:
        echo.kill()
        echo.wait()


def test_relay_measure_counts_frames_both_ways() -> None:
    r = short_run("fast", 5, 2.0)
    assert r.ok, r.errors
    # 5 calls x 50 frames/s x 2 s, each way (a little slack for the window edges).
    assert r.to_openai.n >= 400 and r.to_twilio.n >= 400 and r.echo.n >= 100
    assert r.cpu_ms_per_call_s > 0 and r.rss_kib > 0


def test_marks_are_echoed_like_twilio_and_coalesced_by_the_server() -> None:
    # The load generator echoes marks as Twilio does; the server marks every 500 ms of audio,
    # so 20 ms deltas draw 2 marks per call-second, not 50.
    r = short_run("fast", 4, 2.0)
    assert r.ok, r.errors
    per_call_s = r.marks_echoed / (r.calls * r.seconds)
    assert 1.5 <= per_call_s <= 2.5


def test_every_barge_in_is_cleared_at_the_caller_and_no_frame_is_lost() -> None:
    # --barge-every: the fake OpenAI reports speech over the agent mid-item, then starts a new
    # item; the server must clear the caller's audio each time and drop nothing of the new item.
    r = short_run("fast", 4, 2.0, barge_every_s=0.4)
    assert r.ok, r.errors
    sent, cleared = r.barges
    assert sent >= 10 and cleared == sent, r.barges
    assert r.bargein is not None and r.bargein.n == cleared and r.bargein.p50 > 0


@pytest.mark.skipif(not sp.reference_available(), reason="the `compare` extra (FastAPI, uvicorn[standard]) is not installed")
def test_reference_relay_relays_both_ways() -> None:
    r = short_run(sp.REFERENCE, 3, 1.5)
    assert r.lost == 0 and r.to_openai.n >= 150 and r.to_twilio.n >= 150


def test_core_bench_prints_the_cost_per_frame_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "core", "--frames", "200", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    lines = {line.split("->")[0].strip(): float(line.split()[-1]) for line in out.splitlines() if "->" in line}
    assert set(lines) == {"Twilio media frame", "OpenAI audio delta"} and all(0 < v < 1000 for v in lines.values())
