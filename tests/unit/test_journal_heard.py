"""What the caller heard: an agent line cut by a barge-in, whichever of the two arrives first."""

from __future__ import annotations

import base64

import orjson
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.actions import ToTwilio
from llc.core.call import CallCore
from llc.core.dialect import GA
from llc.core.journal import FRAME_MS, RECENT_FRAMES, Journal, heard_text
from llc.core.record import CallRecord, EndReason
from llc.core.session import SessionSpec
from llc.core.turns import TurnPolicy
from llc.kit.sim.audio import speech_like

START = tw.Start("MZ1", "CA1", "AC1", {})
DELTA_100MS = "A" * 1068 + "=="  # 800 bytes of audio: 100 ms at 8 kHz mu-law
REPLY = "We open at nine tomorrow morning and close at five in the afternoon."


def live_core() -> CallCore:
    # A mark per 100 ms delta (the default is 500 ms): the tests confirm playout mark by mark.
    core = CallCore(GA, SessionSpec(), policy=TurnPolicy(mark_every_ms=100))
    core.on_twilio(START, 0.0)
    core.on_openai_open()
    core.on_openai(oa.SessionUpdated(), 0.2)
    return core


def speak(core: CallCore, item: str, response: str, deltas: int, now: float) -> list[str]:
    """The service sends ``deltas`` x 100 ms of audio for ``item``; returns the marks llc sent."""
    core.on_openai(oa.from_json({"type": "response.created", "response": {"id": response}}), now)
    marks = []
    for _ in range(deltas):
        for a in core.on_openai(oa.from_json({"type": "response.output_audio.delta", "item_id": item, "response_id": response,
                                 "delta": DELTA_100MS}), now):
            frame = orjson.loads(a.text) if isinstance(a, ToTwilio) else {}
            if frame.get("event") == "mark":
                marks.append(frame["mark"]["name"])
    for a in core.on_openai(oa.from_json({"type": "response.output_audio.done", "item_id": item, "response_id": response}), now):
        marks.append(orjson.loads(a.text)["mark"]["name"])
    return marks


def transcript_done(core: CallCore, item: str, response: str, now: float) -> None:
    core.on_openai(oa.from_json({"type": "response.output_audio_transcript.done", "item_id": item, "response_id": response,
                    "transcript": REPLY}), now)


def test_transcript_before_the_barge_in_still_marks_the_line_interrupted_with_heard_ms() -> None:
    core = live_core()
    marks = speak(core, "item_a", "resp_a", 40, 1.0)  # 4 s of reply, sent faster than real time
    transcript_done(core, "item_a", "resp_a", 1.1)  # the transcript comes while the audio still plays
    line = core.record.transcript[-1]
    assert (line.interrupted, line.generated_ms) == (False, 4000)
    for name in marks[:10]:  # Twilio confirms 1,000 ms played as the caller talks over the rest
        core.on_twilio(tw.Mark(name), 2.0)
    core.on_openai(oa.SpeechStarted(), 2.0)  # the clock agrees: 1.0 s
    [barge] = core.record.barge_ins
    assert (barge.item_id, barge.heard_ms) == ("item_a", 1000)
    assert line.interrupted and (line.heard_ms, line.generated_ms) == (1000, 4000)
    assert line.text == REPLY  # the whole generated text kept beside the estimate
    assert line.heard_text == "We open at nine…"  # a quarter of the text: cut at a word boundary
    saved = core.record.as_dict()["transcript"][-1]
    assert (saved["interrupted"], saved["heard_ms"], saved["generated_ms"]) == (True, 1000, 4000)


def test_transcript_after_the_barge_in_finds_the_cut_waiting_and_counts_muted_audio() -> None:
    core = live_core()
    marks = speak(core, "item_b", "resp_b", 20, 1.0)
    for name in marks[:5]:
        core.on_twilio(tw.Mark(name), 1.5)
    core.on_openai(oa.SpeechStarted(), 1.5)  # 500 ms heard, by marks and clock
    # The service had not finished: 20 more deltas arrive after the cut and are never played.
    for _ in range(20):
        assert core.on_openai(oa.from_json({"type": "response.output_audio.delta", "item_id": "item_b", "response_id": "resp_b",
                               "delta": DELTA_100MS}), 1.7) == []
    transcript_done(core, "item_b", "resp_b", 1.8)
    line = core.record.transcript[-1]
    assert line.interrupted and (line.heard_ms, line.generated_ms) == (500, 4000)
    assert line.heard_text and line.heard_text.endswith("…") and len(line.heard_text) < len(REPLY) // 4 + 2


def test_a_line_heard_to_the_end_is_not_interrupted_and_gets_its_heard_ms_at_the_end() -> None:
    core = live_core()
    marks = speak(core, "item_c", "resp_c", 10, 1.0)
    transcript_done(core, "item_c", "resp_c", 1.1)
    for name in marks:
        core.on_twilio(tw.Mark(name), 2.5)
    core.on_openai(oa.from_json({"type": "response.done", "response": {"id": "resp_c"}}), 2.5)
    core.on_openai(oa.SpeechStarted(), 3.0)  # the caller's next turn: no barge-in
    core.end(EndReason.CALLER_HANGUP)
    line = core.record.transcript[-1]
    assert not core.record.barge_ins
    assert (line.interrupted, line.heard_ms, line.generated_ms, line.heard_text) == (False, 1000, 1000, None)


def test_a_call_ending_mid_reply_records_what_the_clock_says_was_heard() -> None:
    core = live_core()
    marks = speak(core, "item_d", "resp_d", 20, 1.0)  # 2 s of reply, all sent at 1.0
    transcript_done(core, "item_d", "resp_d", 1.1)
    for name in marks[:5]:  # Twilio confirms 500 ms, on time: the way out is measured as 0
        core.on_twilio(tw.Mark(name), 1.5)
    core.end(EndReason.CALLER_HANGUP, twilio_seen=2.2)  # the caller hangs up 1.2 s into the reply
    line = core.record.transcript[-1]
    assert (line.interrupted, line.heard_ms, line.generated_ms) == (False, 1200, 2000)


def test_a_barge_in_after_the_clock_says_all_played_keeps_the_line_heard() -> None:
    core = live_core()
    speak(core, "item_e", "resp_e", 4, 1.0)  # 400 ms, played by 1.4; no mark echoed yet
    acts = core.on_openai(oa.SpeechStarted(), 1.45)
    assert not [a for a in acts if "conversation.item" in str(getattr(a, "text", ""))]  # nothing left to cut
    transcript_done(core, "item_e", "resp_e", 1.5)
    line = core.record.transcript[-1]
    assert (line.heard_ms, line.generated_ms) == (400, 400)  # not 0: the clear returned the marks


def test_marks_returned_by_the_apologys_clear_confirm_nothing() -> None:
    core = live_core()
    marks = speak(core, "item_f", "resp_f", 20, 1.0)
    transcript_done(core, "item_f", "resp_f", 1.1)
    core.on_reconnect_failed("OpenAI is gone")  # clear, then the apology clip
    for name in marks:  # Twilio hands every pending mark back at once after the clear
        assert core.on_twilio(tw.Mark(name), 1.32) == []
    core.end(EndReason.CALLER_HANGUP, twilio_seen=3.5)
    line = core.record.transcript[-1]
    assert line.heard_ms == 0  # what marks confirmed before the clear; not all 2000 ms


def test_the_heard_ms_at_the_end_is_as_of_twilios_last_message() -> None:
    core = live_core()
    marks = speak(core, "item_g", "resp_g", 40, 1.0)  # 4 s of reply
    transcript_done(core, "item_g", "resp_g", 1.1)
    core.on_twilio(tw.Mark(marks[4]), 1.54)  # 500 ms played by 1.50: a 40 ms round trip
    core.end(EndReason.TWILIO_SILENT, twilio_seen=1.54)  # then Twilio went quiet; the watchdog ends the call seconds later
    line = core.record.transcript[-1]
    assert line.heard_ms == 500  # what had played when that last message left Twilio


def test_turn_waterfall_vad_wait_is_the_caller_audio_since_the_last_loud_frame() -> None:
    core = live_core()
    loud, quiet = base64.b64encode(speech_like(20)).decode(), base64.b64encode(b"\xff" * 160).decode()
    for payload in [loud] * 30 + [quiet] * 25:  # 0.6 s of speech, then 0.5 s of silence
        core.on_twilio(tw.Media(payload), 1.0)
    core.on_openai(oa.from_json({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1100}), 1.0)
    core.on_openai(oa.from_json({"type": "response.output_audio.delta", "item_id": "i", "response_id": "r", "delta": DELTA_100MS}), 1.4)
    [turn] = core.record.turns
    assert turn.vad_wait_ms == 500.0 and turn.ms == 400.0
    for payload in [quiet] * 300:  # nothing loud in the frames kept: the record does not guess
        core.on_twilio(tw.Media(payload), 2.0)
    core.on_openai(oa.SpeechStopped(), 2.0)
    assert core.record.turns[-1].vad_wait_ms is None


def test_heard_text_estimate_cuts_at_words_and_handles_the_edges() -> None:
    assert heard_text("one two three four", 0, 1000) == ""
    assert heard_text("one two three four", 1000, 1000) == "one two three four"
    assert heard_text("one two three four", 500, 1000) == "one two…"
    assert heard_text("one two", 300, None) == "one two"  # nothing to scale by: the whole line


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["loud", "quiet", "junk"]), max_size=600), st.integers(0, 3))
def test_the_vad_wait_look_back_is_the_frames_since_the_last_loud_one(frames: list[str], turns: int) -> None:
    """Held and looked at newest first, the look-back gives exactly what counting back over
    every frame gives: the quiet frames since the last loud one, None past RECENT_FRAMES."""
    payloads = {"loud": base64.b64encode(speech_like(20)).decode(), "quiet": base64.b64encode(b"\xff" * 160).decode(),
                "junk": "not base64!"}
    journal = Journal(CallRecord(), 0.0)
    seen: list[str] = []
    cut = max(1, len(frames) // (turns + 1)) if turns else len(frames) + 1
    for n, kind in enumerate(frames, 1):
        journal.caller_frame(payloads[kind])
        seen.append(kind)
        if n % cut == 0 or n == len(frames):
            journal.speech_stopped(1.0)
            back = next((i for i, k in enumerate(reversed(seen)) if k == "loud"), None)
            expected = None if back is None or back >= RECENT_FRAMES else float(back * FRAME_MS)
            assert journal.record.turns[-1].vad_wait_ms == expected


class RefusedByTwilio(Exception):
    pass


def test_a_transfer_names_the_ending_only_when_its_request_went_through() -> None:
    done, refused = Journal(CallRecord(call_sid="CA1"), 0.0), Journal(CallRecord(call_sid="CA2"), 0.0)
    with done.transferring("+15550102001"):
        pass
    try:
        with refused.transferring("+15550102001"):
            raise RefusedByTwilio
    except RefusedByTwilio:
        pass
    for journal in (done, refused):
        journal.ended_unplayed(EndReason.CALLER_HANGUP, "stop")
    assert (done.record.end_reason, done.record.end_detail) == (EndReason.TRANSFERRED, "transferred to +15550102001")
    assert refused.record.end_reason is EndReason.CALLER_HANGUP
    # Cancelled (the tool's timeout) before Twilio answered: not known to have gone through.
    timed_out = Journal(CallRecord(call_sid="CA4"), 0.0)

    async def slow_transfer() -> None:
        with trio.move_on_after(0.01), timed_out.transferring("+15550102001"):
            await trio.sleep(1)

    trio.run(slow_transfer)
    timed_out.ended_unplayed(EndReason.CALLER_HANGUP, "stop")
    assert timed_out.record.end_reason is EndReason.CALLER_HANGUP
    # Another ending (llc hung up first) keeps its own reason.
    other = Journal(CallRecord(call_sid="CA3"), 0.0)
    with other.transferring("+15550102001"):
        other.ended_unplayed(EndReason.MAX_CALL_LENGTH, "LLC_MAX_CALL_S")
    assert other.record.end_reason is EndReason.MAX_CALL_LENGTH
