"""Designed outcomes of OpenAI faults, stream admission and the /calls limit, as plain data."""

from __future__ import annotations

import base64

import orjson
import pytest
from twilio.request_validator import RequestValidator

from llc.core import faults
from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.actions import Deadline, EndCall, PlayApology, ReconnectOpenAI, Timer, ToOpenAI, ToTwilio
from llc.core.call import CallCore
from llc.core.dialect import GA
from llc.core.phase import Phase
from llc.core.ratelimit import TokenBucket
from llc.core.record import TranscriptLine
from llc.core.refusal import Refusal, RefusalReason
from llc.core.session import SessionSpec
from llc.core.ticket import TicketBook
from llc.core.turns import TurnPolicy
from llc.twilio.signature import signature_refusal, signed_url

START = tw.Start("MZ1", "CA1", "AC1", {})


def live(core: CallCore) -> CallCore:
    core.on_openai_open()
    core.on_openai(oa.SessionUpdated(), 0.2)
    assert core.phase is Phase.LIVE
    return core


def started(**kwargs: object) -> CallCore:
    core = CallCore(GA, SessionSpec(instructions="Be brief."), **kwargs)  # type: ignore[arg-type]
    core.on_twilio(START, 0.0)
    return live(core)


def sent(actions: list) -> list[dict]:
    return [orjson.loads(a.text) for a in actions if isinstance(a, ToOpenAI)]


def test_a_drop_reconnects_once_with_the_same_session_and_a_summary() -> None:
    core = started()
    core.on_openai(oa.from_json({"type": "conversation.item.input_audio_transcription.completed", "transcript": "Do you open Sunday?"}), 1.0)
    core.on_openai(oa.from_json({"type": "response.output_audio_transcript.done", "transcript": "Yes, from ten."}), 2.0)
    fresh = CallCore(GA, SessionSpec(instructions="Be brief."))
    fresh.on_twilio(START, 0.0)
    first_update = sent(fresh.on_openai_open())[0]
    actions = core.on_openai_closed(1011, "upstream failure")
    assert ReconnectOpenAI("dropped") in actions and core.record.reconnects == ["dropped (code 1011)"]
    # Caller audio during the gap is held and flushed after the summary, in order.
    assert core.on_twilio(tw.Media("AAAA"), 2.5) == []
    assert sent(core.on_openai_open()) == [first_update]
    out = sent(core.on_openai(oa.SessionUpdated(), 3.0))
    assert out[0]["item"]["role"] == "system"
    summary = out[0]["item"]["content"][0]["text"]
    assert "Caller: Do you open Sunday?" in summary and "You: Yes, from ten." in summary
    assert out[1] == {"type": "input_audio_buffer.append", "audio": "AAAA"}
    assert all(e["type"] != "response.create" for e in out)  # no second greeting


LOUD = base64.b64encode(b"\x00" * 160).decode()  # mu-law 0x00: full scale
QUIET = base64.b64encode(b"\xff" * 160).decode()


@pytest.mark.parametrize(("heard", "answered", "asks_again"), [
    ("speech_started", False, True),  # the service heard the caller start
    ("loud_audio", False, True),  # only llc saw it: the leg froze before the service said anything
    ("speech_started", True, False),  # a reply ended after it: nothing is owed
    ("nothing", False, False),
])
def test_words_lost_with_a_dropped_session_are_asked_for_again(heard: str, answered: bool, asks_again: bool) -> None:
    """The caller spoke into a session that then dropped: the new one speaks first and asks
    them to repeat (never dead air while both sides wait). Once a reply ended, nothing is owed."""
    core = started()
    if heard == "speech_started":
        core.on_openai(oa.SpeechStarted(), 1.0)
    for i in range(60):  # 1.2 s of the caller's line going into the leg
        core.on_twilio(tw.Media(LOUD if heard == "loud_audio" and 10 <= i < 40 else QUIET), 1.0 + i * 0.02)
    if answered:
        core.on_openai(oa.SpeechStopped(), 2.3)
        core.on_openai(oa.ResponseCreated("resp_1", False), 2.4)
        core.on_openai(oa.ResponseDone("resp_1", False), 2.5)
    core.on_openai_closed(1006, "")
    core.on_twilio(tw.Media("AAAA"), 2.6)  # held while the new session is configured
    core.on_openai_open()
    out = sent(core.on_openai(oa.SessionUpdated(), 3.0))
    summary = out[0]["item"]["content"][0]["text"]
    assert ("their last words were lost" in summary) is asks_again
    expected = [{"type": "response.create", "event_id": "llc_rc1"}] if asks_again else []
    # The request goes before the held audio: speech in it barges in on the apology as usual.
    assert out[1:] == [*expected, {"type": "input_audio_buffer.append", "audio": "AAAA"}]


def test_a_second_drop_plays_the_apology_then_hangs_up_on_its_mark() -> None:
    core = started(apology_s=1.2)
    core.on_openai_closed(1011, "")
    live(core)
    actions = core.on_openai_closed(1006, "")
    assert actions[1] == ToTwilio(tw.clear("MZ1")) and PlayApology(faults.APOLOGY_MARK) in actions
    assert Timer(Deadline.APOLOGY_DONE, 1.2 + faults.APOLOGY_GRACE_S) in actions
    assert core.on_openai_closed(1006, "") == []  # said once
    [end] = core.on_twilio(tw.Mark(faults.APOLOGY_MARK), 5.0)
    assert end.reason == "openai_lost" and "1006" in end.detail


def test_apology_ends_by_timer_when_the_mark_never_comes() -> None:
    core = started()
    core.on_reconnect_failed("reconnect failed: refused")
    [end] = core.on_timer(Deadline.APOLOGY_DONE, 9.0)
    assert end == EndCall("openai_lost", "reconnect failed: refused")


def test_a_rejected_replacement_session_means_the_apology() -> None:
    core = started()
    core.on_openai_closed(1011, "")
    core.on_openai_open()
    actions = core.on_openai(oa.from_json({"type": "error", "error": {"code": "invalid_value", "message": "x"}}), 1.0)
    assert PlayApology(faults.APOLOGY_MARK) in actions


def test_session_expired_renews_every_time_and_keeps_the_switched_config() -> None:
    policy = TurnPolicy()
    core = started(policy=policy)
    core.on_openai(oa.from_json({"type": "response.created", "response": {"id": "r1"}}), 1.0)
    core.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r1"}}), 1.5)  # first turn: the switch
    for n in (1, 2, 3):
        core.on_openai(oa.from_json({"type": "error", "error": {"code": "session_expired", "message": "60 minutes"}}), 2.0)
        assert ReconnectOpenAI("session_expired") in core.on_openai_closed(1001, "")
        [update] = sent(core.on_openai_open())
        eagerness = update["session"]["audio"]["input"]["turn_detection"].get("eagerness")
        assert eagerness == policy.later_eagerness
        core.on_openai(oa.SessionUpdated(), 3.0)
        assert len(core.record.reconnects) == n
    assert ReconnectOpenAI("dropped") in core.on_openai_closed(1011, "")  # a drop still has its one reconnect


def test_tools_of_a_lost_session_are_dropped_not_answered_into_the_new_one() -> None:
    core = started()
    core.on_openai(oa.from_json({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "lookup", "arguments": "{}"}), 1.0)
    core.on_openai_closed(1011, "")
    live(core)
    assert core.on_tool_result("c1", "late", 2.0) == []
    assert core.record.tool_calls[0].error and "lost" in core.record.tool_calls[0].error


def test_max_call_length_is_a_timer_that_ends_the_call() -> None:
    core = CallCore(GA, SessionSpec(), max_call_s=600)
    assert Timer(Deadline.MAX_CALL_LENGTH, 600) in core.on_twilio(START, 0.0)
    [end] = core.on_timer(Deadline.MAX_CALL_LENGTH, 600.0)
    assert end.reason == "max_call_length" and "600" in end.detail


def test_summary_is_short_and_says_nothing_was_said_when_empty() -> None:
    assert "Nothing has been said" in faults.summary([])
    long = [TranscriptLine("caller", "x" * 500, float(i)) for i in range(40)]
    assert len(faults.summary(long)) < faults.SUMMARY_CHARS + 400


# ---- admission ------------------------------------------------------------------------------


def test_admission_token_is_one_time_bound_and_expiring() -> None:
    book = TicketBook(ttl_s=60)
    token = book.issue(0.0, "CA1")
    assert book.admit(token, "CA2", 1.0).refusal == Refusal(RefusalReason.ANOTHER_CALLS_TICKET, "stream token belongs to another call")
    assert book.admit(token, "CA1", 1.0).refusal is None
    assert book.admit(token, "CA1", 1.0).refusal == Refusal(RefusalReason.UNKNOWN_TICKET, "unknown or already used stream token")
    assert book.admit(None, "CA1", 1.0).refusal is not None and book.admit("guess", "CA1", 1.0).refusal is not None
    late = book.issue(0.0, "CA3")
    assert book.admit(late, "CA3", 61.0).refusal == Refusal(RefusalReason.TICKET_EXPIRED, "stream token expired")
    assert book.refused == 5


def test_a_second_stream_for_a_live_call_is_refused_until_the_first_ends() -> None:
    book = TicketBook(ttl_s=60)
    first, second, third = (book.issue(0.0, "CA1") for _ in range(3))
    assert book.admit(first, "CA1", 1.0).refusal is None
    assert book.admit(second, "CA1", 1.0).refusal == Refusal(RefusalReason.STREAM_EXISTS, "this call already has a media stream")
    book.release("CA1")
    assert book.admit(third, "CA1", 2.0).refusal is None


def test_outbound_token_is_bound_after_the_dial_and_outstanding_tokens_expire() -> None:
    book = TicketBook(ttl_s=10)
    token = book.issue(0.0)  # TwiML is built before Twilio returns the CallSid
    book.bind(token, "CA9")
    assert book.outstanding(5.0) == 1
    assert book.admit(token, "CAx", 5.0).refusal is not None
    assert book.outstanding(11.0) == 0


def test_token_bucket_allows_a_burst_then_paces() -> None:
    bucket = TokenBucket(2, now=0.0)
    assert bucket.take(0.0) == 0.0 and bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(30.0)
    assert bucket.take(30.0) == 0.0
    assert TokenBucket(0).take(0.0) == 0.0  # 0 = no limit


# ---- signatures -----------------------------------------------------------------------------


def test_signature_is_checked_against_the_public_url_not_the_local_one() -> None:
    token, form = "secret", {"CallSid": "CA1", "From": "+15550100001"}
    public = signed_url("https://voice.example.com/", "/twiml", "scenario=csr")
    assert public == "https://voice.example.com/twiml?scenario=csr"
    good = RequestValidator(token).compute_signature(public, form)
    assert signature_refusal(token, public, form, good) is None
    assert signature_refusal(token, "http://127.0.0.1:8080/twiml?scenario=csr", form, good) is not None
    assert signature_refusal(token, public, {**form, "From": "+1999"}, good) is not None  # tampered
    assert signature_refusal(token, public, form, None) == Refusal(RefusalReason.NO_SIGNATURE, "no X-Twilio-Signature header")
    ws = "wss://voice.example.com/media"
    assert signature_refusal(token, ws, {}, RequestValidator(token).compute_signature(ws, {})) is None


def _marks(actions: list) -> list[str]:
    return [m["mark"]["name"] for m in (orjson.loads(a.text) for a in actions if isinstance(a, ToTwilio))
            if m["event"] == "mark"]


def test_marks_of_a_lost_session_never_confirm_the_new_sessions_audio() -> None:
    core = started()
    delta = oa.AudioDelta("old", "r1", "A" * 5336)
    old_marks = _marks(core.on_openai(delta, 1.0))  # 500 ms: one mark, still queued at Twilio
    core.on_openai_closed(1011, "upstream failure")
    live(core)
    new = _marks(core.on_openai(oa.AudioDelta("new", "r2", delta.delta), 2.0))
    assert old_marks and new and set(old_marks).isdisjoint(new)  # names keep counting across sessions
    # The old audio's mark echoes late: it must not count the new item as heard.
    assert core.on_twilio(tw.Mark(old_marks[0]), 2.1) == []
    assert core.playout.speaking and not core.playout.played_all("new")


def test_a_tool_finishing_after_openai_is_gone_for_good_sends_nothing() -> None:
    # Found by the property test: drop, reconnect, a tool starts, a second drop (apology), then
    # the tool returns. Its output has no session to go to.
    core = started()
    core.on_openai_closed(1011, "")
    live(core)
    core.on_openai(oa.from_json({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "end_call", "arguments": "{}"}), 1.0)
    core.on_openai_closed(1011, "")
    assert core.phase is Phase.APOLOGY
    assert core.on_tool_result("c1", '{"ok": true}', 2.0) == []
    assert core.record.tool_calls[-1].error == "the OpenAI session was lost before the tool finished"


def test_summary_gives_a_replacement_session_what_the_caller_heard_of_a_cut_reply() -> None:
    cut = TranscriptLine("agent", "We open at nine and close at five on weekdays.", 1.0, interrupted=True)
    cut.heard_text = "We open at nine"
    text = faults.summary([TranscriptLine("caller", "When do you open?", 0.0), cut])
    assert "We open at nine (cut off by the caller)" in text and "close at five" not in text


def test_a_cancelled_priming_reply_that_ends_as_the_cancel_goes_out_is_an_expected_refusal() -> None:
    """A claimed warm session's priming reply outlives its grace and is cancelled, but its own
    response.done crosses the cancel: the service's response_cancel_not_active is expected then
    (counted, logged as info), as for a barge-in's cancel."""
    core = CallCore(GA, SessionSpec(instructions="Be brief."))
    core.on_twilio(START, 0.0)
    core.on_openai_open(already_configured=True, priming="resp_prime")
    cancel = sent(core.on_timer(Deadline.PRIMING_GRACE, 0.5))
    assert cancel == [{"type": "response.cancel", "response_id": "resp_prime"}]
    core.on_openai(oa.ResponseDone("resp_prime", True), 0.55)  # out of band, crossing the cancel
    error = oa.from_json({"type": "error", "error": {"type": "invalid_request_error", "code": "response_cancel_not_active",
                                                     "message": "Cancellation failed: no active response found."}})
    [log] = core.on_openai(error, 0.6)
    assert log.level == "info" and core.record.cancels_crossed == 1 and core.record.openai_errors == {}
