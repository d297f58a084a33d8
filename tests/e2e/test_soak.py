"""A short soak through a real server process: nothing leaks, every call keeps its audio."""

from __future__ import annotations

from pathlib import Path

from llc.kit.soak import FIELDS, _check, soak


async def test_short_soak_is_flat_and_clean(tmp_path: Path) -> None:
    csv_path = tmp_path / "soak.csv"
    report = await soak(5, 8, 4, csv_path)
    assert report.failures == []
    assert report.calls_done >= 8  # warm-up calls plus continuous ones
    assert report.idle_after["fds"] == report.idle_before["fds"]
    assert report.idle_after["tasks"] == report.idle_before["tasks"]
    # Every call's record reached the store with its transcript, and tool calls were mixed in.
    assert report.records_checked == len(report.call_sids) == report.calls_done
    assert report.tool_calls >= 1
    header = csv_path.read_text().splitlines()[0]
    assert header.split(",") == FIELDS


def test_check_names_each_leak() -> None:
    from llc.kit.soak import SoakReport

    report = SoakReport(
        samples=[{"t_s": 10, "active_calls": 5, "rss_kib": 100_000}, {"t_s": 20, "active_calls": 5, "rss_kib": 110_000}],
        idle_before={"fds": 10, "sockets": 6, "tasks": 12}, idle_after={"fds": 11, "sockets": 6, "tasks": 14})
    _check(report, 0.05)
    assert any(f.startswith("fds grew") for f in report.failures)
    assert any(f.startswith("tasks grew") for f in report.failures)
    assert any(f.startswith("RSS grew 10.0%") for f in report.failures)
    assert not any(f.startswith("sockets") for f in report.failures)


async def test_missing_record_and_no_tool_calls_are_failures(tmp_path: Path) -> None:
    from llc.kit.soak import SoakReport, _check_records

    report = SoakReport(call_sids=["CAnot-stored"])
    await _check_records(report, str(tmp_path / "empty.db"))
    assert report.failures == ["call CAnot-stored has no record in the store",
                               "no tool call was recorded: the soak did not exercise the tool loop"]


def test_rss_growth_is_measured_after_the_warm_up() -> None:
    from llc.kit.soak import SoakReport

    # Windows filling in the first minutes, then flat: passes; then a steady climb: fails.
    warm = [60_000, 70_000, 71_000, 71_200, 71_400, 71_500, 71_600, 71_700, 71_800, 71_900]
    flat = SoakReport(samples=[{"t_s": 60 * i, "active_calls": 5, "rss_kib": r} for i, r in enumerate(warm)])
    _check(flat, 0.05)
    assert flat.failures == [] and "+1.3% after warm-up" in flat.rss_note
    leak = SoakReport(samples=[{"t_s": 60 * i, "active_calls": 5, "rss_kib": 70_000 + 1_000 * i} for i in range(10)])
    _check(leak, 0.05)
    assert leak.failures == ["RSS grew 9.7% after warm-up (tolerance 5%)"]
