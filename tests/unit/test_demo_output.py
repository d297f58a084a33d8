"""What `llc-phone demo` prints: the call as it happens, and the IVR summary without misleading lines."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from llc.core.record import CallRecord, TranscriptLine, TurnLatency
from llc.kit.demo import LiveView, render_mode


def server_with(record: CallRecord) -> Any:
    return SimpleNamespace(active=[SimpleNamespace(record=record)])


def test_live_view_prints_each_new_line_and_turn_once_and_a_progress_line_while_waiting() -> None:
    out: list[str] = []
    progress: list[str] = []
    view = LiveView(out.append, tty=True, progress=progress.append)
    record = CallRecord(call_sid="CA1")
    server = server_with(record)
    view.poll(server, 0.5)
    assert out == [] and progress[-1].startswith("\r  …") and "0.5 s" in progress[-1]
    record.transcript.append(TranscriptLine("caller", "Hello?", 1.1))
    record.turns.append(TurnLatency(1.1, 1.35, vad_wait_ms=400.0, relay_ms=0.3))
    view.poll(server, 1.4)
    # One number, and the parts it is the sum of (the model's part is the rest of the 250 ms).
    assert out == ["    1.10s  caller  Hello?",
                   "          turn 1: voice-to-voice 650 ms = VAD wait ~400 ms + model 250 ms + llc relay 0.3 ms"]
    assert progress[-1].startswith("\r ") and progress[-1].endswith("\r")  # the progress line was wiped first
    record.transcript.append(TranscriptLine("agent", "Hi there, how can I help?", 1.6, True, "i1", 2000, 500, "Hi there…"))
    view.poll(server, 1.7)
    view.poll(server, 1.8)
    assert out[2:] == [("    1.60s  agent   Hi there, how can I help?\n"
                        "                  (cut by the caller: heard 500 of 2000 ms, about: 'Hi there…')")]


def test_ivr_summary_quotes_keys_shows_a_transfer_as_handed_over_and_no_empty_latency_line() -> None:
    rec = CallRecord(call_sid="CA2", scenario="ivr", dtmf=["0"], dtmf_at=[4.5]).as_dict()
    rec["tool_calls"] = [{"name": "transfer_call", "arguments": '{"to":"+15550102001"}', "started_at": 9.1,
                          "output": None, "error": "the call ended while the tool ran", "ms": None, "call_id": "local_1"}]
    rec["transcript"] = [{"role": "agent", "text": "Welcome.", "at": 2.0}]
    rec["end_reason"] = "caller_hangup"
    out: list[str] = []
    assert render_mode(rec, ["+15550102001"], [], [], [], out=out.append, live=True)
    text = "\n".join(out)
    assert "keys pressed: '0'" in text
    assert "None ms" not in text and "the call ended while the tool ran" not in text
    assert "handed over" in text
    assert "Latency per turn: no turn had a spoken reply" in text
