"""GET /metrics on the admin listener: valid Prometheus text, and the numbers move after a call."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llc import metrics
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from tests.helpers.stack import StackFactory

LINES = ["Hello?"]


async def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the page, keyed by (name, sorted labels); parsing fails on bad exposition."""
    async with httpx.AsyncClient() as client:
        resp = await client.get(base_url + "/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_parse_and_move_after_a_call(start_stack: StackFactory) -> None:
    stack = await start_stack(user_transcripts=LINES)
    before = await scrape(stack.admin_url)
    assert value(before, "llc_active_calls") == 0
    for name in ("llc_voice_to_voice_seconds_count", "llc_bargein_seconds_count"):
        assert (name, ()) in before  # histograms are exposed before the first observation
    assert ("llc_prewarm_total", (("result", "hit"),)) in before

    result = await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn(t) for t in LINES], max_call_s=20)).run()
    await stack.wait_records(1)
    after = await scrape(stack.admin_url)
    record = stack.state.records[-1]

    assert result.ended_by == "caller_hangup"
    calls = ("llc_calls_total", {"outcome": "caller_hangup", "direction": "inbound"})
    assert value(after, calls[0], **calls[1]) == value(before, calls[0], **calls[1]) + 1
    turns = value(after, "llc_voice_to_voice_seconds_count") - value(before, "llc_voice_to_voice_seconds_count")
    assert turns == len(record.turns) == 1
    for direction, frames in (("to_openai", record.frames_from_twilio), ("to_twilio", record.frames_to_twilio)):
        moved = value(after, "llc_frames_relayed_total", direction=direction) - value(before, "llc_frames_relayed_total", direction=direction)
        assert moved == frames > 0
    assert value(after, "llc_active_calls") == 0


async def test_openai_errors_are_counted_by_code(start_stack: StackFactory) -> None:
    stack = await start_stack("ga", settings={"openai_api_shape": "flat"})
    before = await scrape(stack.admin_url)
    await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=5)).run()
    await stack.wait_records(1)
    after = await scrape(stack.admin_url)
    key = {"code": "beta_api_shape_disabled"}
    assert value(after, "llc_openai_errors_total", **key) == value(before, "llc_openai_errors_total", **key) + 1
    outcome = {"outcome": "openai_session_rejected", "direction": "inbound"}
    assert value(after, "llc_calls_total", **outcome) == value(before, "llc_calls_total", **outcome) + 1


def test_functions_other_features_call() -> None:
    def count(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, labels or None) or 0.0

    bargein, hits, fallbacks = count("llc_bargein_seconds_count"), count("llc_prewarm_total", result="hit"), count("llc_prewarm_total", result="fallback")
    metrics.observe_bargein(120)
    metrics.prewarm_hit()
    metrics.prewarm_fallback()
    assert count("llc_bargein_seconds_count") == bargein + 1
    assert metrics.REGISTRY.get_sample_value("llc_bargein_seconds_bucket", {"le": "0.15"}) >= 1
    assert count("llc_prewarm_total", result="hit") == hits + 1
    assert count("llc_prewarm_total", result="fallback") == fallbacks + 1
