"""The barge-in benchmark, short: a real `llc-phone serve` process, fails on errors or lost barge-ins."""

from llc.kit.bench.bargein import render, run_bench


async def test_bargein_bench_short() -> None:
    result = await run_bench(calls=2, barge_ins=2, after_ms=600, ttfb_ms=100)
    assert result["barge_ins"] == 4 and result["calls_unmatched"] == 0
    assert result["openai_errors"] == 0
    assert result["truncates_accepted"] + result["deletes_accepted"] == 4
    assert set(result["server_ms"]) == {"p50", "p99", "max"}  # type: ignore[arg-type]
    # Every barge-in's truncate is paired with what the caller's playout clock heard. The bench
    # shows the playout clock within 20 ms (200 barge-ins); 10 ms more for a busy CI box. Marks
    # alone left the cut 40-60 ms short.
    assert result["truncate_abs_error_ms"]["max"] <= 30  # type: ignore[index]
    assert "speech_started -> clear" in render(result)
