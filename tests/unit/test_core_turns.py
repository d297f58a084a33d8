"""Response gating, barge-in, the turn switch and tools in the call core, as data."""

import orjson

from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.actions import Deadline, EndCall, Log, RunTool, Timer, ToolFiller, ToOpenAI, ToTwilio
from llc.core.call import CallCore
from llc.core.dialect import GA
from llc.core.session import SessionSpec, TurnDetection
from llc.core.turns import ResponseGate, TurnPolicy
from llc.tools.builtin import BUILTIN

START = tw.Start("MZ1", "CA1", "AC1", {})


def core(interrupt_response: bool = True, **policy: object) -> CallCore:
    # A mark per 100 ms delta (the default is 500 ms): these tests name which marks were heard.
    policy.setdefault("mark_every_ms", 100)
    spec = SessionSpec(turn_detection=TurnDetection(interrupt_response=interrupt_response))
    c = CallCore(GA, spec, policy=TurnPolicy(**policy), tool_schemas=BUILTIN.schemas())  # type: ignore[arg-type]
    c.on_twilio(START, 0.0)
    c.on_openai_open()
    c.on_openai(oa.SessionUpdated(), 0.1)
    return c


def openai_out(actions: list) -> list[dict]:
    return [orjson.loads(a.text) for a in actions if isinstance(a, ToOpenAI)]


def twilio_out(actions: list) -> list[dict]:
    return [orjson.loads(a.text) for a in actions if isinstance(a, ToTwilio)]


def agent_speaks(c: CallCore, response: str = "r1", item: str = "i1", chunks: int = 3) -> list[str]:
    c.on_openai(oa.from_json({"type": "response.created", "response": {"id": response}}), 1.0)
    marks = []
    for _ in range(chunks):
        acts = c.on_openai(oa.from_json({"type": "response.output_audio.delta", "response_id": response, "item_id": item,
                            "delta": "A" * 1068}), 1.0)  # 1068 base64 chars = 801 bytes = 100 ms
        marks.append(twilio_out(acts)[1]["mark"]["name"])
    return marks


def strip(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "event_id"} for e in events]


def test_gate_queues_creates_until_done() -> None:
    g = ResponseGate()
    assert strip(g.request({"type": "response.create", "n": 1})) == [{"type": "response.create", "n": 1}]
    assert g.request({"type": "response.create", "n": 2}) == []  # ours is still unanswered
    g.on_created("r1")
    assert g.request({"type": "response.create", "n": 3}) == []
    assert strip(g.on_done("r1")) == [{"type": "response.create", "n": 2}]
    g.on_created("r2")
    assert strip(g.on_done("r2")) == [{"type": "response.create", "n": 3}]
    g.on_created("r3")
    assert g.on_done("r3") == [] and not g.busy


def test_gate_resends_a_create_that_raced_the_vad() -> None:
    g = ResponseGate()
    [sent] = g.request({"type": "response.create", "n": 1})
    g.on_created("vad")  # the VAD's own response is announced first...
    g.on_already_active(sent["event_id"])  # ...then our create bounces off it
    g.on_already_active("someone-else")  # an unknown event id changes nothing
    assert strip(g.on_done("vad")) == [{"type": "response.create", "n": 1}]
    assert not g.on_done("other")


def test_barge_in_clears_first_then_truncates_to_heard_audio() -> None:
    c = core()
    marks = agent_speaks(c)
    c.on_twilio(tw.Mark(marks[0]), 1.2)
    acts = c.on_openai(oa.from_json({"type": "input_audio_buffer.speech_started", "audio_start_ms": 900}), 1.25)
    assert isinstance(acts[0], ToTwilio) and twilio_out(acts[:1]) == [{"event": "clear", "streamSid": "MZ1"}]
    # interrupt_response is on: the service cancels itself, so no response.cancel from us.
    # Heard by the playout clock: 300 ms sent at 1.0; the clear leaves at 1.25 and reaches
    # Twilio as late as the audio did, so the caller heard 250 ms (the mark confirmed 100).
    assert openai_out(acts) == [{"type": "conversation.item.truncate", "item_id": "i1", "content_index": 0, "audio_end_ms": 250}]
    assert c.record.barge_ins[0].heard_ms == 250


def test_barge_in_sends_cancel_when_the_service_does_not() -> None:
    c = core(interrupt_response=False)
    agent_speaks(c)
    acts = c.on_openai(oa.SpeechStarted(), 1.0)  # nothing played yet
    assert [e["type"] for e in openai_out(acts)] == ["response.cancel", "conversation.item.delete"]


def test_no_cancel_when_no_response_in_flight() -> None:
    c = core(interrupt_response=False)
    marks = agent_speaks(c)
    c.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r1", "status": "completed"}}), 1.1)
    acts = c.on_openai(oa.SpeechStarted(), 1.2)
    assert "response.cancel" not in [e["type"] for e in openai_out(acts)]  # never response_cancel_not_active
    assert twilio_out(acts)[0]["event"] == "clear"
    assert marks


def test_speech_while_agent_silent_is_an_ordinary_turn() -> None:
    c = core()
    assert c.on_openai(oa.SpeechStarted(), 1.0) == []
    assert c.record.barge_ins == []


def test_deltas_after_clear_are_dropped_and_stale_marks_ignored() -> None:
    c = core()
    marks = agent_speaks(c)
    c.on_openai(oa.SpeechStarted(), 1.2)
    late = c.on_openai(oa.from_json({"type": "response.output_audio.delta", "response_id": "r1", "item_id": "i1", "delta": "AAAA"}), 1.21)
    assert late == []
    for m in marks:  # Twilio returns the pending marks after the clear
        c.on_twilio(tw.Mark(m), 1.22)
    assert c.playout.items["i1"].played_ms == 200  # the clock at the clear, not the 300 ms they claim
    # The next response is heard normally.
    c.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r1", "status": "cancelled"}}), 1.3)
    assert agent_speaks(c, "r2", "i2", 1)


def test_two_barge_ins_in_one_response_truncate_monotonically() -> None:
    c = core(interrupt_response=False)
    marks = agent_speaks(c)
    c.on_twilio(tw.Mark(marks[0]), 1.1)
    first = openai_out(c.on_openai(oa.SpeechStarted(), 1.2))
    # By the playout clock (300 ms from 1.0, the mark's echo on time): 200 ms heard at 1.2.
    assert first[-1] == {"type": "conversation.item.truncate", "item_id": "i1", "content_index": 0, "audio_end_ms": 200}
    # A second speech_started in the same response, nothing new played: nothing more to cut.
    second = c.on_openai(oa.SpeechStarted(), 1.4)
    assert "conversation.item.truncate" not in [e["type"] for e in openai_out(second)]


def test_switch_happens_once_after_first_turn() -> None:
    c = core()
    first_tools = [t["name"] for t in c.talk.spec.tools]
    assert first_tools == ["end_call"] and c.talk.spec.turn_detection.eagerness == "high"
    agent_speaks(c)
    acts = c.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r1"}}), 2.0)
    [update] = openai_out(acts)
    assert update["session"]["audio"]["input"]["turn_detection"]["eagerness"] == "medium"
    assert [t["name"] for t in update["session"]["tools"]] == ["end_call", "transfer_call"]
    agent_speaks(c, "r2", "i2", 1)
    assert openai_out(c.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r2"}}), 3.0)) == []


def test_tool_call_runs_then_output_and_response_queued_behind_active() -> None:
    c = core(tool_filler_after_ms=1000)
    c.on_openai(oa.from_json({"type": "response.created", "response": {"id": "r1"}}), 1.0)
    acts = c.on_openai(oa.from_json({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "lookup",
                        "arguments": '{"q": 1}'}), 1.0)
    assert RunTool("c1", "lookup", '{"q": 1}') in acts and Timer(ToolFiller("c1"), 1.0) in acts
    # The function-call response is still active: output goes now, response.create waits.
    out = openai_out(c.on_tool_result("c1", '{"ok": true}', 1.5))
    assert out == [{"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c1", "output": '{"ok": true}'}}]
    assert strip(openai_out(c.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r1"}}), 1.6)))[-1] == {"type": "response.create"}
    assert c.record.tool_calls[0].output == '{"ok": true}' and c.record.tool_calls[0].ms == 500.0


def test_slow_tool_gets_a_filler_only_when_the_agent_is_silent() -> None:
    c = core()
    c.on_openai(oa.from_json({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "lookup", "arguments": "{}"}), 1.0)
    [filler] = openai_out(c.on_timer(ToolFiller("c1"), 2.5))
    assert filler["type"] == "response.create" and "checking" in filler["response"]["instructions"]
    c.on_tool_result("c1", "{}", 3.0)
    assert c.on_timer(ToolFiller("c1"), 4.0) == []  # finished tools get no filler


def test_tool_error_is_told_to_the_model_and_logged() -> None:
    c = core()
    c.on_openai(oa.from_json({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "x", "arguments": "{}"}), 1.0)
    acts = c.on_tool_result("c1", '{"error": "boom"}', 1.1, error="boom")
    assert any(isinstance(a, Log) and a.level == "warning" for a in acts)
    assert c.record.tool_calls[0].error == "boom"


def test_end_call_hangs_up_only_after_the_goodbye_is_heard() -> None:
    c = core()
    assert c.request_hangup() == [Timer(Deadline.HANGUP_GRACE, 15.0)]
    marks = agent_speaks(c, "bye", "ib", 2)
    assert c.on_openai(oa.from_json({"type": "response.done", "response": {"id": "bye"}}), 2.0)[-1:] != [EndCall("agent_hangup", "end_call: goodbye played")]
    assert c.on_twilio(tw.Mark(marks[0]), 2.1) == []
    assert c.on_twilio(tw.Mark(marks[1]), 2.2) == [EndCall("agent_hangup", "end_call: goodbye played")]


def test_end_call_waits_for_the_tail_mark_of_a_goodbye_in_small_deltas() -> None:
    c = core()  # marks every 100 ms: a 140 ms goodbye in 20 ms deltas leaves a 40 ms unmarked tail
    c.request_hangup()
    c.on_openai(oa.from_json({"type": "response.created", "response": {"id": "bye"}}), 2.0)
    marks = []
    for _ in range(7):
        acts = c.on_openai(oa.from_json({"type": "response.output_audio.delta", "response_id": "bye", "item_id": "ib",
                            "delta": "A" * 214 + "=="}), 2.0)  # 160 bytes = 20 ms
        marks += [m["mark"]["name"] for m in twilio_out(acts) if m["event"] == "mark"]
    assert len(marks) == 1
    marks += [m["mark"]["name"] for m in twilio_out(c.on_openai(oa.from_json({"type": "response.output_audio.done", "item_id": "ib"}), 2.1))]
    assert c.on_openai(oa.from_json({"type": "response.done", "response": {"id": "bye"}}), 2.2)[-1:] != [EndCall("agent_hangup", "end_call: goodbye played")]
    assert c.on_twilio(tw.Mark(marks[0]), 2.3) == []  # 100 of 140 ms heard: not yet
    assert c.on_twilio(tw.Mark(marks[1]), 2.4) == [EndCall("agent_hangup", "end_call: goodbye played")]


def test_a_scenarios_mark_interval_applies_from_the_first_delta() -> None:
    c = core()
    c.on_plan(c.talk.spec, TurnPolicy(mark_every_ms=0), None)  # the call's plan sets the scenario's policy
    acts = c.on_openai(oa.from_json({"type": "response.output_audio.delta", "item_id": "i1", "delta": "A" * 214 + "=="}), 1.0)
    assert [m["event"] for m in twilio_out(acts)] == ["media", "mark"]


def test_hangup_grace_bounds_a_goodbye_that_never_plays() -> None:
    c = core()
    c.request_hangup()
    [end] = c.on_timer(Deadline.HANGUP_GRACE, 20.0)
    assert isinstance(end, EndCall) and end.reason == "agent_hangup"


def test_greeting_response_goes_through_the_gate() -> None:
    c = CallCore(GA, SessionSpec(), greeting="Hello")
    c.on_twilio(START, 0.0)
    c.on_openai_open()
    c.on_openai(oa.SessionUpdated(), 0.1)
    assert c.talk.gate.busy


def test_a_cancel_that_crossed_its_response_done_is_expected_and_counted() -> None:
    """The caller barges in as the reply ends: our response.cancel and the service's response.done
    cross on the wire, so the service answers response_cancel_not_active. Expected: an info
    line and a count, not an error. The same error with no done crossing it stays a warning."""
    error = {"type": "error", "error": {"code": "response_cancel_not_active", "message": "no active response"}}
    c = core(interrupt_response=False)
    agent_speaks(c)
    assert "response.cancel" in [e["type"] for e in openai_out(c.on_openai(oa.SpeechStarted(), 1.0))]
    c.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r1", "status": "completed"}}), 1.01)
    [log] = c.on_openai(oa.from_json(error), 1.02)
    assert isinstance(log, Log) and log.level == "info" and "crossed" in log.msg
    assert c.record.cancels_crossed == 1 and c.record.openai_errors == {}
    [again] = c.on_openai(oa.from_json(error), 1.5)  # a second one: nothing crossed it
    assert isinstance(again, Log) and again.level == "warning"
    assert c.record.openai_errors == {"response_cancel_not_active": 1} and c.record.cancels_crossed == 1
