"""The SIP path's pure parts: the webhook guard, the accept session, the SIP core's hang-up and levers."""

from __future__ import annotations

import time

import orjson
import pytest
from openai import OpenAI
from openai.types.realtime import OutputAudioBufferClearEvent

from llc.config import Settings
from llc.core.levers import Interrupt, Routed, RunLocalTool
from llc.core.record import CallRecord, EndReason
from llc.core.session import SessionSpec, TurnDetection
from llc.core.turns import TurnPolicy
from llc.events.signing import Signer, new_message_id, new_secret
from llc.ops.doctor import check_sip
from llc.sip.core import HangUp, Send, SipCore, StartTool, sip_session
from llc.sip.webhook import WebhookGuard, phone_of
from llc.twilio.twiml import dial_target

SECRET = new_secret()


def incoming(call_id: str = "rtc_1", to: str = "<sip:+15550100020@sip.api.openai.com;transport=tls>") -> bytes:
    return orjson.dumps({"object": "event", "id": "evt_1", "type": "realtime.call.incoming", "created_at": 1,
                         "data": {"call_id": call_id, "sip_headers": [{"name": "To", "value": to},
                                                                      {"name": "From", "value": '"Ann" <sip:+15559998888@x>;tag=9'}]}})


def test_a_signed_webhook_passes_once_and_says_who_called_whom() -> None:
    guard = WebhookGuard(SECRET, remember=2)
    body = incoming()
    headers = Signer(SECRET).headers(new_message_id(), body, time.time())
    OpenAI(api_key="sk-test", webhook_secret=SECRET).webhooks.unwrap(body, headers)  # the SDK agrees it is signed
    first = guard.check(body, headers)
    assert first.status == 200 and first.call is not None
    assert (first.call.call_id, first.call.called, first.call.caller) == ("rtc_1", "+15550100020", "+15559998888")
    replay = guard.check(body, headers)
    assert replay.status == 200 and replay.call is None and "replayed" in replay.why


def test_forged_stale_and_foreign_webhooks() -> None:
    guard = WebhookGuard(SECRET)
    body = incoming()
    assert guard.check(body, Signer(new_secret()).headers(new_message_id(), body, time.time())).status == 401
    assert guard.check(body, Signer(SECRET).headers(new_message_id(), body, time.time() - 400)).status == 401
    assert guard.check(body, {}).status == 401
    other = orjson.dumps({"type": "response.completed", "data": {}})
    verdict = guard.check(other, Signer(SECRET).headers(new_message_id(), other, time.time()))
    assert verdict.status == 200 and verdict.call is None


def _mutations() -> dict[str, tuple[bytes, dict[str, str]]]:
    body, now = incoming(), time.time()
    good = Signer(SECRET).headers("msg_1", body, now)
    sig = good["webhook-signature"]
    return {
        "valid": (body, good),
        "another secret": (body, Signer(new_secret()).headers("msg_1", body, now)),
        "400 s old": (body, Signer(SECRET).headers("msg_1", body, now - 400)),
        "400 s ahead": (body, Signer(SECRET).headers("msg_1", body, now + 400)),
        "250 s old": (body, Signer(SECRET).headers("msg_1", body, now - 250)),
        "no headers": (body, {}),
        "no id": (body, {k: v for k, v in good.items() if k != "webhook-id"}),
        "another id": (body, {**good, "webhook-id": "msg_2"}),
        "body changed": (body.replace(b"rtc_1", b"rtc_2"), good),
        "no v1 prefix": (body, {**good, "webhook-signature": sig.removeprefix("v1,")}),
        "v2 prefix": (body, {**good, "webhook-signature": "v2," + sig.removeprefix("v1,")}),
        "one of two valid": (body, {**good, "webhook-signature": "v1,AAAA " + sig}),
        "capitalised names": (body, {k.title(): v for k, v in good.items()}),
        "timestamp not a number": (body, {**good, "webhook-timestamp": "soon"}),
    }


@pytest.mark.parametrize("case", list(_mutations()))
def test_the_webhook_check_accepts_exactly_what_the_sdk_accepts(case: str) -> None:
    body, headers = _mutations()[case]
    try:
        OpenAI(api_key="sk-test", webhook_secret=SECRET).webhooks.unwrap(body, headers)
        sdk = True
    except Exception:  # noqa: BLE001  whatever the SDK raises, it refused
        sdk = False
    ours = WebhookGuard(SECRET).check(body, headers).status == 200
    assert ours == sdk, f"{case}: llc {'accepts' if ours else 'refuses'}, the SDK {'accepts' if sdk else 'refuses'}"
    assert sdk == (case in ("valid", "250 s old", "one of two valid", "capitalised names", "no v1 prefix"))  # as meant


def test_replay_memory_is_bounded() -> None:
    guard = WebhookGuard(SECRET, remember=3)
    for n in range(10):
        body = incoming(f"rtc_{n}")
        assert guard.check(body, Signer(SECRET).headers(new_message_id(), body, time.time())).call is not None
    assert len(guard._seen) == 3


def test_phone_of_sip_forms() -> None:
    assert phone_of("<sip:+15551234567@pstn.twilio.com;user=phone>;tag=abc") == "+15551234567"
    assert phone_of("tel:+15551234567") == "+15551234567"
    assert phone_of("") == ""


def test_accept_session_has_semantic_vad_only_and_no_formats() -> None:
    spec = SessionSpec(instructions="hi", turn_detection=TurnDetection("server_vad", "low"),
                       tools=({"type": "function", "name": "end_call", "parameters": {}},))
    session = sip_session(spec, "gpt-realtime-1.5")
    td = session["audio"]["input"]["turn_detection"]
    assert td == {"type": "semantic_vad", "eagerness": "low", "create_response": True, "interrupt_response": True}
    assert "format" not in session["audio"]["input"] and "format" not in session["audio"]["output"]
    assert session["model"] == "gpt-realtime-1.5" and session["type"] == "realtime"


def test_end_call_hangs_up_after_the_goodbye_response_only() -> None:
    core = SipCore(CallRecord(call_sid="rtc_1", path="sip"), 0.0, policy=TurnPolicy(switch_after_responses=0))
    steps = core.on_event({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "end_call",
                           "arguments": "{}"}, 1.0)
    assert steps == [StartTool("c1", "end_call", "{}")]
    core.on_event({"type": "response.created", "response": {"id": "r1"}}, 1.0)  # the response that called the tool
    assert core.on_event({"type": "response.done", "response": {"id": "r1"}}, 1.1) == []
    core.hangup_after_goodbye()
    out = core.on_tool_result("c1", '{"ok": true}', None, 1.2)
    assert [s.event["type"] for s in out if isinstance(s, Send)] == ["conversation.item.create", "response.create"]
    core.on_event({"type": "response.created", "response": {"id": "r2"}}, 1.3)
    done = core.on_event({"type": "response.done", "response": {"id": "r2"}}, 2.0)
    assert done == [HangUp(EndReason.AGENT_HANGUP, "end_call: the goodbye was said")]
    assert core.record.tool_calls[0].output == '{"ok": true}'


def test_key_press_levers_interrupt_only_a_live_response() -> None:
    core = SipCore(CallRecord(call_sid="rtc_1", path="sip"), 0.0)
    levers = [Routed("dtmf", "1", "transfer", "+15550102001"), Interrupt(),
              RunLocalTool("transfer_call", '{"number": "+15550102001"}')]
    steps = core.on_key("1", 1.0, list(levers))
    assert [type(s) for s in steps] == [StartTool] and steps[0].local  # type: ignore[union-attr]
    core.on_event({"type": "response.created", "response": {"id": "r1"}}, 1.0)
    assert Send({"type": "response.cancel"}) in core.on_key("1", 2.0, list(levers))
    assert core.record.dtmf == ["1", "1"] and core.record.routes_total == 2
    # A local tool's output is recorded, never sent to the model.
    assert core.on_tool_result(steps[0].call_id, "{}", None, 3.0) == []  # type: ignore[union-attr]


def test_dial_target() -> None:
    assert dial_target("<Response><Dial>+15550102001</Dial></Response>") == "+15550102001"
    assert dial_target("<Response><Dial><Sip>sip:x@y</Sip></Dial></Response>") is None
    assert dial_target("not xml") is None


def test_doctor_speaks_of_sip_only_when_configured() -> None:
    assert check_sip(Settings()) is None
    assert check_sip(Settings(openai_webhook_secret=SECRET)).status == "FAIL"  # type: ignore[union-attr]
    check = check_sip(Settings(openai_webhook_secret=SECRET, public_url="https://voice.example.com"))
    assert check is not None and check.status == "PASS"
    assert "https://voice.example.com/openai/webhook" in check.detail and "recording" in check.detail


# A reply the caller is hearing (generated at once, still playing), then the service clears it.
PLAYING = [(1.0, {"type": "response.created", "response": {"id": "r1"}}),
           (1.0, {"type": "response.output_audio_transcript.delta", "response_id": "r1", "item_id": "a1", "delta": "We"}),
           (1.1, {"type": "output_audio_buffer.started", "response_id": "r1"}),
           (1.1, {"type": "response.output_audio_transcript.done", "response_id": "r1", "item_id": "a1",
                  "transcript": "We open at nine tomorrow morning, and on Saturdays at ten."}),
           (1.2, {"type": "response.done", "response": {"id": "r1"}})]
SPEECH = (1.5, {"type": "input_audio_buffer.speech_started", "item_id": "c2"})
CLEARED = (1.6, {"type": "output_audio_buffer.cleared", "response_id": "r1"})
STOPPED = (1.4, {"type": "output_audio_buffer.stopped", "response_id": "r1"})


def heard(text: str) -> tuple[float, dict[str, object]]:
    return 2.0, {"type": "conversation.item.input_audio_transcription.completed", "item_id": "c2", "transcript": text}


FAILED = (2.0, {"type": "conversation.item.input_audio_transcription.failed", "item_id": "c2",
                "error": {"type": "transcription_error", "message": "x"}})
TRANSCRIBED = SessionSpec(transcription_model="gpt-4o-mini-transcribe")


@pytest.mark.parametrize(("spec", "events", "barge_ins", "words", "heard_ms"), [
    pytest.param(TRANSCRIBED, [*PLAYING, SPEECH, CLEARED, heard("And on Sunday?")], 1, True, 500, id="talked-over"),
    pytest.param(TRANSCRIBED, [*PLAYING, SPEECH, CLEARED, heard("")], 1, False, 500, id="a-noise"),
    pytest.param(TRANSCRIBED, [*PLAYING, SPEECH, CLEARED], 1, False, 500, id="no-transcript-by-the-end"),
    pytest.param(TRANSCRIBED, [*PLAYING, SPEECH, CLEARED, FAILED], 1, None, 500, id="transcription-failed"),
    pytest.param(SessionSpec(), [*PLAYING, SPEECH, CLEARED], 1, None, 500, id="no-transcription-no-verdict"),
    # Transcribed before the clear came: the clear is not about those words.
    pytest.param(TRANSCRIBED, [*PLAYING, SPEECH, heard("Mm"), CLEARED], 1, None, 500, id="words-already-settled"),
    pytest.param(TRANSCRIBED, [*PLAYING, STOPPED, SPEECH, CLEARED, heard("Thanks")], 0, None, None, id="played-out-first"),
    pytest.param(TRANSCRIBED, [*PLAYING[:2], SPEECH, (1.6, {"type": "output_audio_buffer.cleared", "response_id": "r1"})],
                 0, None, None, id="cleared-before-it-played"),
])
def test_a_sip_barge_in_is_recorded_from_the_services_clear(spec: SessionSpec,
                                                             events: list[tuple[float, dict[str, object]]],
                                                             barge_ins: int, words: bool | None,
                                                             heard_ms: int | None) -> None:
    core = SipCore(CallRecord(call_sid="rtc_1", path="sip"), 0.0, spec)
    for at, event in events:
        core.on_event(event, at)
    core.end(EndReason.CALLER_HANGUP, "the sideband closed")  # speech never transcribed by now had no words
    rec = core.record
    assert len(rec.barge_ins) == barge_ins
    agent = next((line for line in rec.transcript if line.role == "agent"), None)
    if agent is None:
        return
    if barge_ins:
        barge = rec.barge_ins[0]
        assert (barge.item_id, barge.heard_ms, barge.words) == ("a1", heard_ms, words)
        assert rec.barge_ins_without_words == (1 if words is False else 0)
        # Cut where the caller stopped hearing it; no text estimate, since the length generated is unknown on SIP.
        assert agent.interrupted and agent.heard_ms == heard_ms and agent.generated_ms is None and agent.heard_text is None
    else:
        assert not agent.interrupted


def test_a_key_press_clears_the_reply_the_caller_is_hearing() -> None:
    core = SipCore(CallRecord(call_sid="rtc_1", path="sip"), 0.0)
    for at, event in PLAYING:
        core.on_event(event, at)
    steps = core.on_key("0", 1.5, [Interrupt()])
    assert steps == [Send({"type": "output_audio_buffer.clear"})]  # the response is done; its audio is not
    OutputAudioBufferClearEvent.model_validate(steps[0].event, strict=True)  # type: ignore[union-attr]  # a Send
    core.on_event(CLEARED[1], 1.6)
    assert [(b.heard_ms, b.words, b.caller_item_id) for b in core.record.barge_ins] == [(500, None, "")]


def test_after_the_first_reply_the_call_switches_to_calmer_vad_and_the_full_tools() -> None:
    schemas = {name: {"type": "function", "name": name, "parameters": {}} for name in ("end_call", "transfer_call", "x")}
    policy = TurnPolicy(first_eagerness="high", later_eagerness="low", full_tools=("end_call", "transfer_call"))
    first = SessionSpec(turn_detection=TurnDetection("server_vad", "high"), tools=(schemas["end_call"],))
    core = SipCore(CallRecord(call_sid="rtc_1", path="sip"), 0.0, first, policy, schemas)
    assert [t["name"] for t in sip_session(core.spec, "m")["tools"]] == ["end_call"]  # accepted lean
    core.on_event({"type": "response.created", "response": {"id": "r1"}}, 1.0)
    [switch] = core.on_event({"type": "response.done", "response": {"id": "r1"}}, 1.5)
    assert isinstance(switch, Send) and switch.event["type"] == "session.update"
    session = switch.event["session"]
    # Semantic VAD even for a server_vad profile: the SIP session takes no server VAD knobs.
    assert session["audio"]["input"]["turn_detection"] == {"type": "semantic_vad", "eagerness": "low",
                                                           "create_response": True, "interrupt_response": True}
    assert [t["name"] for t in session["tools"]] == ["end_call", "transfer_call"]
    core.on_event({"type": "response.created", "response": {"id": "r2"}}, 2.0)
    assert core.on_event({"type": "response.done", "response": {"id": "r2"}}, 2.5) == []  # once


def test_a_clear_naming_a_reply_that_followed_on_counts_without_cutting_a_line() -> None:
    core = SipCore(CallRecord(call_sid="rtc_1", path="sip"), 0.0, TRANSCRIBED)
    for at, event in [*PLAYING, (1.3, {"type": "response.created", "response": {"id": "r2"}}),
                      (1.3, {"type": "response.output_audio_transcript.delta", "response_id": "r2", "item_id": "a2",
                             "delta": "Also"}), SPEECH, (1.6, {"type": "output_audio_buffer.cleared", "response_id": "r2"})]:
        core.on_event(event, at)
    [barge] = core.record.barge_ins
    assert barge.item_id == "" and not any(line.interrupted for line in core.record.transcript)
