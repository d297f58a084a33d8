"""One call's story in time order, from a stored record (old records lacking new fields included)."""

from __future__ import annotations

import pytest

from llc.commands.calls import show
from llc.core.record import BargeInRecord, CallRecord, ToolCallRecord, TranscriptLine, TurnLatency
from llc.core.timeline import timeline, waterfalls


def record() -> dict:
    rec = CallRecord(call_sid="CA1", started_at=1000.0, ended_at=1010.0, end_reason="caller_hangup",
                     dtmf=["0"], dtmf_at=[0.5], reconnects=["dropped (code 1011)"])
    rec.transcript += [TranscriptLine("caller", "Hours?", 1.0),
                       TranscriptLine("agent", "We open at nine and close at five.", 1.3, True, "i1", 4000, 1000, "We open…")]
    rec.turns.append(TurnLatency(1.0, 1.25, vad_wait_ms=400.0, relay_ms=0.3))
    rec.barge_ins.append(BargeInRecord(2.3, "i1", 1000, False))
    rec.tool_calls.append(ToolCallRecord("c1", "get_orders", "{}", 3.0, None, "the call ended while the tool ran"))
    rec.routes.append({"at": 0.6, "via": "dtmf", "choice": "0", "action": "hint", "target": "repeat"})
    data = rec.as_dict()
    data["statuses"] = [{"status": "completed", "timestamp": "", "received": "1011.5"}]
    return data


def test_timeline_orders_every_kind_and_puts_the_untimed_last() -> None:
    kinds = [(e.at, e.kind) for e in timeline(record())]
    assert kinds == [(0.5, "key"), (0.6, "route"), (1.0, "caller"), (1.0, "turn"), (1.3, "agent"), (2.3, "barge-in"),
                     (3.0, "tool"), (11.5, "status"), (None, "reconnect")]
    [fall] = waterfalls(record())
    # The record's ms runs to the frame sent, relay included: the parts add up to its voice-to-voice.
    assert (fall.vad_wait_ms, fall.model_ms, fall.relay_ms) == (400.0, 249.7, 0.3)
    assert fall.total_ms == record()["turns"][0]["voice_to_voice_ms"] == 650.0


def test_an_old_record_without_the_new_fields_still_shows() -> None:
    old = {"transcript": [{"role": "agent", "text": "Hi", "at": 1.0, "interrupted": False}], "dtmf": ["1"],
           "turns": [{"speech_stopped_at": 0.5, "ms": 300.0}]}
    assert [e.kind for e in timeline(old)] == ["turn", "agent", "key"]
    assert waterfalls(old)[0].vad_wait_ms is None


def test_calls_show_prints_the_cut_the_barge_in_and_the_tool_that_outlived_the_call(capsys: pytest.CaptureFixture[str]) -> None:
    show(record())
    out = capsys.readouterr().out
    assert "(interrupted: heard 1000 ms of 4000 ms; heard, estimated: 'We open…')" in out
    assert "barge-in  caller talked over the agent (heard 1000 ms)" in out
    assert "[still running when the call ended]" in out and "None ms" not in out
    assert "turn 1: voice-to-voice 650 ms = VAD wait ~400 ms + model 250 ms + llc relay 0.3 ms" in out
