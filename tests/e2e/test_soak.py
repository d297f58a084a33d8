"""A short soak through a real server process: nothing leaks, every call keeps its audio."""

from __future__ import annotations

from pathlib import Path

from llc.kit.sim.wall_clock import INSTALL, find_libfaketime
from llc.kit.soak import FIELDS, soak
from tests.helpers.components import missing


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


async def test_missing_record_and_no_tool_calls_are_failures(tmp_path: Path) -> None:
    from llc.kit.soak import SoakReport, _check_records

    report = SoakReport(call_sids=["CAnot-stored"])
    await _check_records(report, str(tmp_path / "empty.db"))
    assert report.failures == ["call CAnot-stored has no record in the store",
                               "no tool call was recorded: the soak did not exercise the tool loop"]


async def test_short_soak_with_faults_reaches_every_designed_outcome(tmp_path: Path) -> None:
    """`llc-phone soak --faults`: the server's wall clock steps back under live calls, a silent
    Twilio leg and a socket without start each end within their bound, a flood of key presses leaves the server on time and is recorded whole, no call is
    left active, nothing leaks, no record is lost."""
    if find_libfaketime() is None:
        missing("libfaketime (steps the server's wall clock)", INSTALL)
    report = await soak(3, 14, 5, tmp_path / "soak.csv", faults_every_s=2.5)
    assert report.faults is not None and report.failures == [], report.failures
    # The wall clock stepped back 2 minutes under calls in flight; every one kept its final record.
    assert report.faults.injected["clock_step"] == 1 and report.faults.calls_across_steps >= 1
    assert 0 < report.faults.longest_s["clock_step"] < 3
    assert report.faults.injected["twilio_silent"] >= 1 and report.faults.injected["no_start"] >= 1
    assert report.faults.injected["key_flood"] >= 1 and len(report.faults.flood_call_sids) >= 1
    assert 0 < report.faults.longest_s["key_flood"] < 0.5  # /healthz during the flood
    assert 0 < report.faults.longest_s["no_start"] < 7 and 0 < report.faults.longest_s["twilio_silent"] < 7.5
    assert report.zombies == 0 and report.idle_after["fds"] <= report.idle_before["fds"]
    assert report.records_checked == len(report.call_sids)


def test_only_the_cancels_the_server_saw_cross_are_excused() -> None:
    from llc.kit.soak import expected_errors_removed

    crossed = {"type": "invalid_request_error", "code": "response_cancel_not_active"}
    other = {"type": "invalid_request_error", "code": "unknown_parameter"}
    assert expected_errors_removed([crossed, other, crossed], cancels_crossed=1) == [other, crossed]
    assert expected_errors_removed([crossed], cancels_crossed=0) == [crossed]
