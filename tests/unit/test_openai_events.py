"""OpenAI server events parsed once, into typed values: both shapes' names, wrong types read as absent,
anything else Unknown, and what is not an event an EventError. (Agreement with the official SDK's
models, on real traffic, is in tests/e2e/test_wire_conformance.py.)"""

from __future__ import annotations

import orjson
import pytest

from llc.core import openai_events as oa


def parse(event: object) -> oa.OpenAIEvent:
    return oa.parse(orjson.dumps(event))


@pytest.mark.parametrize("event, typed", [
    ({"type": "session.created", "session": {}}, oa.SessionCreated()),
    ({"type": "session.updated"}, oa.SessionUpdated()),
    ({"type": "response.output_audio.delta", "item_id": "i1", "response_id": "r1", "delta": "AA=="},
     oa.AudioDelta("i1", "r1", "AA==")),
    ({"type": "response.audio.delta", "response_id": "r1", "delta": "AA=="}, oa.AudioDelta("r1", "r1", "AA==")),  # flat
    ({"type": "response.audio.delta", "delta": 7}, oa.AudioDelta("?", None, None)),
    ({"type": "response.audio.done"}, oa.AudioDone()),
    ({"type": "response.created", "response": {"id": "r1"}}, oa.ResponseCreated("r1", False)),
    ({"type": "response.created", "response": {"id": "r2", "conversation_id": None}}, oa.ResponseCreated("r2", True)),
    ({"type": "response.done", "response": "oops"}, oa.ResponseDone("", False)),
    ({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5}, oa.SpeechStarted()),
    ({"type": "input_audio_buffer.speech_stopped"}, oa.SpeechStopped()),
    ({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "end_call", "arguments": "{}"},
     oa.FunctionCall("c1", "end_call", "{}")),
    ({"type": "response.function_call_arguments.done", "call_id": "c1", "arguments": {"a": 1}},
     oa.FunctionCall("c1", "", "{}")),
    ({"type": "response.audio_transcript.done", "item_id": "i1", "transcript": "Hi"},  # flat
     oa.AgentTranscript("i1", None, "Hi")),
    ({"type": "conversation.item.input_audio_transcription.completed", "transcript": ["no"]}, oa.CallerTranscript("")),
    ({"type": "error", "error": {"type": "invalid_request_error", "code": "unknown_parameter", "message": "m",
                                 "param": "session.x", "event_id": "llc_rc1"}},
     oa.ServiceError("unknown_parameter", "invalid_request_error", "m", "session.x", "llc_rc1")),
    ({"type": "error"}, oa.ServiceError("", "", None, None, None)),
    ({"type": "rate_limits.updated", "rate_limits": []}, oa.Unknown("rate_limits.updated")),
    ({"type": "conversation.item.created"}, oa.Unknown("conversation.item.added")),  # by its GA name
])
def test_events_parse_to_their_typed_values(event: dict[str, object], typed: oa.OpenAIEvent) -> None:
    assert parse(event) == typed


def test_an_errors_name_is_its_code_else_its_type_else_unknown() -> None:
    assert oa.ServiceError("session_expired", "x", None, None, None).name == "session_expired"
    assert oa.ServiceError("", "server_error", None, None, None).name == "server_error"
    assert oa.ServiceError("", "", None, None, None).name == "unknown"


@pytest.mark.parametrize("text, why", [(b"{nope", "not JSON"), (b"[1]", "without a type"),
                                       (b'{"type": 5}', "without a type"), (b'{"type": ["x"]}', "without a type")])
def test_what_is_not_an_event_raises_event_error(text: bytes, why: str) -> None:
    with pytest.raises(oa.EventError, match=why):
        oa.parse(text)


def test_the_fast_lane_reads_a_delta_as_the_parse_does() -> None:
    for event in ({"type": "response.output_audio.delta", "item_id": "", "response_id": "r", "delta": "AA=="},
                  {"type": "response.output_audio.delta", "item_id": 3, "response_id": ["r"], "delta": None}):
        assert oa.AudioDelta(*oa.delta_fields(event)) == parse(event)
