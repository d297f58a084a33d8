"""CallCore as data: events in, actions out. No sockets, no sleeps."""

import orjson

from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.actions import ConnectOpenAI, EndCall, Log, ToOpenAI, ToTwilio
from llc.core.call import MAX_BAD_FRAMES, MAX_PENDING_FRAMES, CallCore
from llc.core.dialect import FLAT, GA
from llc.core.phase import Phase
from llc.core.record import EndReason
from llc.core.session import SessionSpec

START = tw.Start("MZ1", "CA1", "AC1", {"direction": "outbound", "scenario": "csr"})


def sent(actions: list) -> list[dict]:
    return [orjson.loads(a.text) for a in actions if isinstance(a, ToOpenAI)]


def live_core(greeting: str | None = None) -> CallCore:
    core = CallCore(GA, SessionSpec(), greeting=greeting)
    assert core.on_twilio(START, 0.0) == [ConnectOpenAI()]
    core.on_openai_open()
    core.on_openai(oa.SessionCreated(), 0.1)
    core.on_openai(oa.SessionUpdated(), 0.2)
    return core


def test_start_opens_openai_and_records_parameters() -> None:
    core = CallCore(GA, SessionSpec())
    assert core.on_twilio(tw.Connected(), 0.0) == []
    assert core.on_twilio(START, 0.0) == [ConnectOpenAI()]
    assert (core.record.call_sid, core.record.stream_sid) == ("CA1", "MZ1")
    assert (core.record.direction, core.record.scenario) == ("outbound", "csr")
    assert sent(core.on_openai_open())[0]["session"]["type"] == "realtime"


def test_audio_passes_through_untouched_both_ways() -> None:
    core = live_core()
    [append] = core.on_twilio(tw.Media("AAEC/w=="), 1.0)
    assert orjson.loads(append.text) == {"type": "input_audio_buffer.append", "audio": "AAEC/w=="}
    [out] = core.on_openai(oa.from_json({"type": "response.output_audio.delta", "item_id": "i1", "delta": "f39+fQ=="}), 1.1)
    assert isinstance(out, ToTwilio)
    assert orjson.loads(out.text) == {"event": "media", "streamSid": "MZ1", "media": {"payload": "f39+fQ=="}}
    # 5 bytes are under mark_every_ms: the mark comes when the item's audio is done.
    [mark] = core.on_openai(oa.from_json({"type": "response.output_audio.done", "item_id": "i1"}), 1.2)
    assert isinstance(mark, ToTwilio)
    assert orjson.loads(mark.text) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "m1"}}


def test_small_deltas_get_a_mark_every_500_ms_and_one_at_the_end() -> None:
    core = live_core()
    frames = []
    for _ in range(27):  # 27 deltas of 20 ms: 160 bytes = 216 base64 characters each
        frames += [orjson.loads(a.text)["event"] for a in core.on_openai(
            oa.AudioDelta("i1", "r1", "A" * 214 + "=="), 1.0)]
    assert frames == ["media"] * 25 + ["mark"] + ["media"] * 2
    # No audio.done (a response that ended early): response.done marks the tail instead.
    done = core.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r1"}}), 1.2)
    assert [orjson.loads(a.text)["event"] for a in done if isinstance(a, ToTwilio)] == ["mark"]
    assert core.playout.speaking and core.playout.unplayed_ms == 540


def test_flat_event_names_are_understood() -> None:
    core = CallCore(FLAT, SessionSpec())
    core.on_twilio(START, 0.0)
    core.on_openai_open()
    core.on_openai(oa.SessionUpdated(), 0.1)
    [out] = core.on_openai(oa.from_json({"type": "response.audio.delta", "delta": "AA=="}), 0.2)
    assert isinstance(out, ToTwilio) and '"media"' in out.text
    core.on_openai(oa.from_json({"type": "response.audio_transcript.done", "transcript": "Hello"}), 0.3)
    assert [t.text for t in core.record.transcript] == ["Hello"]


def test_caller_audio_before_session_accepted_is_held_then_flushed_in_order() -> None:
    core = CallCore(GA, SessionSpec())
    core.on_twilio(START, 0.0)
    core.on_openai_open()
    for i in range(3):
        assert core.on_twilio(tw.Media(f"p{i}"), 0.01 * i) == []
    actions = core.on_openai(oa.SessionUpdated(), 0.5)
    assert [e["audio"] for e in sent(actions)] == ["p0", "p1", "p2"]
    assert core.phase is Phase.LIVE


def test_pending_audio_is_bounded() -> None:
    core = CallCore(GA, SessionSpec())
    core.on_twilio(START, 0.0)
    for i in range(MAX_PENDING_FRAMES + 10):
        core.on_twilio(tw.Media(str(i)), 0.0)
    core.on_openai_open()
    audio = [e["audio"] for e in sent(core.on_openai(oa.SessionUpdated(), 1.0))]
    assert len(audio) == MAX_PENDING_FRAMES and audio[-1] == str(MAX_PENDING_FRAMES + 9)


def test_caller_first_by_default_sends_nothing_on_session_updated() -> None:
    core = CallCore(GA, SessionSpec())
    core.on_twilio(START, 0.0)
    core.on_openai_open()
    assert sent(core.on_openai(oa.SessionUpdated(), 0.2)) == []


def test_greeting_is_a_user_item_plus_response_create_on_session_updated_only() -> None:
    core = CallCore(GA, SessionSpec(), greeting="Greet the caller.")
    core.on_twilio(START, 0.0)
    core.on_openai_open()
    assert sent(core.on_openai(oa.SessionCreated(), 0.1)) == []
    events = sent(core.on_openai(oa.SessionUpdated(), 0.2))
    assert [e["type"] for e in events] == ["conversation.item.create", "response.create"]
    assert events[0]["item"]["role"] == "user"
    assert events[0]["item"]["content"] == [{"type": "input_text", "text": "Greet the caller."}]
    assert "response" not in events[1]  # not response.create with instructions
    # A later session.updated (e.g. a tool switch) must not greet again.
    assert sent(core.on_openai(oa.SessionUpdated(), 3.0)) == []


def test_error_after_session_created_ends_call_with_shape_hint() -> None:
    core = CallCore(FLAT, SessionSpec())
    core.on_twilio(START, 0.0)
    core.on_openai_open()
    core.on_openai(oa.SessionCreated(), 0.1)
    actions = core.on_openai(oa.ServiceError("unknown_parameter", "invalid_request_error", None, "session.modalities", None), 0.2)
    log, end = actions
    assert isinstance(log, Log) and log.level == "error" and "OPENAI_API_SHAPE=ga" in log.msg
    assert isinstance(end, EndCall) and end.reason == "openai_session_rejected"
    assert core.record.openai_errors == {"unknown_parameter": 1}


def test_error_mid_call_is_logged_not_fatal() -> None:
    core = live_core()
    [log] = core.on_openai(oa.from_json({"type": "error", "error": {"code": "response_cancel_not_active", "message": "x"}}), 2.0)
    assert isinstance(log, Log) and log.level == "warning"


def test_hangup_ends_the_call_and_a_late_openai_close_is_ignored() -> None:
    core = live_core()
    assert core.on_twilio(tw.Stop("CA1"), 3.0) == [EndCall("caller_hangup")]
    core.end(EndReason.AGENT_HANGUP)  # the shell ends the call on EndCall; a late OpenAI close changes nothing
    assert core.on_openai_closed(1000, "") == []


def test_media_before_start_is_a_bad_frame() -> None:
    core = CallCore(GA, SessionSpec())
    [log] = core.on_twilio(tw.Media("AA=="), 0.0)
    assert isinstance(log, Log) and "media before start" in log.msg
    assert core.record.bad_frames == 1


def test_too_many_bad_frames_end_the_call() -> None:
    core = live_core()
    actions = []
    for _ in range(MAX_BAD_FRAMES + 1):
        actions = core.on_twilio_text("garbage", 1.0)
    assert isinstance(actions[-1], EndCall) and actions[-1].reason == "bad_frames"


def test_turn_latency_and_transcript() -> None:
    core = live_core()
    core.on_openai(oa.from_json({"type": "conversation.item.input_audio_transcription.completed", "transcript": " Hello? "}), 1.0)
    core.on_openai(oa.from_json({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900}), 1.0)
    core.on_openai(oa.from_json({"type": "response.output_audio.delta", "delta": "AA=="}), 1.35)
    core.on_openai(oa.from_json({"type": "response.output_audio.delta", "delta": "AA=="}), 1.5)
    core.on_openai(oa.from_json({"type": "response.output_audio_transcript.done", "transcript": "Hi there"}), 2.0)
    assert [t.ms for t in core.record.turns] == [350.0]
    assert [(t.role, t.text) for t in core.record.transcript] == [("caller", "Hello?"), ("agent", "Hi there")]


def test_non_json_and_typeless_openai_events_are_ignored() -> None:
    core = live_core()
    assert isinstance(core.on_openai_text("nope", 1.0)[0], Log)
    assert isinstance(core.on_openai_text("[]", 1.0)[0], Log)
    assert core.on_openai_text('{"type":"rate_limits.updated"}', 1.0) == []


def test_a_tool_faster_than_a_millisecond_never_takes_negative_time() -> None:
    from llc.core.journal import Journal
    from llc.core.record import CallRecord
    from llc.core.toolcalls import ToolCalls

    calls = ToolCalls(Journal(CallRecord(), 0.0))
    rec = calls.start("c1", "check", "{}", 1.0006)  # the record keeps 1.001 (ms resolution)
    calls.finish("c1", "{}", None, 1.0008)
    assert rec.ms is not None and 0 <= rec.ms < 1


def test_a_key_press_is_not_an_info_log_line() -> None:
    """A flood of keys (a forged stream sends thousands a second) must not become a flood of log
    writes on the call's thread: each key is logged at debug, the record counts them."""
    core = live_core()
    actions = [a for i in range(100) for a in core.on_twilio(tw.Dtmf("0123456789*#"[i % 12]), 1.0 + i / 1000)]
    assert [a.level for a in actions if isinstance(a, Log)] == ["debug"] * 100
    assert core.record.dtmf_total == 100
