"""Property-based tests: the parsers and the call core under random input and event orders."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.actions import Deadline, EndCall, ToolFiller, ToOpenAI, ToTwilio
from llc.core.call import CallCore
from llc.core.dialect import GA
from llc.core.phase import Phase
from llc.core.session import SessionSpec, TurnDetection
from llc.tools.builtin import BUILTIN

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin1")))
def test_parse_raises_only_frame_error_on_text(text: str) -> None:
    try:
        tw.parse(text)
    except tw.FrameError:
        pass


@given(st.sampled_from(["media", "start", "mark", "dtmf", "stop", "connected", "x"]), json_values, json_values)
def test_parse_raises_only_frame_error_on_shaped_json(event: str, body: object, extra: object) -> None:
    frame = {"event": event, event: body, "streamSid": extra}
    try:
        tw.parse(orjson.dumps(frame))
    except tw.FrameError:
        pass


ITEMS = st.sampled_from(["i1", "i2", "i3"])
RESPONSES = st.sampled_from(["r1", "r2", "r3"])
openai_events = st.one_of(
    st.builds(lambda r, i, n: {"type": "response.output_audio.delta", "response_id": r, "item_id": i, "delta": "A" * (4 * n)},
              RESPONSES, ITEMS, st.integers(1, 300)),
    st.builds(lambda r: {"type": "response.created", "response": {"id": r}}, RESPONSES),
    st.builds(lambda r: {"type": "response.done", "response": {"id": r}}, RESPONSES),
    st.just({"type": "input_audio_buffer.speech_started"}),
    st.just({"type": "input_audio_buffer.speech_stopped"}),
    st.builds(lambda c: {"type": "response.function_call_arguments.done", "call_id": c, "name": "end_call", "arguments": "{}"},
              st.sampled_from(["c1", "c2"])),
    st.builds(lambda i: {"type": "response.output_audio_transcript.done", "item_id": i, "transcript": "hi"}, ITEMS),
    st.builds(lambda c: {"type": "error", "error": {"code": c}},
              st.sampled_from(["conversation_already_has_active_response", "x", "session_expired"])),
    st.just({"type": "session.updated"}),
    json_values.map(lambda v: {"type": "unknown.event", "v": v}),
)
twilio_events = st.one_of(
    st.builds(tw.Media, st.text("ABCD", min_size=4, max_size=8)),
    st.builds(tw.Mark, st.sampled_from([f"m{i}" for i in range(1, 12)])),
    st.builds(tw.Dtmf, st.sampled_from("0123456789")),
)
steps = st.lists(
    st.one_of(
        openai_events.map(lambda e: ("openai", e)),
        twilio_events.map(lambda e: ("twilio", e)),
        st.sampled_from(["c1", "c2"]).map(lambda c: ("tool", c)),
        st.sampled_from([ToolFiller("c1"), ToolFiller("c2"), Deadline.HANGUP_GRACE, Deadline.APOLOGY_DONE,
                         Deadline.PRIMING_GRACE]).map(lambda k: ("timer", k)),
        # OpenAI faults: the socket closes (a drop or the 60-minute cap), a new one opens.
        st.sampled_from([1011, 1001, 1006]).map(lambda c: ("closed", c)),
        st.just(("reopen", None)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps, st.booleans())
def test_core_invariants_under_random_event_orders(sequence: list, interrupt_response: bool) -> None:
    spec = SessionSpec(turn_detection=TurnDetection(interrupt_response=interrupt_response))
    core = CallCore(GA, spec, tool_schemas=BUILTIN.schemas())
    core.on_twilio(tw.Start("MZ1", "CA1"), 0.0)
    core.on_openai_open()
    core.on_openai(oa.SessionUpdated(), 0.0)
    muted: set[str] = set()
    disconnected = False  # between a close and the next open nothing may be sent to OpenAI
    for n, (source, event) in enumerate(sequence):
        now = n * 0.02
        if source == "closed":
            actions = core.on_openai_closed(event, "session_expired" if event == 1001 else "")
            disconnected = disconnected or core.phase in (Phase.CONNECTING, Phase.APOLOGY)
        elif source == "reopen":
            actions = []
            if core.phase is Phase.CONNECTING:
                disconnected = False
                actions = core.on_openai_open() + core.on_openai(oa.SessionUpdated(), now)
        elif disconnected and source == "openai":
            continue  # a closed socket delivers nothing
        elif source == "openai":
            actions = core.on_openai(oa.from_json(event), now)
        elif source == "twilio":
            actions = core.on_twilio(event, now)
        elif source == "tool":
            actions = core.on_tool_result(event, "{}", now)
        else:
            actions = core.on_timer(event, now)
        cleared = False
        for action in actions:
            if isinstance(action, ToOpenAI):
                assert not disconnected, "sent to OpenAI while its socket is gone"
                out = orjson.loads(action.text)
                assert isinstance(out.get("type"), str)
                if out["type"] == "conversation.item.truncate":
                    item = core.playout.items[out["item_id"]]
                    assert 0 < out["audio_end_ms"] <= item.received_bytes // 8
                if out["type"] == "response.cancel":
                    assert not interrupt_response
            elif isinstance(action, ToTwilio):
                frame = orjson.loads(action.text)
                if frame["event"] == "clear":
                    cleared = True
                if frame["event"] == "media" and source == "openai":
                    assert event.get("item_id") not in muted, "audio of an interrupted item after the clear"
            else:
                assert not isinstance(action, EndCall) or action.reason in ("agent_hangup", "openai_closed", "openai_lost")
        if cleared:
            muted |= core.talk.audio.muted_items
