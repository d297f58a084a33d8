"""`llc-phone demo` keeps its call where `llc-phone calls` looks, says where, and prints the call as it goes."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from llc.cli import main


def test_demo_stores_its_call_for_llc_calls_and_prints_it_live(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.db"
    assert main(["demo", "--db", str(db), "--ttfb-ms", "50", "--silence-ms", "200"]) == 0
    out = capsys.readouterr().out
    live, summary = out.split("llc-phone demo: one simulated call", 1)
    assert "caller  Hello?" in live  # printed during the call
    # One latency: the live line, the summary table and `calls show` give the same number.
    [live_ms] = re.findall(r"turn 1: voice-to-voice (\d+) ms", live)
    assert re.search(rf"\n  1 +{live_ms} ms +[\d.]+ ms +[\d.]+ ms", summary), summary
    assert "Transcript" not in summary  # not printed twice
    assert f"stored in the demo's own database, {db}" in out and "demo OK" in summary

    assert main(["calls", "--db", str(db), "--json"]) == 0
    [row] = orjson.loads(capsys.readouterr().out)
    assert f"llc-phone calls show {row['call_sid']}" in out
    assert main(["calls", "show", row["call_sid"], "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "timeline" in shown and "caller    Hello?" in shown and "llc relay" in shown
    assert f"turn 1: voice-to-voice {live_ms} ms = VAD wait" in shown
